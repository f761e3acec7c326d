/**
 * The stateful APIs of the simulator: OpenAI-compatible `/v1/responses` (protocol §2.5; OpenAI's Responses shapes
 * where LM Studio's are UNVERIFIED) and native `/api/v1/chat` (protocol §4.5). Pure builders.
 */
import { Predicate } from "effect"
import type { SimInstance, SimModel } from "./Catalog.js"
import type { Turn } from "./Scenario.js"
import { tokenize } from "./Scenario.js"
import { type Completed, pieces, sseEvent } from "./Wire.js"

export interface ResponseIds {
  readonly response: string
  readonly reasoning: string
  readonly message: string
  readonly calls: ReadonlyArray<{ readonly id: string; readonly callId: string }>
  readonly created: number
}

const textOf = (content: unknown): string => {
  if (typeof content === "string") return content
  if (Array.isArray(content)) {
    return content
      .map((p) => (typeof p === "object" && p !== null && "text" in p && typeof p.text === "string" ? p.text : ""))
      .join("")
  }
  return ""
}

const roleOf = (role: unknown): Turn["role"] =>
  role === "assistant"
    ? "assistant"
    : role === "system" || role === "developer"
    ? "system"
    : role === "tool"
    ? "tool"
    : "user"

/** Turns Responses input items (or chat messages) into the conversation the scenario matches on. */
export const itemsToTurns = (items: ReadonlyArray<unknown>): Array<Turn> =>
  items.flatMap((item): Array<Turn> => {
    if (!Predicate.isRecord(item)) return []
    const it = item
    if (it.type === "function_call_output") {
      return [{ role: "tool", text: typeof it.output === "string" ? it.output : JSON.stringify(it.output) }]
    }
    if (it.type === "function_call") {
      return [{ role: "assistant", text: `${String(it.name)}(${String(it.arguments)})` }]
    }
    if (it.type === "reasoning") return []
    if (it.role === "tool") return [{ role: "tool", text: textOf(it.content) }]
    if ("role" in it || it.type === "message") return [{ role: roleOf(it.role), text: textOf(it.content) }]
    return []
  })

export const normaliseInput = (input: unknown): Array<unknown> =>
  typeof input === "string" ? [{ role: "user", content: input }] : Array.isArray(input) ? input : []

const responseOutput = (c: Completed, ids: ResponseIds): Array<Record<string, unknown>> => {
  const out: Array<Record<string, unknown>> = []
  if (c.reasoning !== "") {
    out.push({
      id: ids.reasoning,
      type: "reasoning",
      summary: [],
      content: [{ type: "reasoning_text", text: c.reasoning }]
    })
  }
  c.toolCalls.forEach((call, i) => {
    const id = ids.calls[i] ?? { id: `fc_${i}`, callId: String(i) }
    out.push({
      type: "function_call",
      id: id.id,
      call_id: id.callId,
      name: call.name,
      arguments: JSON.stringify(call.arguments),
      status: "completed"
    })
  })
  if (c.content !== "" || c.toolCalls.length === 0) {
    out.push({
      id: ids.message,
      type: "message",
      role: "assistant",
      status: "completed",
      content: [{ type: "output_text", text: c.content, annotations: [] }]
    })
  }
  return out
}

export const responseObject = (
  instance: SimInstance,
  c: Completed,
  ids: ResponseIds,
  promptTokens: number,
  previousResponseId: string | null,
  status: "completed" | "in_progress" = "completed"
) => ({
  id: ids.response,
  object: "response",
  created_at: ids.created,
  status,
  model: instance.identifier,
  output: status === "completed" ? responseOutput(c, ids) : [],
  previous_response_id: previousResponseId,
  usage: status === "completed"
    ? {
      input_tokens: promptTokens,
      output_tokens: c.completionTokens,
      total_tokens: promptTokens + c.completionTokens,
      output_tokens_details: { reasoning_tokens: c.reasoningTokens }
    }
    : null
})

/** The SSE events of a streamed response, in OpenAI's order, each with `type` and `sequence_number`. */
export const responseFrames = (
  instance: SimInstance,
  c: Completed,
  ids: ResponseIds,
  promptTokens: number,
  previousResponseId: string | null,
  argsChunkSize: number
): Array<string> => {
  let seq = 0
  const frames: Array<string> = []
  const emit = (type: string, payload: Record<string, unknown>) =>
    frames.push(sseEvent(type, { type, sequence_number: seq++, ...payload }))
  emit("response.created", {
    response: responseObject(instance, c, ids, promptTokens, previousResponseId, "in_progress")
  })
  emit("response.in_progress", {
    response: responseObject(instance, c, ids, promptTokens, previousResponseId, "in_progress")
  })
  responseOutput(c, ids).forEach((item, outputIndex) => {
    emit("response.output_item.added", { output_index: outputIndex, item: { ...item, status: "in_progress" } })
    if (item.type === "reasoning") {
      for (const delta of tokenize(c.reasoning)) {
        emit("response.reasoning_text.delta", { item_id: item.id, output_index: outputIndex, content_index: 0, delta })
      }
      emit("response.reasoning_text.done", {
        item_id: item.id,
        output_index: outputIndex,
        content_index: 0,
        text: c.reasoning
      })
    } else if (item.type === "function_call") {
      const args = String(item.arguments)
      for (const delta of pieces(args, argsChunkSize)) {
        emit("response.function_call_arguments.delta", { item_id: item.id, output_index: outputIndex, delta })
      }
      emit("response.function_call_arguments.done", { item_id: item.id, output_index: outputIndex, arguments: args })
    } else {
      const part = { type: "output_text", text: "", annotations: [] }
      emit("response.content_part.added", { item_id: item.id, output_index: outputIndex, content_index: 0, part })
      for (const delta of tokenize(c.content)) {
        emit("response.output_text.delta", { item_id: item.id, output_index: outputIndex, content_index: 0, delta })
      }
      emit("response.output_text.done", {
        item_id: item.id,
        output_index: outputIndex,
        content_index: 0,
        text: c.content
      })
      emit("response.content_part.done", {
        item_id: item.id,
        output_index: outputIndex,
        content_index: 0,
        part: { ...part, text: c.content }
      })
    }
    emit("response.output_item.done", { output_index: outputIndex, item })
  })
  emit("response.completed", { response: responseObject(instance, c, ids, promptTokens, previousResponseId) })
  return frames
}

/** What a finished response adds to the stored conversation (so a chain can be replayed). */
export const storedItems = (c: Completed, ids: ResponseIds): Array<unknown> =>
  responseOutput(c, ids).filter((item) => item.type !== "reasoning")

// ---------------------------------------------------------------------------------------------------------------
// Native /api/v1/chat
// ---------------------------------------------------------------------------------------------------------------

export const v1ChatResult = (
  instance: SimInstance,
  c: Completed,
  promptTokens: number,
  responseId: string | null,
  loadTimeSeconds: number | null
) => ({
  model_instance_id: instance.identifier,
  output: [
    ...(c.reasoning !== "" ? [{ type: "reasoning", content: c.reasoning }] : []),
    { type: "message", content: c.content }
  ],
  stats: {
    input_tokens: promptTokens,
    total_output_tokens: c.completionTokens,
    reasoning_output_tokens: c.reasoningTokens,
    tokens_per_second: 42.5,
    time_to_first_token_seconds: 0.05,
    ...(loadTimeSeconds !== null ? { model_load_time_seconds: loadTimeSeconds } : {})
  },
  ...(responseId !== null ? { response_id: responseId } : {})
})

export const v1ChatFrames = (
  model: SimModel,
  instance: SimInstance,
  c: Completed,
  promptTokens: number,
  responseId: string | null,
  loadTimeSeconds: number | null
): Array<string> => {
  const id = { model_instance_id: instance.identifier }
  const frames: Array<string> = []
  const emit = (type: string, payload: Record<string, unknown> = {}) =>
    frames.push(sseEvent(type, { type, ...payload }))
  emit("chat.start", id)
  if (loadTimeSeconds !== null) {
    emit("model_load.start", id)
    emit("model_load.progress", { ...id, progress: 1 })
    emit("model_load.end", { ...id, load_time_seconds: loadTimeSeconds })
  }
  emit("prompt_processing.start")
  emit("prompt_processing.progress", { progress: 1 })
  emit("prompt_processing.end")
  if (c.reasoning !== "" && model.reasoningKey !== "none") {
    emit("reasoning.start")
    for (const content of tokenize(c.reasoning)) emit("reasoning.delta", { content })
    emit("reasoning.end")
  }
  emit("message.start")
  for (const content of tokenize(c.content)) emit("message.delta", { content })
  emit("message.end")
  emit("chat.end", { result: v1ChatResult(instance, c, promptTokens, responseId, loadTimeSeconds) })
  return frames
}
