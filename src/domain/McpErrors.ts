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

/** Every server a run named failed to start: there is nothing for the model to use. */
export class McpServerFailedToStart extends Schema.TaggedError<McpServerFailedToStart>()("McpServerFailedToStart", {
  servers: Schema.Array(Schema.Struct({ server: Schema.String, reason: Schema.String }))
}) {
  override get message(): string {
    return `${
      this.servers.length === 1
        ? "The run's only MCP server did not start"
        : `None of the run's ${this.servers.length} MCP servers started`
    }: ${this.servers.map((s) => `${s.server} (${s.reason})`).join("; ")}`
  }
  get hint(): string {
    return "Check that each server's command runs on its own (its stderr is in the bridge's log) and its mcp.json entry; list_available_mcps shows the entries. Nothing was sent to the model."
  }
}

/** The agent run stopped on an error before the model answered; what it did is kept. */
export class AgentRunFailed extends Schema.TaggedError<AgentRunFailed>()("AgentRunFailed", {
  error: Schema.String,
  reason: Schema.String,
  causeHint: Schema.String,
  rounds: Schema.Number,
  toolCalls: Schema.Array(
    Schema.Struct({ round: Schema.Number, server: Schema.String, tool: Schema.String, ok: Schema.Boolean })
  )
}) {
  override get message(): string {
    return `The agent run stopped on ${this.error} after ${this.rounds} round(s) and ${this.toolCalls.length} tool call(s), before the model answered: ${this.reason}`
  }
  get hint(): string {
    return this.causeHint
  }
}
