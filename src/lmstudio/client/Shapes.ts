/**
 * What LmStudioClient takes and gives: requests and results in the bridge's own terms (camelCase, no wire
 * details). The wire shapes are in `Wire.ts`; `Mapping.ts` turns one into the other.
 */
import { Schema } from "effect"
import { nullable, optionalAsNull, wireKey } from "../../domain/JsonShape.js"
import type { ChatMessage, ToolCall, ToolDefinition, Usage } from "../../domain/Messages.js"

export interface ChatRequest {
  /** The model to use; absent lets LM Studio choose (it serves the loaded model). */
  readonly model?: string | undefined
  readonly messages: ReadonlyArray<ChatMessage>
  readonly temperature?: number | undefined
  readonly maxTokens?: number | undefined
  readonly stop?: ReadonlyArray<string> | undefined
  readonly responseFormat?: unknown
  readonly tools?: ReadonlyArray<ToolDefinition> | undefined
  readonly toolChoice?: "auto" | "none" | "required" | undefined
  /** JIT idle TTL in seconds, used by LM Studio only if this request loads the model (protocol §5). */
  readonly ttlSeconds?: number | undefined
}

export interface ChatResult {
  readonly id: string
  /** The instance LM Studio served the request with. */
  readonly model: string
  readonly content: string
  readonly reasoning: string | undefined
  readonly toolCalls: ReadonlyArray<ToolCall>
  readonly finishReason: string
  readonly usage: Usage | undefined
}

/** One event of a streamed chat completion. */
export type ChatDelta =
  | { readonly _tag: "Content"; readonly text: string }
  | { readonly _tag: "Reasoning"; readonly text: string }
  | {
    readonly _tag: "ToolCallFragment"
    readonly index: number
    readonly id: string | undefined
    readonly name: string | undefined
    readonly arguments: string
  }
  | { readonly _tag: "ToolCalls"; readonly calls: ReadonlyArray<ToolCall> }
  | { readonly _tag: "Usage"; readonly usage: Usage }
  | { readonly _tag: "Finish"; readonly reason: string; readonly model: string }

export interface CompletionRequest {
  readonly model?: string | undefined
  readonly prompt: string
  readonly maxTokens?: number | undefined
  readonly temperature?: number | undefined
  readonly stop?: ReadonlyArray<string> | undefined
  readonly ttlSeconds?: number | undefined
}

export interface CompletionResult {
  readonly model: string
  readonly text: string
  /** Think blocks the model wrote inline (`<think>…</think>`), moved out of `text`. */
  readonly reasoning: string | undefined
  readonly finishReason: string
  readonly usage: Usage | undefined
}

export interface EmbeddingRequest {
  readonly model?: string | undefined
  readonly input: string | ReadonlyArray<string>
  readonly ttlSeconds?: number | undefined
}

export interface EmbeddingResult {
  readonly model: string
  readonly vectors: ReadonlyArray<ReadonlyArray<number>>
  readonly dimensions: number
  readonly usage: { readonly promptTokens: number; readonly totalTokens: number } | undefined
}

export interface ResponseRequest {
  readonly model?: string | undefined
  /** A string, or Responses input items (messages, function_call, function_call_output). */
  readonly input: string | ReadonlyArray<unknown>
  readonly previousResponseId?: string | undefined
  readonly instructions?: string | undefined
  readonly tools?: ReadonlyArray<ToolDefinition> | undefined
  readonly toolChoice?: "auto" | "none" | "required" | undefined
  readonly reasoningEffort?: "low" | "medium" | "high" | undefined
  readonly maxOutputTokens?: number | undefined
  readonly temperature?: number | undefined
  readonly ttlSeconds?: number | undefined
}

export interface FunctionCall {
  readonly callId: string
  readonly name: string
  readonly arguments: string
}

export interface ResponseResult {
  readonly id: string
  readonly model: string
  readonly status: string
  readonly outputText: string
  readonly reasoning: string | undefined
  readonly functionCalls: ReadonlyArray<FunctionCall>
  readonly usage: Usage | undefined
}

export type ResponseDelta =
  | { readonly _tag: "Text"; readonly text: string }
  | { readonly _tag: "Reasoning"; readonly text: string }
  | { readonly _tag: "Completed"; readonly response: ResponseResult }

/** A loaded instance of a model; encoded as the `loaded_instances` entries of list_models and get_model_info. */
export const LoadedInstance = Schema.Struct({
  id: wireKey("identifier", Schema.String),
  /** The context the instance was loaded with (not what was asked: LM Studio may load less when memory is short). */
  contextLength: wireKey("context_length", nullable(Schema.Number)),
  /** Parallel prediction slots of the instance (its context is shared between them). */
  parallel: nullable(Schema.Number),
  /** The LM Link device the instance runs on; undefined when local or not known (only `lms ps` tells). */
  device: optionalAsNull("device", Schema.String).annotations({
    description: "LM Link device the instance runs on; null when local (or not known without lms)"
  })
})
export type LoadedInstance = typeof LoadedInstance.Type

/** What LM Studio says of a downloaded model, from the richest source available; encoded as list_models shows it. */
export const ModelInfo = Schema.Struct({
  key: Schema.String,
  type: Schema.Literal("llm", "vlm", "embedding", "unknown"),
  displayName: wireKey("display_name", nullable(Schema.String)),
  loaded: wireKey("loaded_instances", Schema.Array(LoadedInstance)),
  maxContextLength: wireKey("max_context_length", nullable(Schema.Number)),
  toolUse: wireKey("tool_use", nullable(Schema.Boolean)),
  vision: nullable(Schema.Boolean),
  quantization: nullable(Schema.String),
  sizeBytes: wireKey("size_bytes", nullable(Schema.Number)),
  publisher: nullable(Schema.String),
  architecture: nullable(Schema.String),
  format: nullable(Schema.String),
  /** Which API described the model: v1 is the richest, openai the poorest (ids only); lms is the CLI's JSON. */
  source: Schema.Literal("v1", "v0", "lms", "openai")
})
export type ModelInfo = typeof ModelInfo.Type

/** The part of a ModelInfo the tools show (list_models, get_model_info). */
export const ModelSummary = ModelInfo.pick(
  "key",
  "type",
  "displayName",
  "loaded",
  "maxContextLength",
  "toolUse",
  "vision",
  "quantization",
  "sizeBytes"
)

export interface Apis {
  readonly openai: boolean
  readonly v0: boolean
  readonly v1: boolean
  readonly responses: boolean
}

export interface RestLoadRequest {
  readonly model: string
  readonly contextLength?: number | undefined
  /** Sent only when given: `/api/v1/models/load` documents no TTL field (protocol §4.2). */
  readonly ttlSeconds?: number | undefined
  readonly identifier?: string | undefined
}

export interface RestLoadResult {
  readonly instanceId: string
  readonly type: string | undefined
  readonly loadTimeSeconds: number | undefined
  readonly status: string | undefined
}
