/**
 * The simulator's wire formats (protocol §1.2, §2, §3, §4.5): response bodies and SSE frames, built from a scripted
 * reply. Pure functions; ids and timestamps are passed in.
 */
import type { SimInstance, SimModel } from "./Catalog.js"
import { countTokens, type Reply, replyText, tokenize, type ToolCallSpec } from "./Scenario.js"

export interface Ids {
  /** e.g. `chatcmpl-…` (base36) */
  readonly completion: string
  /** numeric strings, one per tool call (protocol §9.6) */
  readonly toolCalls: ReadonlyArray<string>
  readonly created: number
}

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

export interface WireError {
  readonly status: number
  readonly body: unknown
}

export const openAiError = (status: number, message: string, param: string | null, code: string | null): WireError => ({
  status,
  body: { error: { message, type: "invalid_request_error", param, code } }
})

/** LM Studio's answer to a prompt longer than the loaded context, in either of its wordings (protocol §12.3). */
export const contextOverflow = (wording: "keep" | "n_keep", needed: number, context: number): WireError =>
  openAiError(
    400,
    wording === "keep"
      ? `Trying to keep the first ${needed} tokens when context the overflows. However, the model is loaded with ` +
        `context length of only ${context} tokens, which is not enough. Try to load the model with a larger context ` +
        "length, or provide a shorter input."
      : `Cannot truncate prompt with n_keep (${needed}) >= n_ctx (${context})`,
    null,
    null
  )

export const noModelsLoaded: WireError = openAiError(
  400,
  "No models loaded. Please load a model in the developer page or use the 'lms load' command.",
  "model",
  null
)

export const modelNotFound = (name: string, yours: ReadonlyArray<string>): WireError =>
  openAiError(
    404,
    `Model ${JSON.stringify(name)} not found. Please specify a valid model.\n\nYour models:\n\n${yours.join("\n")}`,
    "model",
    "model_not_found"
  )

export const unexpectedEndpoint = (method: string, path: string): WireError => ({
  status: path.startsWith("/api/v1/") ? 404 : 200,
  body: { error: `Unexpected endpoint or method. (${method} ${path})` }
})

/** Native v1 error envelope (protocol §4.5). */
export const v1Error = (status: number, type: string, message: string, code?: string, param?: string): WireError => ({
  status,
  body: { error: { type, message, ...(code ? { code } : {}), ...(param ? { param } : {}) } }
})

// ---------------------------------------------------------------------------------------------------------------
// Chat completions
// ---------------------------------------------------------------------------------------------------------------

export interface Completed {
  readonly content: string
  readonly reasoning: string
  readonly toolCalls: ReadonlyArray<ToolCallSpec>
  readonly finishReason: "stop" | "length" | "tool_calls"
  readonly completionTokens: number
  readonly reasoningTokens: number
}

/** Applies `max_tokens` to a reply: content beyond the budget is cut and the finish reason becomes `length`. */
export const complete = (reply: Reply, maxTokens: number | undefined): Completed => {
  const text = replyText(reply)
  const reasoning = reply.reasoning ?? ""
  const toolCalls = reply.toolCalls ?? []
  const tokens = tokenize(text)
  const limit = maxTokens !== undefined && maxTokens > 0 ? maxTokens : Number.POSITIVE_INFINITY
  const cut = tokens.length > limit
  const content = cut ? tokens.slice(0, limit).join("") : text
  const finishReason = cut ? "length" : (reply.finishReason ?? (toolCalls.length > 0 ? "tool_calls" : "stop"))
  const argTokens = toolCalls.reduce((n, c) => n + countTokens(JSON.stringify(c.arguments)) + 1, 0)
  const reasoningTokens = countTokens(reasoning)
  return {
    content,
    reasoning,
    toolCalls,
    finishReason,
    completionTokens: Math.min(tokens.length, limit) + argTokens + reasoningTokens,
    reasoningTokens
  }
}

const reasoningField = (model: SimModel, reasoning: string): Record<string, string> =>
  model.reasoningKey === "reasoning"
    ? reasoning !== ""
      ? { reasoning }
      : {}
    : { reasoning_content: reasoning }

const usage = (promptTokens: number, c: Completed) => ({
  prompt_tokens: promptTokens,
  completion_tokens: c.completionTokens,
  total_tokens: promptTokens + c.completionTokens,
  completion_tokens_details: { reasoning_tokens: c.reasoningTokens }
})

const wireToolCall = (call: ToolCallSpec, id: string) => ({
  id,
  type: "function",
  function: { name: call.name, arguments: JSON.stringify(call.arguments) }
})

/** `POST /v1/chat/completions` body, current shape (protocol §2.2). */
export const chatCompletion = (
  model: SimModel,
  instance: SimInstance,
  c: Completed,
  promptTokens: number,
  ids: Ids
) => ({
  id: ids.completion,
  object: "chat.completion",
  created: ids.created,
  model: instance.identifier,
  choices: [
    {
      index: 0,
      message: {
        role: "assistant",
        content: c.content,
        ...reasoningField(model, c.reasoning),
        tool_calls: c.toolCalls.map((call, i) => wireToolCall(call, ids.toolCalls[i] ?? String(i)))
      },
      logprobs: null,
      finish_reason: c.finishReason
    }
  ],
  usage: usage(promptTokens, c),
  stats: {},
  system_fingerprint: instance.identifier
})

/** Splits a string into pieces of `size` characters (0 or less: one piece). */
export const pieces = (s: string, size: number): Array<string> => {
  if (size <= 0 || s.length <= size) return [s]
  const out: Array<string> = []
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size))
  return out
}

export const sseData = (payload: unknown): string => `data: ${JSON.stringify(payload)}\n\n`
export const sseEvent = (event: string, payload: unknown): string =>
  `event: ${event}\ndata: ${JSON.stringify(payload)}\n\n`
const sseDone = "data: [DONE]\n\n"

/** The SSE frames of a streamed chat completion (protocol §2.2 "Streaming"). */
export const chatCompletionFrames = (
  model: SimModel,
  instance: SimInstance,
  c: Completed,
  promptTokens: number,
  ids: Ids,
  options: { readonly includeUsage: boolean; readonly argsChunkSize: number }
): Array<string> => {
  const envelope = (rest: Record<string, unknown>) =>
    sseData({
      id: ids.completion,
      object: "chat.completion.chunk",
      created: ids.created,
      model: instance.identifier,
      system_fingerprint: instance.identifier,
      ...rest
    })
  const chunk = (delta: unknown, finishReason: string | null = null) =>
    envelope({ choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }] })
  const frames: Array<string> = []
  const reasoningKey = model.reasoningKey === "reasoning" ? "reasoning" : "reasoning_content"
  for (const tok of tokenize(c.reasoning)) frames.push(chunk({ role: "assistant", [reasoningKey]: tok }))
  for (const tok of tokenize(c.content)) frames.push(chunk({ role: "assistant", content: tok }))
  c.toolCalls.forEach((call, index) => {
    const id = ids.toolCalls[index] ?? String(index)
    frames.push(
      chunk({
        role: "assistant",
        tool_calls: [{ index, id, type: "function", function: { name: call.name, arguments: "" } }]
      })
    )
    for (const piece of pieces(JSON.stringify(call.arguments), options.argsChunkSize)) {
      frames.push(chunk({ role: "assistant", tool_calls: [{ index, function: { arguments: piece } }] }))
    }
  })
  frames.push(chunk({}, c.finishReason))
  if (options.includeUsage) frames.push(envelope({ choices: [], usage: usage(promptTokens, c) }))
  frames.push(sseDone)
  return frames
}

// ---------------------------------------------------------------------------------------------------------------
// Text completions, embeddings, v0 extras
// ---------------------------------------------------------------------------------------------------------------

export const textCompletion = (instance: SimInstance, c: Completed, promptTokens: number, ids: Ids) => ({
  id: ids.completion,
  object: "text_completion",
  created: ids.created,
  model: instance.identifier,
  choices: [{ index: 0, text: c.content, logprobs: null, finish_reason: c.finishReason }],
  usage: {
    prompt_tokens: promptTokens,
    completion_tokens: c.completionTokens,
    total_tokens: promptTokens + c.completionTokens
  }
})

export const textCompletionFrames = (instance: SimInstance, c: Completed, ids: Ids): Array<string> => {
  const chunk = (text: string, finishReason: string | null) =>
    sseData({
      id: ids.completion,
      object: "text_completion",
      created: ids.created,
      model: instance.identifier,
      choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason }]
    })
  return [...tokenize(c.content).map((t) => chunk(t, null)), chunk("", c.finishReason), sseDone]
}

/** The extras `/api/v0/*` adds to chat and completion bodies (protocol §3). */
export const v0Extras = (model: SimModel, instance: SimInstance, c: Completed) => ({
  stats: {
    tokens_per_second: 42.5,
    time_to_first_token: 0.05,
    generation_time: Math.max(0.001, c.completionTokens / 42.5),
    stop_reason: c.finishReason === "length"
      ? "maxPredictedTokensReached"
      : c.finishReason === "tool_calls"
      ? "toolCalls"
      : "eosFound"
  },
  model_info: {
    arch: model.architecture,
    quant: model.quantization.name,
    format: model.format,
    context_length: instance.contextLength
  },
  runtime: { name: "llama.cpp-linux-x86_64-simulated", version: "1.0.0", supported_formats: ["gguf"] }
})

export const embeddings = (model: SimModel, instance: SimInstance, vectors: ReadonlyArray<ReadonlyArray<number>>) => ({
  object: "list",
  data: vectors.map((embedding, index) => ({ object: "embedding", embedding, index })),
  model: `${instance.identifier}@${model.quantization.name.toLowerCase()}`,
  usage: { prompt_tokens: 0, total_tokens: 0 }
})
