/**
 * Chat messages, tool calls and usage as the bridge speaks them (OpenAI-compatible), shared by the client, the
 * CLI, the MCP tools and the agent loop.
 */
import { Schema } from "effect"
import { wireKey } from "./JsonShape.js"

export const Role = Schema.Literal("system", "user", "assistant", "tool")

export const ToolCall = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  /** The arguments exactly as the model produced them: a JSON string (possibly invalid JSON). */
  arguments: Schema.String
})
export type ToolCall = typeof ToolCall.Type

export const ChatMessage = Schema.Struct({
  role: Role,
  content: Schema.NullOr(Schema.String),
  tool_calls: Schema.optional(Schema.Array(ToolCall)),
  tool_call_id: Schema.optional(Schema.String),
  name: Schema.optional(Schema.String)
})
export type ChatMessage = typeof ChatMessage.Type

/** Token counts; encoded as the OpenAI-style snake_case JSON the faces show. */
export const Usage = Schema.Struct({
  promptTokens: wireKey("prompt_tokens", Schema.Number),
  completionTokens: wireKey("completion_tokens", Schema.Number),
  totalTokens: wireKey("total_tokens", Schema.Number),
  reasoningTokens: Schema.optional(Schema.Number).pipe(Schema.fromKey("reasoning_tokens"))
})
export type Usage = typeof Usage.Type

/** The counts every tool result and `--json` shows (reasoning tokens are part of the completion tokens). */
export const UsageCounts = Usage.pick("promptTokens", "completionTokens", "totalTokens")

/** A tool offered to the model: OpenAI function-tool shape with a JSON-schema `parameters`. */
export interface ToolDefinition {
  readonly name: string
  readonly description?: string | undefined
  readonly parameters: Readonly<Record<string, unknown>>
}

export const userMessage = (content: string): ChatMessage => ({ role: "user", content })
export const systemMessage = (content: string): ChatMessage => ({ role: "system", content })
