/**
 * LmStudioClient: LM Studio's HTTP API (protocol §1–§4) as typed calls, over the LmStudioTransport port.
 *
 * - One `exchange` (whole bodies: deadline, breaker, transient retries) and one `sse` (event streams: deadline to
 *   the headers, then the longest silence between chunks); interrupting either aborts the HTTP request.
 * - Every body goes through the error rules (client/ErrorRules.ts) and a lenient Schema (client/Wire.ts); the wire is
 *   mapped to the client's shapes in client/Mapping.ts. A response from another model fails with `ModelMismatch`.
 * - Which APIs the server has is detected once and cached (only a successful detection is cached).
 * - Every failure of the server itself counts once against the shared LM Studio breaker (LmStudioBreaker).
 */
import * as Sse from "@effect/experimental/Sse"
import { Cause, Duration, Effect, Either, Option, Ref, Schema, Stream } from "effect"
import { AppConfig } from "../Config.js"
import { LmStudioConnectionLost, type LmStudioError, LmStudioHttpError, LmStudioTimeout } from "../domain/Errors.js"
import type { Usage } from "../domain/Messages.js"
import { joinReasoning, splitThink, ThinkSplitter } from "../domain/Think.js"
import { record } from "../observability/Metrics.js"
import { currentTraceparent } from "../observability/Propagation.js"
import { tracingEnabled } from "../observability/Tracing.js"
import { httpTransientRetry, isTransientLmStudioError, retryLazily } from "../resilience/Policies.js"
import {
  type CallSite,
  decoderOf,
  frameDecoderOf,
  isUnknownRoute,
  judgeBody,
  malformed,
  mismatchOf,
  parseJson,
  transportError
} from "./client/ErrorRules.js"
import {
  type GenAiCall,
  type GenAiOperation,
  observeRequest,
  observeStream,
  type OpenAiApi,
  type TokenCounts
} from "./client/GenAiTelemetry.js"
import {
  chatBody,
  chatResultOf,
  completionBody,
  embeddingsBody,
  fragmentsOf,
  loadBody,
  modelInfoFromV0,
  modelInfoFromV1,
  pushThinkPieces,
  responseBody,
  ToolCallAssembler,
  toResponseResult,
  toUsage
} from "./client/Mapping.js"
import type {
  Apis,
  ChatDelta,
  ChatRequest,
  ChatResult,
  CompletionRequest,
  CompletionResult,
  EmbeddingRequest,
  EmbeddingResult,
  ResponseDelta,
  ResponseRequest,
  ResponseResult,
  RestLoadRequest,
  RestLoadResult
} from "./client/Shapes.js"
import {
  ChatChunkWire,
  ChatCompletionWire,
  CompletionWire,
  EmbeddingsWire,
  GreetingWire,
  OpenAiModelsWire,
  ResponseEventWire,
  ResponseWire,
  type UnloadRequestWire,
  V0ModelsWire,
  V1LoadWire,
  V1ModelsWire,
  V1UnloadWire
} from "./client/Wire.js"
import { LmStudioBreaker } from "./LmStudioBreaker.js"
import { LmStudioTransport, type Outgoing } from "./transport/LmStudioTransport.js"

const get = (path: string): Outgoing => ({ method: "GET", path })

/** A JSON POST; the body stays a string (no encoding to bytes and back). */
const post = (path: string, body: object): Outgoing => ({ method: "POST", path, body: JSON.stringify(body) })

/** Only failures of the server itself count against its breaker (not a 4xx or a bad name). */
const countsAgainstServer = (e: LmStudioError) =>
  isTransientLmStudioError(e) || e._tag === "LmStudioTimeout" || e._tag === "LmStudioConnectionLost"

export class LmStudioClient extends Effect.Service<LmStudioClient>()("lmstudio-bridge/LmStudioClient", {
  dependencies: [LmStudioBreaker.Default],
  effect: Effect.gen(function*() {
    const config = yield* AppConfig
    const baseUrl = config.baseUrl
    const tracing = tracingEnabled(config)
    const transport = yield* LmStudioTransport
    const breaker = yield* LmStudioBreaker
    const requestTimeoutMs = Duration.toMillis(config.requestTimeout)
    const metadataTimeoutMs = Duration.toMillis(config.metadataTimeout)
    /**
     * Endpoints are traced (a span per call, with the call site) only when traces are exported; otherwise nobody
     * reads the span and its call-site capture was a measurable part of the per-call cost (docs/benchmarks.md).
     */
    const endpoint = (name: string): typeof Effect.fnUntraced => (tracing ? Effect.fn(name) : Effect.fnUntraced)
    const site = (endpoint: string, model?: string | undefined): CallSite => ({ baseUrl, endpoint, model })
    // Read once: a URL's getters are not free, and every LLM request names its server.
    const server = new URL(baseUrl)
    const address = server.hostname
    const port = Number(server.port || (server.protocol === "https:" ? 443 : 80))
    const genAi = (operation: GenAiOperation, api: OpenAiApi, model: string | undefined): GenAiCall => ({
      operation,
      api,
      model,
      address,
      port
    })
    const tokensOf = (u: Usage | undefined): TokenCounts | undefined =>
      u === undefined ? undefined : { input: u.promptTokens, output: u.completionTokens }

    /** The request with the current span's `traceparent` (LM Studio may log it; a proxy in front may trace it). */
    const traced = (request: Outgoing): Effect.Effect<Outgoing> =>
      tracing
        ? Effect.map(currentTraceparent, (tp) => (Option.isSome(tp) ? { ...request, traceparent: tp.value } : request))
        : Effect.succeed(request)

    const retried = (ctx: CallSite) => (e: LmStudioError) =>
      Effect.logDebug("LM Studio call failed transiently; retrying").pipe(
        Effect.annotateLogs({ endpoint: ctx.endpoint, error: e._tag, detail: e.message }),
        Effect.zipRight(
          record((r) => r.update("retries", 1, ["LM Studio", "status" in e ? `${e._tag} ${e.status}` : e._tag]))
        )
      )

    /**
     * One request/response exchange with deadline, breaker and transient retries (a call counts once against the
     * breaker, however many retries it took). The body is judged and decoded synchronously.
     */
    const exchange = <A>(
      ctx: CallSite,
      request: Outgoing,
      decode: (ctx: CallSite, status: number, text: string) => Either.Either<A, LmStudioError>,
      timeoutMs: number
    ): Effect.Effect<A, LmStudioError> => {
      const attempt = Effect.matchEffect(Effect.flatMap(traced(request), (r) => transport.exchange(r, timeoutMs)), {
        onFailure: (e) => Effect.fail(transportError(ctx, e)),
        onSuccess: (r) => decode(ctx, r.status, r.text)
      })
      return breaker.protect(
        retryLazily(attempt, httpTransientRetry, isTransientLmStudioError, retried(ctx)),
        countsAgainstServer
      )
    }

    const checkModel = (ctx: CallSite, served: string | null | undefined): Effect.Effect<void, LmStudioError> => {
      const mismatch = mismatchOf(ctx, served)
      return mismatch === undefined ? Effect.void : Effect.fail(mismatch)
    }

    const lost = (ctx: CallSite, reason: string): LmStudioError =>
      new LmStudioConnectionLost({ baseUrl, endpoint: ctx.endpoint, reason })

    /**
     * Opens an SSE response. Errors before the first event (HTTP status, JSON error body instead of a stream) are
     * classified like any response. The request is aborted when the stream ends or its consumer is interrupted.
     */
    const sse = (ctx: CallSite, request: Outgoing): Stream.Stream<Sse.Event, LmStudioError> =>
      Stream.unwrapScoped(
        Effect.gen(function*() {
          const res = yield* breaker.protect(
            Effect.mapError(
              Effect.flatMap(traced(request), (r) => transport.open(r, requestTimeoutMs)),
              (e) => transportError(ctx, e)
            ),
            countsAgainstServer
          )
          if (res.status >= 300 || !res.contentType.includes("text/event-stream")) {
            const text = yield* Effect.mapError(res.text, (e) => transportError(ctx, e))
            const json = yield* judgeBody(ctx, res.status, text)
            return yield* malformed(
              ctx,
              `expected an event stream, got ${res.contentType || "no content type"}: ${
                JSON.stringify(json).slice(0, 120)
              }`
            )
          }
          return res.body.pipe(
            // Once the headers arrived, any failure of the body is a connection lost mid-answer.
            Stream.mapError((e) => lost(ctx, e.reason)),
            Stream.decodeText(),
            Stream.pipeThroughChannel(Sse.makeChannel())
          )
        })
      ).pipe(
        Stream.timeoutFail(
          () => new LmStudioTimeout({ baseUrl, endpoint: ctx.endpoint, timeoutMs: requestTimeoutMs, model: ctx.model }),
          config.requestTimeout
        )
      )

    // -------------------------------------------------------------------------------------------------------------
    // API detection
    // -------------------------------------------------------------------------------------------------------------

    /**
     * Does the server have this API? A 5xx proves nothing either way: it fails the detection (which is then not
     * cached), so a server that is failing is never taken for one without the API.
     */
    const probe = (request: Outgoing, recognise: (json: unknown) => boolean): Effect.Effect<boolean, LmStudioError> => {
      const ctx = site(`${request.method} ${request.path}`)
      return Effect.matchEffect(transport.exchange(request, metadataTimeoutMs), {
        onFailure: (e) => Effect.fail(transportError(ctx, e)),
        onSuccess: ({ status, text }) =>
          status >= 500
            ? Effect.fail(
              new LmStudioHttpError({
                baseUrl,
                endpoint: ctx.endpoint,
                status,
                detail: text.slice(0, 300) || `HTTP ${status}`
              })
            )
            : Effect.succeed(recognise(Option.getOrUndefined(parseJson(text))))
      })
    }

    const apisRef = yield* Ref.make(Option.none<Apis>())
    const detectLock = yield* Effect.makeSemaphore(1)
    // One call of the breaker (its four probes together): a failing server counts once per detection.
    const detect = breaker.protect(
      Effect.all(
        {
          openai: probe(get("/v1/models"), Schema.is(OpenAiModelsWire)),
          v0: probe(get("/api/v0/models"), Schema.is(V0ModelsWire)),
          v1: probe(get("/api/v1/models"), Schema.is(V1ModelsWire)),
          // An empty POST is refused by a server that has the endpoint and answered "Unexpected endpoint" by one that has not.
          responses: probe(post("/v1/responses", {}), (j) => j !== undefined && !isUnknownRoute(j))
        },
        { concurrency: 4 }
      ).pipe(
        // Probes that fail together fail once, with the first of their errors.
        Effect.catchAllCause((cause) =>
          Option.match(Cause.failureOption(cause), { onNone: () => Effect.failCause(cause), onSome: Effect.fail })
        )
      ),
      countsAgainstServer
    )
    const apis: Effect.Effect<Apis, LmStudioError> = Effect.flatMap(Ref.get(apisRef), (cached) =>
      Option.isSome(cached)
        ? Effect.succeed(cached.value)
        : detectLock.withPermits(1)(
          Effect.flatMap(Ref.get(apisRef), (again) =>
            Option.isSome(again)
              ? Effect.succeed(again.value)
              : Effect.tap(detect, (found) => Ref.set(apisRef, Option.some(found))))
        ))

    /** The decoders of every endpoint's body, made once. */
    const decode = {
      greeting: decoderOf(GreetingWire),
      openAiModels: decoderOf(OpenAiModelsWire),
      v0Models: decoderOf(V0ModelsWire),
      v1Models: decoderOf(V1ModelsWire),
      chat: decoderOf(ChatCompletionWire),
      chatChunk: frameDecoderOf(ChatChunkWire),
      completion: decoderOf(CompletionWire),
      embeddings: decoderOf(EmbeddingsWire),
      response: decoderOf(ResponseWire),
      responseEvent: frameDecoderOf(ResponseEventWire),
      load: decoderOf(V1LoadWire),
      unload: decoderOf(V1UnloadWire)
    }

    // -------------------------------------------------------------------------------------------------------------
    // Endpoints
    // -------------------------------------------------------------------------------------------------------------

    const greeting = endpoint("LmStudioClient.greeting")(function*() {
      const ctx = site("GET /lmstudio-greeting")
      const g = yield* exchange(ctx, get("/lmstudio-greeting"), decode.greeting, metadataTimeoutMs)
      if (!g.lmstudio) return yield* malformed(ctx, "lmstudio is not true: not an LM Studio server")
      return g
    })

    const listOpenAiModels = endpoint("LmStudioClient.listOpenAiModels")(function*() {
      const r = yield* exchange(site("GET /v1/models"), get("/v1/models"), decode.openAiModels, metadataTimeoutMs)
      return r.data.map((m) => m.id)
    })

    const listV0Models = endpoint("LmStudioClient.listV0Models")(function*() {
      const r = yield* exchange(site("GET /api/v0/models"), get("/api/v0/models"), decode.v0Models, metadataTimeoutMs)
      return r.data.map(modelInfoFromV0)
    })

    const listV1Models = endpoint("LmStudioClient.listV1Models")(function*() {
      const r = yield* exchange(site("GET /api/v1/models"), get("/api/v1/models"), decode.v1Models, metadataTimeoutMs)
      return r.models.map(modelInfoFromV1)
    })

    /** The hot path of the bridge: one exchange and a synchronous reading of its result (no generator steps). */
    const chat = (req: ChatRequest): Effect.Effect<ChatResult, LmStudioError> => {
      const ctx = site("POST /v1/chat/completions", req.model)
      const run = Effect.flatMap(
        exchange(ctx, post("/v1/chat/completions", chatBody(req, false)), decode.chat, requestTimeoutMs),
        (r): Effect.Effect<ChatResult, LmStudioError> => {
          const mismatch = mismatchOf(ctx, r.model)
          if (mismatch !== undefined) return Effect.fail(mismatch)
          const choice = r.choices[0]
          return choice
            ? Effect.succeed(chatResultOf(r, choice, req.model))
            : Effect.fail(malformed(ctx, "no choices in the response"))
        }
      )
      return observeRequest(genAi("chat", "chat_completions", req.model), tracing, (r) => tokensOf(r.usage), run)
    }

    /** A streamed chat completion as typed deltas; tool calls are assembled and emitted once complete. */
    const chatStream = (req: ChatRequest): Stream.Stream<ChatDelta, LmStudioError> => {
      const ctx = site("POST /v1/chat/completions (stream)", req.model)
      return observeStream(
        genAi("chat", "chat_completions", req.model),
        tracing,
        (d) => (d._tag === "Usage" ? tokensOf(d.usage) : undefined),
        Stream.suspend(() => {
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
            Stream.mapEffect((e) => decode.chatChunk(ctx, e.data)),
            Stream.mapConcatEffect((chunk) =>
              Effect.gen(function*() {
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
                if (!done && finish === undefined) {
                  return Stream.fail(lost(ctx, "the stream ended without a finish reason or [DONE]"))
                }
                const tail: Array<ChatDelta> = []
                pushThinkPieces(tail, think.end())
                if (assembler.size > 0) tail.push({ _tag: "ToolCalls", calls: assembler.finish() })
                tail.push({ _tag: "Finish", reason: finish ?? "stop", model: served || req.model || "" })
                return Stream.fromIterable(tail)
              })
            )
          )
        })
      )
    }

    const completeOnce = endpoint("LmStudioClient.complete")(function*(req: CompletionRequest) {
      const ctx = site("POST /v1/completions", req.model)
      const r = yield* exchange(
        ctx,
        post("/v1/completions", completionBody(req)),
        decode.completion,
        requestTimeoutMs
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

    const embedOnce = endpoint("LmStudioClient.embed")(function*(req: EmbeddingRequest) {
      const ctx = site("POST /v1/embeddings", req.model)
      const r = yield* exchange(
        ctx,
        post("/v1/embeddings", embeddingsBody(req)),
        decode.embeddings,
        requestTimeoutMs
      )
      yield* checkModel(ctx, r.model)
      const vectors = [...r.data].sort((a, b) => (a.index ?? 0) - (b.index ?? 0)).map((d) => d.embedding)
      return {
        model: r.model ?? req.model ?? "",
        vectors,
        dimensions: vectors[0]?.length ?? 0,
        usage: r.usage
          ? { promptTokens: r.usage.prompt_tokens ?? 0, totalTokens: r.usage.total_tokens ?? 0 }
          : undefined
      } satisfies EmbeddingResult
    })

    const respondOnce = endpoint("LmStudioClient.respond")(function*(req: ResponseRequest) {
      const ctx = site("POST /v1/responses", req.model)
      const r = yield* exchange(ctx, post("/v1/responses", responseBody(req, false)), decode.response, requestTimeoutMs)
      yield* checkModel(ctx, r.model)
      return toResponseResult(r)
    })

    /** A streamed response: text and reasoning deltas, then the completed response. */
    const respondStream = (req: ResponseRequest): Stream.Stream<ResponseDelta, LmStudioError> => {
      const ctx = site("POST /v1/responses (stream)", req.model)
      return observeStream(
        genAi("chat", "responses", req.model),
        tracing,
        (d) => (d._tag === "Completed" ? tokensOf(d.response.usage) : undefined),
        Stream.suspend(() => {
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
            Stream.mapEffect((e) => decode.responseEvent(ctx, e.data)),
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
                      baseUrl: ctx.baseUrl,
                      endpoint: ctx.endpoint,
                      status: 200,
                      detail: JSON.stringify(ev.error ?? ev.response ?? ev.type).slice(0, 300)
                    })
                  )
                default:
                  return Effect.succeed([])
              }
            }),
            Stream.concat(
              Stream.suspend(
                () => (completed ? Stream.empty : Stream.fail(lost(ctx, "the stream ended before response.completed")))
              )
            )
          )
        })
      )
    }

    /** An endpoint answering with one whole body, observed as a GenAI operation (GenAiTelemetry.ts). */
    const observed = <Q extends { readonly model?: string | undefined }, A>(
      operation: GenAiOperation,
      api: OpenAiApi,
      tokens: (a: A) => TokenCounts | undefined,
      once: (req: Q) => Effect.Effect<A, LmStudioError>
    ) =>
    (req: Q): Effect.Effect<A, LmStudioError> =>
      observeRequest(genAi(operation, api, req.model), tracing, tokens, once(req))
    const complete = observed(
      "text_completion",
      "completions",
      (r: CompletionResult) => tokensOf(r.usage),
      completeOnce
    )
    const embed = observed(
      "embeddings",
      "embeddings",
      (r: EmbeddingResult) => (r.usage === undefined ? undefined : { input: r.usage.promptTokens }),
      embedOnce
    )
    const respond = observed("chat", "responses", (r: ResponseResult) => tokensOf(r.usage), respondOnce)

    const loadModel = endpoint("LmStudioClient.loadModel")(function*(req: RestLoadRequest) {
      const r = yield* exchange(
        site("POST /api/v1/models/load", req.model),
        post("/api/v1/models/load", loadBody(req)),
        decode.load,
        requestTimeoutMs
      )
      return {
        instanceId: r.instance_id,
        type: r.type ?? undefined,
        loadTimeSeconds: r.load_time_seconds ?? undefined,
        status: r.status ?? undefined
      } satisfies RestLoadResult
    })

    const unloadModel = endpoint("LmStudioClient.unloadModel")(function*(instanceId: string) {
      const r = yield* exchange(
        site("POST /api/v1/models/unload", instanceId),
        post("/api/v1/models/unload", { instance_id: instanceId } satisfies UnloadRequestWire),
        decode.unload,
        metadataTimeoutMs
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
