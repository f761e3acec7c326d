/**
 * Typed errors of the child MCP servers an agent uses (mcp.json and the servers it names); the same contract as
 * Errors.ts: the context a user needs, a derived `message` and a `hint` that names the fix.
 */
import { Schema } from "effect"
import type { CircuitOpen } from "./Errors.js"

const StringList = Schema.Array(Schema.String)

export class McpConfigNotFound extends Schema.TaggedError<McpConfigNotFound>()("McpConfigNotFound", {
  reason: Schema.String
}) {
  override get message(): string {
    return `No mcp.json found: ${this.reason}`
  }
  get hint(): string {
    return "Create ./.mcp.json or ~/.lmstudio/mcp.json with {\"mcpServers\": {\"name\": {\"command\": \"...\", \"args\": []}}}, or set MCP_JSON_PATH."
  }
}

export class McpConfigInvalid extends Schema.TaggedError<McpConfigInvalid>()("McpConfigInvalid", {
  file: Schema.String,
  path: Schema.String,
  problem: Schema.String
}) {
  override get message(): string {
    return `${this.file}${this.path === "" ? "" : ` at ${this.path}`}: ${this.problem}`
  }
  get hint(): string {
    return "Fix that entry: each server is {\"command\": \"...\", \"args\": [...], \"env\": {...}} or {\"url\": \"https://...\", \"headers\": {...}}."
  }
}

export class McpServerUnknown extends Schema.TaggedError<McpServerUnknown>()("McpServerUnknown", {
  name: Schema.String,
  file: Schema.String,
  available: StringList
}) {
  override get message(): string {
    return `No enabled MCP server named ${JSON.stringify(this.name)} in ${this.file}`
  }
  get hint(): string {
    return this.available.length > 0
      ? `Use one of: ${this.available.join(", ")} (list_available_mcps shows them all).`
      : "That file has no enabled servers; add one under mcpServers."
  }
}

export class McpServerFailed extends Schema.TaggedError<McpServerFailed>()("McpServerFailed", {
  server: Schema.String,
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `MCP server ${this.server} failed to ${this.operation}: ${this.reason}`
  }
  get hint(): string {
    return `Check that ${this.server}'s command runs on its own (its stderr is in the bridge's log), and its entry in mcp.json.`
  }
}

export class McpServerTimeout extends Schema.TaggedError<McpServerTimeout>()("McpServerTimeout", {
  server: Schema.String,
  operation: Schema.String,
  timeoutMs: Schema.Number
}) {
  override get message(): string {
    return `MCP server ${this.server} did not ${this.operation} within ${this.timeoutMs} ms`
  }
  get hint(): string {
    return `The bridge stopped it. Raise its "timeout" (ms) in mcp.json if it is just slow.`
  }
}

export type ChildServerError = McpServerFailed | McpServerTimeout | CircuitOpen
