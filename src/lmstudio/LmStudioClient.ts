/**
 * LmStudioClient: HTTP to LM Studio (protocol §1–§4) over `@effect/platform`'s HttpClient.
 *
 * - Every body is decoded with a lenient Schema; an `error` key is an error even on HTTP 200 (protocol §1.1, §9.3).
 * - Errors are classified into the domain's typed errors (model not found with the list, no model loaded,
 *   previous response not found, unsupported API, …); transport and parse errors never leak.
 * - A response whose `model` is not the requested one fails with `ModelMismatch` (protocol §9.1).
 * - Per-request timeouts (for streams: the longest silence between chunks), transient retries with the named
 *   `httpTransientRetry` schedule, Bearer token when configured.
 * - Which APIs the server has is detected once and cached (only a successful detection is cached).
 * - Interrupting a call, or a stream's consumer, aborts the HTTP request.
 */
import * as Sse from "@effect/experimental/Sse"
import * as Headers from "@effect/platform/Headers"
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Cause, Duration, Effect, Either, identity, Option, type ParseResult, Redacted, Ref, Schedule, Schema, Stream } from "effect"
import { AppConfig } from "../Config.js"
import { spanIf, tracingEnabled } from "../observability/Tracing.js"
import * as HttpTransport from "./HttpTransport.js"
import {
  LmStudioApiUnsupported,
  LmStudioConnectionLost,
  isLmStudioError,
  type LmStudioError,
  LmStudioHttpError,
  LmStudioMalformedResponse,
  LmStudioTimeout,
  LmStudioUnreachable,
  ModelMismatch,
  ModelNotFound,
  NoModelLoaded,
  PreviousResponseNotFound,
  WrongModelKind
} from "../domain/Errors.js"
import type { ChatMessage, ToolCall, ToolDefinition, Usage } from "../domain/Messages.js"
import { closestMatches, sameModel } from "../domain/ModelName.js"
import { joinReasoning, splitThink, ThinkSplitter } from "../domain/Think.js"
import { LmStudioBreaker } from "./LmStudioBreaker.js"
import * as Deadlines from "../resilience/Deadlines.js"
import { httpTransientRetry, isTransientLmStudioError, retryLazily } from "../resilience/Policies.js"
import {
  ChatChunkWire,
  ChatCompletionWire,
  CompletionWire,
  EmbeddingsWire,
  ErrorBody,
  GreetingWire,
  OpenAiModelsWire,
  ResponseEventWire,
  ResponseWire,
  type ToolCallWire,
  type UsageWire,
  V0ModelsWire,
  V1LoadWire,
  V1ModelsWire,
  V1UnloadWire
} from "./Wire.js"

// ---------------------------------------------------------------------------------------------------------------
// Public shapes
// ---------------------------------------------------------------------------------------------------------------

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

export interface LoadedInstance {
  readonly id: string
  /** The context the instance was loaded with (not what was asked: LM Studio may load less when memory is short). */
  readonly contextLength: number | undefined
  /** Parallel prediction slots of the instance (its context is shared between them). */
  readonly parallel: number | undefined
  /** The LM Link device the instance runs on; undefined when local or not known (only `lms ps` tells). */
  readonly device?: string | undefined
}

export interface ModelInfo {
  readonly key: string
  readonly type: "llm" | "vlm" | "embedding" | "unknown"
  readonly displayName: string | undefined
  readonly publisher: string | undefined
  readonly architecture: string | undefined
  readonly quantization: string | undefined
  readonly format: string | undefined
  readonly sizeBytes: number | undefined
  readonly maxContextLength: number | undefined
  readonly toolUse: boolean | undefined
  readonly vision: boolean | undefined
  readonly loaded: ReadonlyArray<LoadedInstance>
  /** Which API described the model: v1 is the richest, openai the poorest (ids only); lms is the CLI's JSON. */
  readonly source: "v1" | "v0" | "lms" | "openai"
}

export interface Apis {
  readonly openai: boolean
  readonly v0: boolean
  readonly v1: boolean
  readonly responses: boolean
}

export interface LoadRequest {
  readonly model: string
  readonly contextLength?: number | undefined
  /** Sent only when given: `/api/v1/models/load` documents no TTL field (protocol §4.2). */
  readonly ttlSeconds?: number | undefined
  readonly identifier?: string | undefined
}

export interface LoadResult {
  readonly instanceId: string
  readonly type: string | undefined
  readonly loadTimeSeconds: number | undefined
  readonly status: string | undefined
}

// ---------------------------------------------------------------------------------------------------------------
// Pure helpers (exported for tests)
// ---------------------------------------------------------------------------------------------------------------

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

const argumentsText = (a: unknown): string => (typeof a === "string" ? a : a === null || a === undefined ? "" : JSON.stringify(a))

/**
 * Assembles streamed tool-call fragments (protocol §2.2): the first fragment of an index carries id and name, the
 * following ones only argument pieces. Empty-string names of later fragments (before 0.3.16) are ignored, and so
 * are a missing index (treated as 0) and `null`s.
 */
export class ToolCallAssembler {
  private readonly calls = new Map<number, { id: string | undefined; name: string; args: string }>()

  push(f: { readonly index: number; readonly id: string | undefined; readonly name: string | undefined; readonly arguments: string }): void {
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

/** What an id from `/v1/models` tells about a model: only its name (the poorest source, protocol §2.1). */
export const modelInfoFromId = (id: string): ModelInfo => ({
  key: id,
  type: /embed/i.test(id) ? "embedding" : "unknown",
  displayName: undefined,
  publisher: undefined,
  architecture: undefined,
  quantization: undefined,
  format: undefined,
  sizeBytes: undefined,
  maxContextLength: undefined,
  toolUse: undefined,
  vision: undefined,
  loaded: [],
  source: "openai"
})

/** The answer and reasoning a think splitter released, as stream deltas. */
const pushThinkPieces = (out: Array<ChatDelta>, pieces: { readonly answer: string; readonly reasoning: string }): void => {
  if (pieces.reasoning !== "") out.push({ _tag: "Reasoning", text: pieces.reasoning })
  if (pieces.answer !== "") out.push({ _tag: "Content", text: pieces.answer })
}

/** Collects a chat stream into the same result the non-streaming call returns. */
export const collectChat = <E, R>(stream: Stream.Stream<ChatDelta, E, R>): Effect.Effect<ChatResult, E, R> =>
  Stream.runFold(
    stream,
    { content: "", reasoning: "", toolCalls: [] as ReadonlyArray<ToolCall>, finish: "stop", model: "", usage: undefined as Usage | undefined },
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
      .map((i) => ({ callId: String(i.call_id ?? i.id ?? ""), name: i.name ?? "", arguments: argumentsText(i.arguments) })),
    usage: u
      ? {
          promptTokens: u.input_tokens ?? 0,
          completionTokens: u.output_tokens ?? 0,
          totalTokens: u.total_tokens ?? (u.input_tokens ?? 0) + (u.output_tokens ?? 0),
          ...(u.output_tokens_details?.reasoning_tokens != null ? { reasoningTokens: u.output_tokens_details.reasoning_tokens } : {})
        }
      : undefined
  }
}

/** "Your models:\n\na\nb" → ["a", "b"] (protocol §1.2). */
const modelsListedIn = (message: string): Array<string> => {
  const at = message.indexOf("Your models:")
  if (at < 0) return []
  return message
    .slice(at + "Your models:".length)
    .split("\n")
    .map((s) => s.trim())
    .filter((s) => s !== "")
}

/**
 * Turns an LM Studio error body (or a failed status) into a typed error. Exported for tests: the same function
 * serves HTTP errors, errors on HTTP 200 and SSE error frames.
 */
export const classifyError = (
  ctx: { readonly baseUrl: string; readonly endpoint: string; readonly model?: string | undefined },
  status: number,
  body: ErrorBody | undefined,
  rawText: string
): LmStudioError => {
  const e = body?.error
  const message = typeof e === "string" ? e : (e?.message ?? rawText.slice(0, 500))
  const code = typeof e === "object" && e !== null && e.code !== null && e.code !== undefined ? String(e.code) : undefined
  const type = typeof e === "object" && e !== null ? (e.type ?? undefined) : undefined
  if (message.startsWith("Unexpected endpoint or method")) {
    return new LmStudioApiUnsupported({ baseUrl: ctx.baseUrl, api: ctx.endpoint, detail: message })
  }
  if (/no models loaded/i.test(message)) {
    return new NoModelLoaded({ baseUrl: ctx.baseUrl, model: ctx.model, detail: message })
  }
  // The model is of the other kind, or the request fell to the only loaded model, of the other kind (protocol §9.1).
  const kind = /^Model is not (?:an? )?(llm|embedding)/i.exec(message)?.[1]?.toLowerCase()
  if (ctx.model !== undefined && (kind === "llm" || kind === "embedding")) {
    return new WrongModelKind({ requested: ctx.model, expected: kind, endpoint: ctx.endpoint, detail: message })
  }
  if (code === "previous_response_not_found") {
    const id = /'([^']+)'/.exec(message)?.[1] ?? ""
    return new PreviousResponseNotFound({ previousResponseId: id })
  }
  if (code === "model_not_found" || type === "model_not_found" || /^Model .* not found/i.test(message)) {
    const available = modelsListedIn(message)
    const requested = ctx.model ?? (/Model "([^"]*)"/.exec(message)?.[1] ?? "")
    return new ModelNotFound({ model: requested, available, suggestions: closestMatches(requested, available) })
  }
  return new LmStudioHttpError({
    baseUrl: ctx.baseUrl,
    endpoint: ctx.endpoint,
    status,
    detail: message === "" ? `HTTP ${status}` : message,
    ...(code !== undefined ? { code } : {})
  })
}

/** The most specific text of a transport failure: `connect ECONNREFUSED 127.0.0.1:1234` rather than "Transport error". */
const causeText = (e: { readonly message: string; readonly cause?: unknown }): string => {
  let cause: unknown = e.cause
  let text = e.message
  for (let depth = 0; depth < 4 && cause instanceof Error; depth++) {
    text = cause.message
    cause = cause.cause
  }
  return text
}

const decodeErrorBodyOption = Schema.decodeUnknownOption(ErrorBody)

/** Only bodies that carry an `error` key are decoded as errors; the common case costs one property check. */
const decodeErrorBody = (json: unknown): Option.Option<ErrorBody> =>
  typeof json === "object" && json !== null && "error" in json ? decodeErrorBodyOption(json) : Option.none()

/** JSON text to a value; the typed decoding happens afterwards with the endpoint's Schema. */
const parseJson = (text: string): Option.Option<unknown> => {
  try {
    return Option.some(JSON.parse(text) as unknown)
  } catch {
    return Option.none()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------------------------------------------

export class LmStudioClient extends Effect.Service<LmStudioClient>()("lmstudio-bridge/LmStudioClient", {
  dependencies: [LmStudioBreaker.Default],
  scoped: Effect.gen(function* () {
    const config = yield* AppConfig
    const baseUrl = config.baseUrl
    // Without an OTLP endpoint nobody reads HTTP client spans: skip them and the traceparent header they add.
    const tracing = tracingEnabled(config)
    const base = yield* HttpClient.HttpClient
    // On the bridge's own transport (HttpTransport) there is nothing to switch off and requests are tied to their
    // abort scope by `withAbortScope`; any other HttpClient gets the platform's `withScope` and, unless traces are
    // exported, no client spans or trace headers.
    const ownTransport = HttpTransport.isTransport(base)
    const http = ownTransport
      ? base
      : base.pipe(tracing ? identity : HttpClient.withTracerDisabledWhen(() => true), HttpClient.withTracerPropagation(tracing))
    // Every request: the base URL, `Accept: application/json`, and the Bearer token when configured. Built once per
    // request here rather than through `HttpClient.mapRequest` steps (each copies the request).
    const baseHeaders = Headers.fromInput({
      accept: "application/json",
      ...Option.match(config.apiToken, { onNone: () => ({}), onSome: (token) => ({ authorization: `Bearer ${Redacted.value(token)}` }) })
    })
    /** A request as the client describes it: method, path under the base URL, JSON body already serialised. */
    interface Outgoing {
      readonly method: "GET" | "POST"
      readonly path: string
      readonly body?: string
    }
    const get = (path: string): Outgoing => ({ method: "GET", path })
    /** The platform request of an outgoing request (streams, probes, and any HttpClient but the bridge's own). */
    const platformRequest = (o: Outgoing): HttpClientRequest.HttpClientRequest =>
      o.body === undefined
        ? HttpClientRequest.make(o.method)(`${baseUrl}${o.path}`, { headers: baseHeaders })
        : HttpClientRequest.make(o.method)(`${baseUrl}${o.path}`, {
            headers: baseHeaders,
            body: HttpBody.raw(o.body, { contentType: "application/json" })
          })
    // The bridge's own transport also sends without platform request/response objects (HttpTransport.directOf).
    const direct = ownTransport ? HttpTransport.directOf(base) : undefined
    const directHeaders: Readonly<Record<string, string>> = { ...baseHeaders }
    const directPostHeaders: Readonly<Record<string, string>> = { ...baseHeaders, "content-type": "application/json" }
    const directUrls = new Map<string, HttpTransport.DirectUrl | Error>()
    const directUrlOf = (path: string) => {
      let url = directUrls.get(path)
      if (url === undefined) directUrls.set(path, (url = HttpTransport.directUrl(`${baseUrl}${path}`)))
      return url
    }
    const scopedHttp = ownTransport ? HttpTransport.withAbortScope(http) : HttpClient.withScope(http)
    /**
     * Endpoints are traced (a span per call, with the call site) only when traces are exported; otherwise nobody
     * reads the span and its call-site capture was a measurable part of the per-call cost (docs/benchmarks.md).
     */
    const endpoint = (name: string): typeof Effect.fnUntraced => (tracing ? Effect.fn(name) : Effect.fnUntraced)
    /**
     * The LM Studio server's breaker, shared with the lms commands that talk to it (LmStudioBreaker): only failures of
     * the server itself count (not a 4xx or a bad name), and a call counts once, however many retries it took.
     */
    const breaker = yield* LmStudioBreaker
    const countsAgainstServer = (e: LmStudioError) =>
      isTransientLmStudioError(e) || e._tag === "LmStudioTimeout" || e._tag === "LmStudioConnectionLost"

    type Ctx = { readonly endpoint: string; readonly model?: string | undefined }

    /** No answer (refused, reset before the headers) is unreachable; a failure while reading one is a lost connection. */
    const transportError =
      (ctx: Ctx) =>
      (e: { readonly _tag: string; readonly message: string; readonly cause?: unknown; readonly phase?: "request" | "response" }): LmStudioError =>
        e._tag === "RequestError" || e.phase === "request"
          ? new LmStudioUnreachable({ baseUrl, endpoint: ctx.endpoint, reason: causeText(e) })
          : new LmStudioConnectionLost({ baseUrl, endpoint: ctx.endpoint, reason: causeText(e) })

    /**
     * The error rules for a whole body, synchronously: non-2xx, an `error` key on 2xx, unparseable JSON. Gives the
     * parsed JSON or the typed error (one function, no extra Effect steps on the hot path).
     */
    const judgeBody = (ctx: Ctx, status: number, text: string): Either.Either<unknown, LmStudioError> => {
      const json = parseJson(text)
      const errorBody = Option.flatMap(json, decodeErrorBody)
      if (status < 200 || status >= 300 || Option.isSome(errorBody)) {
        return Either.left(classifyError({ baseUrl, ...ctx }, status, Option.getOrUndefined(errorBody), text))
      }
      if (Option.isNone(json)) {
        return Either.left(new LmStudioMalformedResponse({ baseUrl, endpoint: ctx.endpoint, detail: `invalid JSON: ${text.slice(0, 120)}` }))
      }
      return Either.right(json.value)
    }

    /** Reads a whole body and applies the error rules of `judgeBody`. */
    const readBody = (ctx: Ctx, res: HttpClientResponse.HttpClientResponse) =>
      Effect.flatMap(res.text.pipe(Effect.mapError(transportError(ctx))), (text) => judgeBody(ctx, res.status, text))

    /** Reads, judges and decodes a whole body with the endpoint's Schema in one step. */
    const readDecoded = <A, I>(ctx: Ctx, schema: Schema.Schema<A, I>, res: HttpClientResponse.HttpClientResponse) => {
      const decodeSync = Schema.decodeUnknownEither(schema)
      return Effect.flatMap(res.text, (text): Either.Either<A, LmStudioError> =>
        Either.flatMap(judgeBody(ctx, res.status, text), (json) => Either.mapLeft(decodeSync(json), (e) => malformed(ctx, e)))
      )
    }

    const malformed = (ctx: Ctx, e: ParseResult.ParseError) =>
      new LmStudioMalformedResponse({ baseUrl, endpoint: ctx.endpoint, detail: e.message.split("\n").slice(0, 4).join(" ") })

    const decode = <A, I>(ctx: Ctx, schema: Schema.Schema<A, I>, value: unknown) =>
      Schema.decodeUnknown(schema)(value).pipe(Effect.mapError((e) => malformed(ctx, e)))

    /** Timeouts of plain exchanges: one watcher fiber for all calls in flight (see resilience/Deadlines.ts). */
    const deadlines = yield* Deadlines.make()
    const retrySchedule = (ctx: Ctx) =>
      httpTransientRetry.pipe(
        Schedule.tapInput((e: LmStudioError) =>
          Effect.logDebug("LM Studio call failed transiently; retrying").pipe(
            Effect.annotateLogs({ endpoint: ctx.endpoint, error: e._tag, detail: e.message })
          )
        )
      )

    /**
     * One request/response exchange with timeout, breaker and transient retries. At its deadline (or when
     * interrupted) the HTTP request is destroyed, so LM Studio stops working on it.
     */
    const exchange = <A, I>(ctx: Ctx, request: Outgoing, schema: Schema.Schema<A, I>, timeout: Duration.Duration): Effect.Effect<A, LmStudioError> => {
      const timeoutMs = Duration.toMillis(timeout)
      const onTimeout = () => new LmStudioTimeout({ baseUrl, endpoint: ctx.endpoint, timeoutMs, model: ctx.model })
      const attempt =
        direct !== undefined
          ? // The deadline watcher destroys the request when its time is up (no scope, no race of fibers per call).
            deadlines.within(timeoutMs, onTimeout, (onAbort) => exchangeDirect(direct, ctx, request, schema, onAbort))
          : // Any other HttpClient aborts a request when it is interrupted.
            Effect.timeoutFail(
              Effect.flatMap(http.execute(platformRequest(request)), (res) => readDecoded(ctx, schema, res)).pipe(
                Effect.mapError((e) => (isLmStudioError(e) ? e : transportError(ctx)(e)))
              ),
              { duration: timeout, onTimeout }
            )
      return breaker.protect(retryLazily(attempt, retrySchedule(ctx), isTransientLmStudioError), countsAgainstServer)
    }

    /** One exchange over the direct sender: the status and whole body, judged and decoded synchronously. */
    const exchangeDirect = <A, I>(
      send: HttpTransport.Direct,
      ctx: Ctx,
      request: Outgoing,
      schema: Schema.Schema<A, I>,
      onAbort: (abort: () => void) => void
    ): Effect.Effect<A, LmStudioError> => {
      const url = directUrlOf(request.path)
      if (url instanceof Error) return Effect.fail(new LmStudioUnreachable({ baseUrl, endpoint: ctx.endpoint, reason: url.message }))
      const decodeSync = Schema.decodeUnknownEither(schema)
      return Effect.matchEffect(send(request.method, url, request.body === undefined ? directHeaders : directPostHeaders, request.body, onAbort), {
        onFailure: (e) => Effect.fail(transportError(ctx)(e)),
        onSuccess: (r) =>
          Either.flatMap(judgeBody(ctx, r.status, r.body.toString("utf8")), (json) => Either.mapLeft(decodeSync(json), (e) => malformed(ctx, e)))
      })
    }

    /** A JSON POST; the body stays a string (no encoding to bytes and back). */
    const post = (path: string, body: Record<string, unknown>): Outgoing => ({ method: "POST", path, body: JSON.stringify(body) })

    /** The served model differs from the requested one (protocol §9.1)? Then this is the error. */
    const mismatchOf = (ctx: Ctx, served: string | null | undefined): ModelMismatch | undefined =>
      ctx.model !== undefined && served !== null && served !== undefined && served !== "" && !sameModel(ctx.model, served)
        ? new ModelMismatch({ requested: ctx.model, served, endpoint: ctx.endpoint })
        : undefined

    const checkModel = (ctx: Ctx, served: string | null | undefined): Effect.Effect<void, ModelMismatch> => {
      const mismatch = mismatchOf(ctx, served)
      return mismatch === undefined ? Effect.void : Effect.fail(mismatch)
    }

    const lost = (ctx: Ctx, reason: string) => new LmStudioConnectionLost({ baseUrl, endpoint: ctx.endpoint, reason })

    /**
     * Opens an SSE response. Errors before the first event (HTTP status, JSON error body instead of a stream) are
     * classified like any response. The request is aborted when the stream ends or its consumer is interrupted.
     */
    const sse = (ctx: Ctx, request: Outgoing): Stream.Stream<Sse.Event, LmStudioError> =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const res = yield* scopedHttp.execute(platformRequest(request)).pipe(
            Effect.mapError(transportError(ctx)),
            Effect.timeoutFail({
              duration: config.requestTimeout,
              onTimeout: () =>
                new LmStudioTimeout({ baseUrl, endpoint: ctx.endpoint, timeoutMs: Duration.toMillis(config.requestTimeout), model: ctx.model })
            }),
            (opening) => breaker.protect(opening, countsAgainstServer)
          )
          const contentType = res.headers["content-type"] ?? ""
          if (res.status >= 300 || !contentType.includes("text/event-stream")) {
            const json = yield* readBody(ctx, res)
            return yield* new LmStudioMalformedResponse({
              baseUrl,
              endpoint: ctx.endpoint,
              detail: `expected an event stream, got ${contentType || "no content type"}: ${JSON.stringify(json).slice(0, 120)}`
            })
          }
          return res.stream.pipe(
            // Once the headers arrived, any failure of the body is a connection lost mid-answer.
            Stream.mapError((e) => lost(ctx, e.message)),
            Stream.decodeText(),
            Stream.pipeThroughChannel(Sse.makeChannel())
          )
        })
      ).pipe(
        Stream.timeoutFail(
          () => new LmStudioTimeout({ baseUrl, endpoint: ctx.endpoint, timeoutMs: Duration.toMillis(config.requestTimeout), model: ctx.model }),
          config.requestTimeout
        )
      )

    const decodeFrame = <A, I>(ctx: Ctx, schema: Schema.Schema<A, I>, data: string) =>
      Effect.gen(function* () {
        const json = parseJson(data)
        if (Option.isNone(json)) {
          return yield* new LmStudioMalformedResponse({ baseUrl, endpoint: ctx.endpoint, detail: `invalid JSON in stream: ${data.slice(0, 120)}` })
        }
        const err = decodeErrorBody(json.value)
        if (Option.isSome(err)) return yield* Effect.fail(classifyError({ baseUrl, ...ctx }, 200, err.value, data))
        return yield* decode(ctx, schema, json.value)
      })

    // -------------------------------------------------------------------------------------------------------------
    // API detection
    // -------------------------------------------------------------------------------------------------------------

    /**
     * Does the server have this API? A 5xx proves nothing either way: it fails the detection (which is then not
     * cached), so a server that is failing is never taken for one without the API.
     */
    const probe = (path: string, method: "GET" | "POST", recognise: (json: unknown) => boolean): Effect.Effect<boolean, LmStudioError> =>
      http.execute(platformRequest(method === "GET" ? get(path) : post(path, {}))).pipe(
        Effect.flatMap((res) => Effect.map(res.text, (text) => ({ status: res.status, text, json: Option.getOrUndefined(parseJson(text)) }))),
        Effect.mapError(transportError({ endpoint: `${method} ${path}` })),
        Effect.timeoutFail({
          duration: config.metadataTimeout,
          onTimeout: () => new LmStudioTimeout({ baseUrl, endpoint: `${method} ${path}`, timeoutMs: Duration.toMillis(config.metadataTimeout) })
        }),
        Effect.flatMap(({ status, text, json }) =>
          status >= 500
            ? Effect.fail(new LmStudioHttpError({ baseUrl, endpoint: `${method} ${path}`, status, detail: text.slice(0, 300) || `HTTP ${status}` }))
            : Effect.succeed(recognise(json))
        )
      )

    const isUnknownRoute = (json: unknown) =>
      Option.match(decodeErrorBody(json), {
        onNone: () => false,
        onSome: (b) => typeof b.error === "string" && b.error.startsWith("Unexpected endpoint")
      })

    const apisRef = yield* Ref.make(Option.none<Apis>())
    const detectLock = yield* Effect.makeSemaphore(1)
    // One call of the breaker (its four probes together): a failing server counts once per detection.
    const detect = breaker.protect(
      Effect.all(
        {
          openai: probe("/v1/models", "GET", (j) => Schema.is(OpenAiModelsWire)(j)),
          v0: probe("/api/v0/models", "GET", (j) => Schema.is(V0ModelsWire)(j)),
          v1: probe("/api/v1/models", "GET", (j) => Schema.is(V1ModelsWire)(j)),
          // An empty POST is refused by a server that has the endpoint and answered "Unexpected endpoint" by one that has not.
          responses: probe("/v1/responses", "POST", (j) => j !== undefined && !isUnknownRoute(j))
        },
        { concurrency: 4 }
      ).pipe(
        // Probes that fail together fail once, with the first of their errors.
        Effect.catchAllCause((cause) => Option.match(Cause.failureOption(cause), { onNone: () => Effect.failCause(cause), onSome: Effect.fail }))
      ),
      countsAgainstServer
    )
    const apis: Effect.Effect<Apis, LmStudioError> = Effect.flatMap(Ref.get(apisRef), (cached) =>
      Option.isSome(cached)
        ? Effect.succeed(cached.value)
        : detectLock.withPermits(1)(
            Effect.flatMap(Ref.get(apisRef), (again) =>
              Option.isSome(again) ? Effect.succeed(again.value) : Effect.tap(detect, (found) => Ref.set(apisRef, Option.some(found)))
            )
          )
    )

    // -------------------------------------------------------------------------------------------------------------
    // Endpoints
    // -------------------------------------------------------------------------------------------------------------

    const greeting = endpoint("LmStudioClient.greeting")(function* () {
      const ctx = { endpoint: "GET /lmstudio-greeting" }
      const g = yield* exchange(ctx, get("/lmstudio-greeting"), GreetingWire, config.metadataTimeout)
      if (!g.lmstudio) return yield* new LmStudioMalformedResponse({ baseUrl, endpoint: ctx.endpoint, detail: "lmstudio is not true: not an LM Studio server" })
      return g
    })

    const listOpenAiModels = endpoint("LmStudioClient.listOpenAiModels")(function* () {
      const r = yield* exchange({ endpoint: "GET /v1/models" }, get("/v1/models"), OpenAiModelsWire, config.metadataTimeout)
      return r.data.map((m) => m.id)
    })

    const listV0Models = endpoint("LmStudioClient.listV0Models")(function* () {
      const r = yield* exchange({ endpoint: "GET /api/v0/models" }, get("/api/v0/models"), V0ModelsWire, config.metadataTimeout)
      return r.data.map(
        (m): ModelInfo => ({
          key: m.id,
          type: m.type === "embeddings" || m.type === "embedding" ? "embedding" : m.type === "vlm" ? "vlm" : m.type === "llm" ? "llm" : "unknown",
          displayName: undefined,
          publisher: m.publisher ?? undefined,
          architecture: m.arch ?? undefined,
          quantization: m.quantization ?? undefined,
          format: undefined,
          sizeBytes: undefined,
          maxContextLength: m.max_context_length ?? undefined,
          toolUse: m.capabilities ? m.capabilities.includes("tool_use") : undefined,
          vision: m.type === "vlm" ? true : undefined,
          loaded: m.state === "loaded" ? [{ id: m.id, contextLength: m.loaded_context_length ?? undefined, parallel: undefined }] : [],
          source: "v0"
        })
      )
    })

    const listV1Models = endpoint("LmStudioClient.listV1Models")(function* () {
      const r = yield* exchange({ endpoint: "GET /api/v1/models" }, get("/api/v1/models"), V1ModelsWire, config.metadataTimeout)
      return r.models.map(
        (m): ModelInfo => ({
          key: m.key,
          type: m.type === "embedding" || m.type === "embeddings" ? "embedding" : m.type === "llm" ? (m.capabilities?.vision ? "vlm" : "llm") : "unknown",
          displayName: m.display_name ?? undefined,
          publisher: m.publisher ?? undefined,
          architecture: m.architecture ?? undefined,
          quantization: m.quantization?.name ?? undefined,
          format: m.format ?? undefined,
          sizeBytes: m.size_bytes ?? undefined,
          maxContextLength: m.max_context_length ?? undefined,
          toolUse: m.capabilities?.trained_for_tool_use ?? undefined,
          vision: m.capabilities?.vision ?? undefined,
          loaded: (m.loaded_instances ?? []).map((i) => ({
            id: i.id,
            contextLength: i.config?.context_length ?? undefined,
            parallel: i.config?.parallel ?? undefined
          })),
          source: "v1"
        })
      )
    })

    const chatBody = (req: ChatRequest, stream: boolean): Record<string, unknown> => ({
      ...(req.model !== undefined ? { model: req.model } : {}),
      messages: req.messages.map((m) => ({
        role: m.role,
        content: m.content,
        ...(m.tool_calls && m.tool_calls.length > 0
          ? { tool_calls: m.tool_calls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } })) }
          : {}),
        ...(m.tool_call_id !== undefined ? { tool_call_id: m.tool_call_id } : {}),
        ...(m.name !== undefined ? { name: m.name } : {})
      })),
      ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
      ...(req.maxTokens !== undefined ? { max_tokens: req.maxTokens } : {}),
      ...(req.stop !== undefined ? { stop: req.stop } : {}),
      ...(req.responseFormat !== undefined ? { response_format: req.responseFormat } : {}),
      ...(req.tools !== undefined && req.tools.length > 0
        ? {
            tools: req.tools.map((t) => ({
              type: "function",
              function: { name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), parameters: t.parameters }
            }))
          }
        : {}),
      ...(req.toolChoice !== undefined ? { tool_choice: req.toolChoice } : {}),
      ...(req.ttlSeconds !== undefined ? { ttl: req.ttlSeconds } : {}),
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {})
    })

    /** The hot path of the bridge: one exchange and a synchronous reading of its result (no generator steps). */
    const chat = (req: ChatRequest): Effect.Effect<ChatResult, LmStudioError> => {
      const ctx = { endpoint: "POST /v1/chat/completions", model: req.model }
      const run = Effect.flatMap(
        exchange(ctx, post("/v1/chat/completions", chatBody(req, false)), ChatCompletionWire, config.requestTimeout),
        (r): Effect.Effect<ChatResult, LmStudioError> => {
          const mismatch = mismatchOf(ctx, r.model)
          if (mismatch !== undefined) return Effect.fail(mismatch)
          const choice = r.choices[0]
          if (!choice) return Effect.fail(new LmStudioMalformedResponse({ baseUrl, endpoint: ctx.endpoint, detail: "no choices in the response" }))
          const assembler = new ToolCallAssembler()
          for (const f of fragmentsOf(choice.message.tool_calls)) assembler.push(f)
          // Reasoning the server kept apart, and think blocks written inline in the content (domain/Think.ts).
          const inline = splitThink(choice.message.content ?? "")
          return Effect.succeed({
            id: r.id ?? "",
            model: r.model ?? req.model ?? "",
            content: inline.answer,
            reasoning: joinReasoning(choice.message.reasoning_content ?? choice.message.reasoning ?? undefined, inline.reasoning),
            toolCalls: assembler.finish(),
            finishReason: choice.finish_reason ?? "stop",
            usage: toUsage(r.usage)
          })
        }
      )
      return run.pipe(spanIf(tracing, "LmStudioClient.chat", { model: req.model ?? "(server default)" }))
    }

    /** A streamed chat completion as typed deltas; tool calls are assembled and emitted once complete. */
    const chatStream = (req: ChatRequest): Stream.Stream<ChatDelta, LmStudioError> => {
      const ctx = { endpoint: "POST /v1/chat/completions (stream)", model: req.model }
      return Stream.suspend(() => {
        const assembler = new ToolCallAssembler()
        const think = new ThinkSplitter()
        let done = false
        let finish: string | undefined
        let served = ""
        let checked = false
        return sse(ctx, post("/v1/chat/completions", chatBody(req, true))).pipe(
          Stream.takeWhile((e) => {
            if (e.data.trim() === "[DONE]") done = true
            return !done
          }),
          Stream.filter((e) => e.data.trim() !== ""),
          Stream.mapEffect((e) => decodeFrame(ctx, ChatChunkWire, e.data)),
          Stream.mapConcatEffect((chunk) =>
            Effect.gen(function* () {
              const out: Array<ChatDelta> = []
              if (!checked && chunk.model) {
                checked = true
                served = chunk.model
                yield* checkModel(ctx, chunk.model)
              }
              const usage = toUsage(chunk.usage)
              for (const choice of chunk.choices ?? []) {
                const d = choice.delta
                const reasoning = d?.reasoning_content ?? d?.reasoning
                if (reasoning) out.push({ _tag: "Reasoning", text: reasoning })
                if (d?.content) pushThinkPieces(out, think.push(d.content))
                for (const f of fragmentsOf(d?.tool_calls)) {
                  assembler.push(f)
                  out.push({ _tag: "ToolCallFragment", ...f })
                }
                if (choice.finish_reason) finish = choice.finish_reason
              }
              if (usage) out.push({ _tag: "Usage", usage })
              return out
            })
          ),
          Stream.concat(
            Stream.suspend((): Stream.Stream<ChatDelta, LmStudioError> => {
              if (!done && finish === undefined) return Stream.fail(lost(ctx, "the stream ended without a finish reason or [DONE]"))
              const tail: Array<ChatDelta> = []
              pushThinkPieces(tail, think.end())
              if (assembler.size > 0) tail.push({ _tag: "ToolCalls", calls: assembler.finish() })
              tail.push({ _tag: "Finish", reason: finish ?? "stop", model: served || req.model || "" })
              return Stream.fromIterable(tail)
            })
          ),
          Stream.withSpan("LmStudioClient.chatStream", { captureStackTrace: false, attributes: { model: req.model ?? "(server default)" } })
        )
      })
    }

    const complete = endpoint("LmStudioClient.complete")(function* (req: CompletionRequest) {
      const ctx = { endpoint: "POST /v1/completions", model: req.model }
      const r = yield* exchange(
        ctx,
        post("/v1/completions", {
          ...(req.model !== undefined ? { model: req.model } : {}),
          prompt: req.prompt,
          ...(req.maxTokens !== undefined ? { max_tokens: req.maxTokens } : {}),
          ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
          ...(req.stop !== undefined ? { stop: req.stop } : {}),
          ...(req.ttlSeconds !== undefined ? { ttl: req.ttlSeconds } : {})
        }),
        CompletionWire,
        config.requestTimeout
      )
      yield* checkModel(ctx, r.model)
      const choice = r.choices[0]
      const inline = splitThink(choice?.text ?? "")
      return {
        model: r.model ?? req.model ?? "",
        text: inline.answer,
        reasoning: joinReasoning(inline.reasoning),
        finishReason: choice?.finish_reason ?? "stop",
        usage: toUsage(r.usage)
      } satisfies CompletionResult
    })

    const embed = endpoint("LmStudioClient.embed")(function* (req: EmbeddingRequest) {
      const ctx = { endpoint: "POST /v1/embeddings", model: req.model }
      const r = yield* exchange(
        ctx,
        post("/v1/embeddings", {
          ...(req.model !== undefined ? { model: req.model } : {}),
          input: req.input,
          ...(req.ttlSeconds !== undefined ? { ttl: req.ttlSeconds } : {})
        }),
        EmbeddingsWire,
        config.requestTimeout
      )
      yield* checkModel(ctx, r.model)
      const vectors = [...r.data].sort((a, b) => (a.index ?? 0) - (b.index ?? 0)).map((d) => d.embedding)
      return {
        model: r.model ?? req.model ?? "",
        vectors,
        dimensions: vectors[0]?.length ?? 0,
        usage: r.usage ? { promptTokens: r.usage.prompt_tokens ?? 0, totalTokens: r.usage.total_tokens ?? 0 } : undefined
      } satisfies EmbeddingResult
    })

    const responseBody = (req: ResponseRequest, stream: boolean): Record<string, unknown> => ({
      ...(req.model !== undefined ? { model: req.model } : {}),
      input: req.input,
      ...(req.previousResponseId !== undefined ? { previous_response_id: req.previousResponseId } : {}),
      ...(req.instructions !== undefined ? { instructions: req.instructions } : {}),
      ...(req.tools !== undefined && req.tools.length > 0
        ? {
            tools: req.tools.map((t) => ({
              type: "function",
              name: t.name,
              ...(t.description !== undefined ? { description: t.description } : {}),
              parameters: t.parameters
            }))
          }
        : {}),
      ...(req.toolChoice !== undefined ? { tool_choice: req.toolChoice } : {}),
      ...(req.reasoningEffort !== undefined ? { reasoning: { effort: req.reasoningEffort } } : {}),
      ...(req.maxOutputTokens !== undefined ? { max_output_tokens: req.maxOutputTokens } : {}),
      ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
      ...(req.ttlSeconds !== undefined ? { ttl: req.ttlSeconds } : {}),
      ...(stream ? { stream: true } : {})
    })

    const respond = endpoint("LmStudioClient.respond")(function* (req: ResponseRequest) {
      const ctx = { endpoint: "POST /v1/responses", model: req.model }
      const r = yield* exchange(ctx, post("/v1/responses", responseBody(req, false)), ResponseWire, config.requestTimeout)
      yield* checkModel(ctx, r.model)
      return toResponseResult(r)
    })

    /** A streamed response: text and reasoning deltas, then the completed response. */
    const respondStream = (req: ResponseRequest): Stream.Stream<ResponseDelta, LmStudioError> => {
      const ctx = { endpoint: "POST /v1/responses (stream)", model: req.model }
      return Stream.suspend(() => {
        let completed = false
        const think = new ThinkSplitter()
        const textPieces = (text: string, last: boolean): ReadonlyArray<ResponseDelta> => {
          const a = think.push(text)
          const b = last ? think.end() : { answer: "", reasoning: "" }
          const out: Array<ResponseDelta> = []
          if (a.reasoning + b.reasoning !== "") out.push({ _tag: "Reasoning", text: a.reasoning + b.reasoning })
          if (a.answer + b.answer !== "") out.push({ _tag: "Text", text: a.answer + b.answer })
          return out
        }
        return sse(ctx, post("/v1/responses", responseBody(req, true))).pipe(
          Stream.filter((e) => e.data.trim() !== "" && e.data.trim() !== "[DONE]"),
          Stream.mapEffect((e) => decodeFrame(ctx, ResponseEventWire, e.data)),
          Stream.mapConcatEffect((ev): Effect.Effect<ReadonlyArray<ResponseDelta>, LmStudioError> => {
            switch (ev.type) {
              case "response.output_text.delta":
                return Effect.succeed(ev.delta ? textPieces(ev.delta, false) : [])
              case "response.reasoning_text.delta":
              case "response.reasoning_summary_text.delta":
                return Effect.succeed(ev.delta ? [{ _tag: "Reasoning", text: ev.delta }] : [])
              case "response.completed": {
                const response = ev.response
                if (!response) return Effect.succeed([])
                return Effect.as(
                  Effect.zipRight(checkModel(ctx, response.model), Effect.sync(() => (completed = true))),
                  [...textPieces("", true), { _tag: "Completed", response: toResponseResult(response) }]
                )
              }
              case "response.failed":
              case "error":
                return Effect.fail(
                  new LmStudioHttpError({
                    baseUrl,
                    endpoint: ctx.endpoint,
                    status: 200,
                    detail: JSON.stringify(ev.error ?? ev.response ?? ev.type).slice(0, 300)
                  })
                )
              default:
                return Effect.succeed([])
            }
          }),
          Stream.concat(Stream.suspend(() => (completed ? Stream.empty : Stream.fail(lost(ctx, "the stream ended before response.completed"))))),
          Stream.withSpan("LmStudioClient.respondStream", { captureStackTrace: false })
        )
      })
    }

    const loadModel = endpoint("LmStudioClient.loadModel")(function* (req: LoadRequest) {
      const r = yield* exchange(
        { endpoint: "POST /api/v1/models/load", model: req.model },
        post("/api/v1/models/load", {
          model: req.model,
          ...(req.contextLength !== undefined ? { context_length: req.contextLength } : {}),
          ...(req.ttlSeconds !== undefined ? { ttl: req.ttlSeconds } : {}),
          ...(req.identifier !== undefined ? { identifier: req.identifier } : {})
        }),
        V1LoadWire,
        config.requestTimeout
      )
      return {
        instanceId: r.instance_id,
        type: r.type ?? undefined,
        loadTimeSeconds: r.load_time_seconds ?? undefined,
        status: r.status ?? undefined
      } satisfies LoadResult
    })

    const unloadModel = endpoint("LmStudioClient.unloadModel")(function* (instanceId: string) {
      const r = yield* exchange(
        { endpoint: "POST /api/v1/models/unload", model: instanceId },
        post("/api/v1/models/unload", { instance_id: instanceId }),
        V1UnloadWire,
        config.metadataTimeout
      )
      return r.instance_id
    })

    return {
      baseUrl,
      breaker: breaker.snapshot,
      apis,
      greeting,
      listOpenAiModels,
      listV0Models,
      listV1Models,
      chat,
      chatStream,
      complete,
      embed,
      respond,
      respondStream,
      loadModel,
      unloadModel
    } as const
  })
}) {}
