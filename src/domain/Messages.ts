/**
 * Chat messages, tool calls and usage as the bridge speaks them (OpenAI-compatible), shared by the client, the
 * CLI, the MCP tools and the agent loop.
 */
import { Schema } from "effect"

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

export const Usage = Schema.Struct({
  promptTokens: Schema.Number,
  completionTokens: Schema.Number,
  totalTokens: Schema.Number,
  reasoningTokens: Schema.optional(Schema.Number)
})
export type Usage = typeof Usage.Type

/** A tool offered to the model: OpenAI function-tool shape with a JSON-schema `parameters`. */
export interface ToolDefinition {
  readonly name: string
  readonly description?: string | undefined
  readonly parameters: Readonly<Record<string, unknown>>
}

export const userMessage = (content: string): ChatMessage => ({ role: "user", content })
export const systemMessage = (content: string): ChatMessage => ({ role: "system", content })
