/**
 * What the client records of each inference request to LM Studio, on the OpenTelemetry GenAI conventions
 * (docs/observability.md): `gen_ai.client.operation.duration` (retries included, `error.type` = the error's tag),
 * `gen_ai.client.token.usage` (input/output, as LM Studio reported them), `gen_ai.client.operation.time_to_first_chunk`
 * for streams, and — when traces are exported — a CLIENT span `{operation} {model}`.
 *
 * The operation names are the conventions' (`chat`, `text_completion`, `embeddings`); the Responses API is `chat` with
 * `openai.api.type=responses`, as the conventions map OpenAI's (LM Studio serves OpenAI's API). The provider is
 * `lmstudio` (the conventions have no value for it; a custom one is allowed).
 */
import { type Clock, Effect, Exit, Stream } from "effect"
import { errorTypeOfExit, metricsOn, record, type Recorder, timed } from "../../observability/Metrics.js"

export type GenAiOperation = "chat" | "text_completion" | "embeddings"
export type OpenAiApi = "chat_completions" | "completions" | "embeddings" | "responses"

export interface GenAiCall {
  readonly operation: GenAiOperation
  readonly api: OpenAiApi
  /** The model as sent (an identifier the catalog resolved); "" when the server picks. */
  readonly model: string | undefined
  readonly address: string
  readonly port: number
}

export interface TokenCounts {
  readonly input?: number | undefined
  readonly output?: number | undefined
}

/** The labels every GenAI metric of a call starts with: operation, provider, model, address. */
const baseLabels = (call: GenAiCall) => [call.operation, "lmstudio", call.model || "_OTHER", call.address] as const

/** The base labels and the metric's own: `error.type` for the duration, `gen_ai.token.type` for the usage. */
const withLabel = <L extends string | undefined>(call: GenAiCall, last: L) => [...baseLabels(call), last] as const

const recordTokens = (r: Recorder, call: GenAiCall, tokens: TokenCounts | undefined) => {
  if (tokens === undefined) return
  if (tokens.input !== undefined) r.update("genAiTokens", tokens.input, withLabel(call, "input"))
  if (tokens.output !== undefined) r.update("genAiTokens", tokens.output, withLabel(call, "output"))
}

/** The end of a request, whole or streamed: its duration and outcome, an overflow LM Studio found, its tokens. */
const recordEnd = <A, E>(
  r: Recorder,
  call: GenAiCall,
  seconds: number,
  exit: Exit.Exit<A, E>,
  tokens: () => TokenCounts | undefined
) => {
  const error = errorTypeOfExit(exit)
  r.update("genAiDuration", seconds, withLabel(call, error))
  // LM Studio refused a prompt longer than the context (the bridge's estimate let it through).
  if (error === "ContextOverflow") r.update("contextOverflows", 1, ["lmstudio"])
  if (Exit.isSuccess(exit)) recordTokens(r, call, tokens())
}

const spanOptions = (call: GenAiCall) => ({
  kind: "client" as const,
  captureStackTrace: false,
  attributes: {
    "gen_ai.operation.name": call.operation,
    "gen_ai.provider.name": "lmstudio",
    "openai.api.type": call.api,
    "server.address": call.address,
    "server.port": call.port,
    ...(call.model ? { "gen_ai.request.model": call.model } : {})
  }
})

const spanName = (call: GenAiCall) => `${call.operation} ${call.model || "default"}`

const annotateUsage = (tokens: TokenCounts | undefined) =>
  Effect.annotateCurrentSpan({
    ...(tokens?.input !== undefined ? { "gen_ai.usage.input_tokens": tokens.input } : {}),
    ...(tokens?.output !== undefined ? { "gen_ai.usage.output_tokens": tokens.output } : {})
  })

/** Observes one whole-body request: its duration and tokens, and its span when `tracing`. */
export const observeRequest = <A, E, R>(
  call: GenAiCall,
  tracing: boolean,
  tokensOf: (a: A) => TokenCounts | undefined,
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => {
  const measured = timed(
    self,
    (r, seconds, exit) =>
      recordEnd(r, call, seconds, exit, () => (Exit.isSuccess(exit) ? tokensOf(exit.value) : undefined))
  )
  return tracing
    ? measured.pipe(
      Effect.tap((a) => annotateUsage(tokensOf(a))),
      Effect.withSpan(spanName(call), spanOptions(call))
    )
    : measured
}

/**
 * Observes a streamed request: time to its first element, its whole duration, the tokens of the element that
 * carries them (`tokensOf`), and its span when `tracing`. Nothing is measured when metrics and traces are off.
 */
export const observeStream = <A, E, R>(
  call: GenAiCall,
  tracing: boolean,
  tokensOf: (a: A) => TokenCounts | undefined,
  self: Stream.Stream<A, E, R>
): Stream.Stream<A, E, R> => {
  const measured = (clock: Clock.Clock) => {
    let t0 = 0n
    let first = true
    let tokens: TokenCounts | undefined
    const observed = self.pipe(
      Stream.tap((a) => {
        const t = tokensOf(a)
        if (t !== undefined) tokens = t
        if (!first) return Effect.void
        first = false
        const seconds = Number(clock.unsafeCurrentTimeNanos() - t0) / 1e9
        return Effect.zipRight(
          record((r) => r.update("genAiFirstChunk", seconds, baseLabels(call))),
          tracing ? Effect.annotateCurrentSpan("gen_ai.response.time_to_first_chunk", seconds) : Effect.void
        )
      }),
      Stream.onEnd(Effect.suspend(() => (tracing ? annotateUsage(tokens) : Effect.void)))
    )
    return Stream.ensuringWith(
      Stream.onStart(observed, Effect.sync(() => (t0 = clock.unsafeCurrentTimeNanos()))),
      (exit) => record((r) => recordEnd(r, call, Number(clock.unsafeCurrentTimeNanos() - t0) / 1e9, exit, () => tokens))
    )
  }
  return Stream.unwrap(
    Effect.map(Effect.all([metricsOn, Effect.clock]), ([on, clock]) => {
      if (!on && !tracing) return self
      return tracing ? Stream.withSpan(measured(clock), spanName(call), spanOptions(call)) : measured(clock)
    })
  )
}
