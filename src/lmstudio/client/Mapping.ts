/**
 * LM Studio's wire shapes (Wire.ts) to the client's shapes (Shapes.ts) and back: request bodies, results, usage,
 * tool calls assembled from fragments, think blocks moved to reasoning, and one builder of `ModelInfo` for every
 * source that describes models (v1, v0, the OpenAI list, `lms ls`/`lms ps`).
 */
import { Effect, Stream } from "effect"
import type { ToolCall, Usage } from "../../domain/Messages.js"
import { joinReasoning, splitThink } from "../../domain/Think.js"
import type { LmsInstance, LmsModel } from "../LmsCli.js"
import type {
  ChatDelta,
  ChatRequest,
  ChatResult,
  CompletionRequest,
  EmbeddingRequest,
  LoadedInstance,
  ModelInfo,
  ResponseRequest,
  ResponseResult,
  RestLoadRequest
} from "./Shapes.js"
import type {
  ChatCompletionWire,
  ChatRequestWire,
  CompletionRequestWire,
  EmbeddingsRequestWire,
  LoadRequestWire,
  ResponsesRequestWire,
  ResponseWire,
  ToolCallWire,
  UsageWire,
  V0ModelWire,
  V1ModelWire
} from "./Wire.js"

export const toUsage = (u: UsageWire | null | undefined): Usage | undefined => {
  if (u === null || u === undefined) return undefined
  const prompt = u.prompt_tokens ?? 0
  const completion = u.completion_tokens ?? 0
  const reasoning = u.completion_tokens_details?.reasoning_tokens
  return {
    promptTokens: prompt,
    completionTokens: completion,
    totalTokens: u.total_tokens ?? prompt + completion,
    ...(reasoning !== null && reasoning !== undefined ? { reasoningTokens: reasoning } : {})
  }
}

const argumentsText = (
  a: unknown
): string => (typeof a === "string" ? a : a === null || a === undefined ? "" : JSON.stringify(a))

/**
 * Assembles streamed tool-call fragments (protocol §2.2): the first fragment of an index carries id and name, the
 * following ones only argument pieces. Empty-string names of later fragments (before 0.3.16) are ignored, and so
 * are a missing index (treated as 0) and `null`s.
 */
export class ToolCallAssembler {
  private readonly calls = new Map<number, { id: string | undefined; name: string; args: string }>()

  push(
    f: {
      readonly index: number
      readonly id: string | undefined
      readonly name: string | undefined
      readonly arguments: string
    }
  ): void {
    const current = this.calls.get(f.index) ?? { id: undefined, name: "", args: "" }
    this.calls.set(f.index, {
      id: current.id ?? (f.id !== undefined && f.id !== "" ? f.id : undefined),
      name: current.name !== "" ? current.name : (f.name ?? ""),
      args: current.args + f.arguments
    })
  }

  get size(): number {
    return this.calls.size
  }

  finish(): Array<ToolCall> {
    return [...this.calls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([index, c]) => ({ id: c.id ?? `call_${index}`, name: c.name, arguments: c.args }))
  }
}

export const fragmentsOf = (calls: ReadonlyArray<ToolCallWire> | null | undefined) =>
  (calls ?? []).map((c, i) => ({
    index: c.index ?? i,
    id: c.id === null || c.id === undefined ? undefined : String(c.id),
    name: c.function?.name ?? undefined,
    arguments: argumentsText(c.function?.arguments)
  }))

/** The answer and reasoning a think splitter released, as stream deltas. */
export const pushThinkPieces = (
  out: Array<ChatDelta>,
  pieces: { readonly answer: string; readonly reasoning: string }
): void => {
  if (pieces.reasoning !== "") out.push({ _tag: "Reasoning", text: pieces.reasoning })
  if (pieces.answer !== "") out.push({ _tag: "Content", text: pieces.answer })
}

/** Collects a chat stream into the same result the non-streaming call returns. */
export const collectChat = <E, R>(stream: Stream.Stream<ChatDelta, E, R>): Effect.Effect<ChatResult, E, R> =>
  Stream.runFold(
    stream,
    {
      content: "",
      reasoning: "",
      toolCalls: [] as ReadonlyArray<ToolCall>,
      finish: "stop",
      model: "",
      usage: undefined as Usage | undefined
    },
    (acc, d) => {
      switch (d._tag) {
        case "Content":
          return { ...acc, content: acc.content + d.text }
        case "Reasoning":
          return { ...acc, reasoning: acc.reasoning + d.text }
        case "ToolCalls":
          return { ...acc, toolCalls: d.calls }
        case "Usage":
          return { ...acc, usage: d.usage }
        case "Finish":
          return { ...acc, finish: d.reason, model: d.model }
        case "ToolCallFragment":
          return acc
      }
    }
  ).pipe(
    Effect.map((acc) => ({
      id: "",
      model: acc.model,
      content: acc.content,
      reasoning: joinReasoning(acc.reasoning),
      toolCalls: acc.toolCalls,
      finishReason: acc.finish,
      usage: acc.usage
    }))
  )

const textOfParts = (content: ResponseWire["output"][number]["content"]): string =>
  typeof content === "string" ? content : (content ?? []).map((p) => p.text ?? "").join("")

export const toResponseResult = (r: ResponseWire): ResponseResult => {
  const messages = r.output.filter((i) => i.type === "message")
  const reasoning = r.output
    .filter((i) => i.type === "reasoning")
    .map((i) => textOfParts(i.content) || (i.summary ?? []).map((p) => p.text ?? "").join(""))
    .join("")
  const u = r.usage
  const inline = splitThink(r.output_text ?? messages.map((m) => textOfParts(m.content)).join(""))
  return {
    id: r.id,
    model: r.model ?? "",
    status: r.status ?? "completed",
    outputText: inline.answer,
    reasoning: joinReasoning(reasoning, inline.reasoning),
    functionCalls: r.output
      .filter((i) => i.type === "function_call")
      .map((i) => ({
        callId: String(i.call_id ?? i.id ?? ""),
        name: i.name ?? "",
        arguments: argumentsText(i.arguments)
      })),
    usage: u
      ? {
        promptTokens: u.input_tokens ?? 0,
        completionTokens: u.output_tokens ?? 0,
        totalTokens: u.total_tokens ?? (u.input_tokens ?? 0) + (u.output_tokens ?? 0),
        ...(u.output_tokens_details?.reasoning_tokens != null
          ? { reasoningTokens: u.output_tokens_details.reasoning_tokens }
          : {})
      }
      : undefined
  }
}

/** A model's kind from what a source says of its type and vision. */
const kindOf = (type: string | null | undefined, vision: boolean | null | undefined): ModelInfo["type"] =>
  type === "embedding" || type === "embeddings"
    ? "embedding"
    : type === "vlm" || (type === "llm" && vision === true)
    ? "vlm"
    : type === "llm"
    ? "llm"
    : "unknown"

type Known = {
  readonly [K in keyof Omit<ModelInfo, "key" | "source" | "type" | "loaded">]?: ModelInfo[K] | null | undefined
}

/** A ModelInfo from what one source knows; what it does not know is undefined (never null). */
const modelInfo = (
  key: string,
  source: ModelInfo["source"],
  type: ModelInfo["type"],
  loaded: ReadonlyArray<LoadedInstance>,
  known: Known
): ModelInfo => ({
  key,
  type,
  displayName: known.displayName ?? undefined,
  publisher: known.publisher ?? undefined,
  architecture: known.architecture ?? undefined,
  quantization: known.quantization ?? undefined,
  format: known.format ?? undefined,
  sizeBytes: known.sizeBytes ?? undefined,
  maxContextLength: known.maxContextLength ?? undefined,
  toolUse: known.toolUse ?? undefined,
  vision: known.vision ?? undefined,
  loaded,
  source
})

/** What an id from `/v1/models` tells about a model: only its name (the poorest source, protocol §2.1). */
export const modelInfoFromId = (id: string): ModelInfo =>
  modelInfo(id, "openai", /embed/i.test(id) ? "embedding" : "unknown", [], {})

export const modelInfoFromV0 = (m: V0ModelWire): ModelInfo =>
  modelInfo(
    m.id,
    "v0",
    kindOf(m.type, undefined),
    m.state === "loaded"
      ? [{ id: m.id, contextLength: m.loaded_context_length ?? undefined, parallel: undefined }]
      : [],
    {
      publisher: m.publisher,
      architecture: m.arch,
      quantization: m.quantization,
      maxContextLength: m.max_context_length,
      toolUse: m.capabilities ? m.capabilities.includes("tool_use") : undefined,
      vision: m.type === "vlm" ? true : undefined
    }
  )

export const modelInfoFromV1 = (m: V1ModelWire): ModelInfo =>
  modelInfo(
    m.key,
    "v1",
    kindOf(m.type, m.capabilities?.vision),
    (m.loaded_instances ?? []).map((i) => ({
      id: i.id,
      contextLength: i.config?.context_length ?? undefined,
      parallel: i.config?.parallel ?? undefined
    })),
    {
      displayName: m.display_name,
      publisher: m.publisher,
      architecture: m.architecture,
      quantization: m.quantization?.name,
      format: m.format,
      sizeBytes: m.size_bytes,
      maxContextLength: m.max_context_length,
      toolUse: m.capabilities?.trained_for_tool_use,
      vision: m.capabilities?.vision
    }
  )

/** `lms ls --json` and `lms ps --json` together: the models, with their loaded instances (and LM Link devices). */
export const modelInfoFromLms = (
  models: ReadonlyArray<LmsModel>,
  instances: ReadonlyArray<LmsInstance>
): Array<ModelInfo> =>
  models.map((m) =>
    modelInfo(
      m.modelKey,
      "lms",
      kindOf(m.type, m.vision),
      instances
        .filter((i) => i.modelKey === m.modelKey)
        .map((i) => ({
          id: i.identifier,
          contextLength: i.contextLength ?? undefined,
          parallel: i.parallel ?? undefined,
          device: i.deviceIdentifier ?? undefined
        })),
      {
        displayName: m.displayName,
        publisher: m.publisher,
        architecture: m.architecture,
        quantization: m.quantization?.name,
        format: m.format,
        sizeBytes: m.sizeBytes,
        maxContextLength: m.maxContextLength,
        toolUse: m.trainedForToolUse,
        vision: m.vision
      }
    )
  )

/** A chat completion's answer: tool calls assembled, reasoning kept apart and think blocks moved out of the content. */
export const chatResultOf = (
  r: ChatCompletionWire,
  choice: ChatCompletionWire["choices"][number],
  requested: string | undefined
): ChatResult => {
  const assembler = new ToolCallAssembler()
  for (const f of fragmentsOf(choice.message.tool_calls)) assembler.push(f)
  const inline = splitThink(choice.message.content ?? "")
  return {
    id: r.id ?? "",
    model: r.model ?? requested ?? "",
    content: inline.answer,
    reasoning: joinReasoning(
      choice.message.reasoning_content ?? choice.message.reasoning ?? undefined,
      inline.reasoning
    ),
    toolCalls: assembler.finish(),
    finishReason: choice.finish_reason ?? "stop",
    usage: toUsage(r.usage)
  }
}

const nonEmpty = <A>(
  xs: ReadonlyArray<A> | undefined
): ReadonlyArray<A> | undefined => (xs !== undefined && xs.length > 0 ? xs : undefined)

/** The body of `POST /v1/chat/completions`. */
export const chatBody = (req: ChatRequest, stream: boolean): ChatRequestWire => ({
  model: req.model,
  messages: req.messages.map((m) => ({
    role: m.role,
    content: m.content,
    tool_calls: nonEmpty(m.tool_calls)?.map((c) => ({
      id: c.id,
      type: "function" as const,
      function: { name: c.name, arguments: c.arguments }
    })),
    tool_call_id: m.tool_call_id,
    name: m.name
  })),
  temperature: req.temperature,
  max_tokens: req.maxTokens,
  stop: req.stop,
  response_format: req.responseFormat,
  tools: nonEmpty(req.tools)?.map((t) => ({
    type: "function" as const,
    function: { name: t.name, description: t.description, parameters: t.parameters }
  })),
  tool_choice: req.toolChoice,
  ttl: req.ttlSeconds,
  stream: stream ? true : undefined,
  stream_options: stream ? { include_usage: true } : undefined
})

/** The body of `POST /v1/responses`. */
export const responseBody = (req: ResponseRequest, stream: boolean): ResponsesRequestWire => ({
  model: req.model,
  input: req.input,
  previous_response_id: req.previousResponseId,
  instructions: req.instructions,
  tools: nonEmpty(req.tools)?.map((t) => ({
    type: "function" as const,
    name: t.name,
    description: t.description,
    parameters: t.parameters
  })),
  tool_choice: req.toolChoice,
  reasoning: req.reasoningEffort !== undefined ? { effort: req.reasoningEffort } : undefined,
  max_output_tokens: req.maxOutputTokens,
  temperature: req.temperature,
  ttl: req.ttlSeconds,
  stream: stream ? true : undefined
})

/** The body of `POST /v1/completions`. */
export const completionBody = (req: CompletionRequest): CompletionRequestWire => ({
  model: req.model,
  prompt: req.prompt,
  max_tokens: req.maxTokens,
  temperature: req.temperature,
  stop: req.stop,
  ttl: req.ttlSeconds
})

/** The body of `POST /v1/embeddings`. */
export const embeddingsBody = (req: EmbeddingRequest): EmbeddingsRequestWire => ({
  model: req.model,
  input: req.input,
  ttl: req.ttlSeconds
})

/** The body of `POST /api/v1/models/load`. */
export const loadBody = (req: RestLoadRequest): LoadRequestWire => ({
  model: req.model,
  context_length: req.contextLength,
  ttl: req.ttlSeconds,
  identifier: req.identifier
})
