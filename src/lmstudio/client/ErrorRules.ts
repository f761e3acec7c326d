/**
 * LM Studio's error rules, as pure functions: which bodies are errors (non-2xx, an `error` key even on HTTP 200,
 * unparseable JSON; protocol §1.1, §9.3), which typed error each one is, and which model answered. The same rules
 * serve whole bodies and SSE frames.
 */
import { Either, Option, type ParseResult, Schema } from "effect"
import {
  ContextOverflow,
  LmStudioApiUnsupported,
  LmStudioConnectionLost,
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
} from "../../domain/Errors.js"
import { closestMatches, sameModel } from "../../domain/ModelName.js"
import type { TransportFailure, TransportTimeout } from "../transport/LmStudioTransport.js"
import { ErrorBody } from "./Wire.js"

/** Where a call went: the base URL, the endpoint (`POST /v1/chat/completions`) and the model it asked for. */
export interface CallSite {
  readonly baseUrl: string
  readonly endpoint: string
  readonly model?: string | undefined
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

/** LM Studio's two context-overflow wordings (protocol §12.3): [tokens needed, context of the instance]. */
const overflowOf = (message: string): readonly [number, number] | undefined => {
  const keep = /keep the first (\d+) tokens[\s\S]*?context length of only (\d+) tokens/i.exec(message)
  const nKeep = keep ?? /n_keep \((\d+)\) >= n_ctx \((\d+)\)/i.exec(message)
  return nKeep === null ? undefined : [Number(nKeep[1]), Number(nKeep[2])]
}

/**
 * Turns an LM Studio error body (or a failed status) into a typed error. The same function serves HTTP errors,
 * errors on HTTP 200 and SSE error frames.
 */
export const classifyError = (
  ctx: CallSite,
  status: number,
  body: ErrorBody | undefined,
  rawText: string
): LmStudioError => {
  const e = body?.error
  const message = typeof e === "string" ? e : (e?.message ?? rawText.slice(0, 500))
  const code = typeof e === "object" && e !== null && e.code !== null && e.code !== undefined
    ? String(e.code)
    : undefined
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
  const overflow = overflowOf(message)
  if (overflow !== undefined) {
    return new ContextOverflow({
      model: ctx.model,
      tokensNeeded: overflow[0],
      tokensAvailable: overflow[1],
      detail: message
    })
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

/** A transport failure in the domain's terms: no answer is unreachable, an answer cut short a lost connection. */
export const transportError = (ctx: CallSite, e: TransportFailure | TransportTimeout): LmStudioError =>
  e._tag === "TransportTimeout"
    ? new LmStudioTimeout({ baseUrl: ctx.baseUrl, endpoint: ctx.endpoint, timeoutMs: e.timeoutMs, model: ctx.model })
    : e.phase === "request"
    ? new LmStudioUnreachable({ baseUrl: ctx.baseUrl, endpoint: ctx.endpoint, reason: e.reason })
    : new LmStudioConnectionLost({ baseUrl: ctx.baseUrl, endpoint: ctx.endpoint, reason: e.reason })

const decodeErrorBodyOption = Schema.decodeUnknownOption(ErrorBody)

/** Only bodies that carry an `error` key are decoded as errors; the common case costs one property check. */
const decodeErrorBody = (json: unknown): Option.Option<ErrorBody> =>
  typeof json === "object" && json !== null && "error" in json ? decodeErrorBodyOption(json) : Option.none()

/** JSON text to a value; the typed decoding happens afterwards with the endpoint's Schema. */
export const parseJson = (text: string): Option.Option<unknown> => {
  try {
    return Option.some(JSON.parse(text) as unknown)
  } catch {
    return Option.none()
  }
}

/** An answer LM Studio's route table does not have: `{"error": "Unexpected endpoint or method. …"}`. */
export const isUnknownRoute = (json: unknown): boolean =>
  Option.match(decodeErrorBody(json), {
    onNone: () => false,
    onSome: (b) => typeof b.error === "string" && b.error.startsWith("Unexpected endpoint")
  })

export const malformed = (ctx: CallSite, detail: string) =>
  new LmStudioMalformedResponse({ baseUrl: ctx.baseUrl, endpoint: ctx.endpoint, detail })

const parseFailure = (ctx: CallSite, e: ParseResult.ParseError) =>
  malformed(ctx, e.message.split("\n").slice(0, 4).join(" "))

/** The error rules for a whole body, synchronously: gives the parsed JSON or the typed error. */
export const judgeBody = (ctx: CallSite, status: number, text: string): Either.Either<unknown, LmStudioError> => {
  const json = parseJson(text)
  const errorBody = Option.flatMap(json, decodeErrorBody)
  if (status < 200 || status >= 300 || Option.isSome(errorBody)) {
    return Either.left(classifyError(ctx, status, Option.getOrUndefined(errorBody), text))
  }
  if (Option.isNone(json)) return Either.left(malformed(ctx, `invalid JSON: ${text.slice(0, 120)}`))
  return Either.right(json.value)
}

/** A whole body judged and decoded with the endpoint's Schema, in one synchronous step. */
export const decoderOf = <A, I>(schema: Schema.Schema<A, I>) => {
  const decodeSync = Schema.decodeUnknownEither(schema)
  return (ctx: CallSite, status: number, text: string): Either.Either<A, LmStudioError> =>
    Either.flatMap(
      judgeBody(ctx, status, text),
      (json) => Either.mapLeft(decodeSync(json), (e) => parseFailure(ctx, e))
    )
}

/** One SSE frame: invalid JSON, an error frame (classified like any error body) or the endpoint's event. */
export const frameDecoderOf = <A, I>(schema: Schema.Schema<A, I>) => {
  const decodeSync = Schema.decodeUnknownEither(schema)
  return (ctx: CallSite, data: string): Either.Either<A, LmStudioError> => {
    const json = parseJson(data)
    if (Option.isNone(json)) return Either.left(malformed(ctx, `invalid JSON in stream: ${data.slice(0, 120)}`))
    const err = decodeErrorBody(json.value)
    if (Option.isSome(err)) return Either.left(classifyError(ctx, 200, err.value, data))
    return Either.mapLeft(decodeSync(json.value), (e) => parseFailure(ctx, e))
  }
}

/** The served model differs from the requested one (protocol §9.1)? Then this is the error. */
export const mismatchOf = (ctx: CallSite, served: string | null | undefined): ModelMismatch | undefined =>
  ctx.model !== undefined && served !== null && served !== undefined && served !== "" && !sameModel(ctx.model, served)
    ? new ModelMismatch({ requested: ctx.model, served, endpoint: ctx.endpoint })
    : undefined
