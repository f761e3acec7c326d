/**
 * The port between LmStudioClient and the wire: one whole-body exchange and one opened (streamable) response, each
 * with its deadline, both aborting the HTTP request when they end early. Two layers implement it: `NodeTransport`
 * (production: node:http with keep-alive agents) and `HttpClientTransport` (any `@effect/platform` HttpClient).
 * The client holds the protocol (paths, bodies, error rules); a transport holds only the base URL and the headers.
 */
import { Context, Data, Option, Redacted } from "effect"
import type { Effect, Scope, Stream } from "effect"
import { basicAuthorization } from "../../domain/Redact.js"

/** A request as the client describes it: method, path under the base URL, JSON body already serialised. */
export interface Outgoing {
  readonly method: "GET" | "POST"
  readonly path: string
  readonly body?: string | undefined
  /** W3C trace context of the span the request belongs to (only while traces are exported). */
  readonly traceparent?: string | undefined
}

/** A response read to its end. */
export interface Answer {
  readonly status: number
  readonly text: string
}

/** A response whose headers arrived; its body is read as it comes (`body`) or whole (`text`), once. */
export interface Opened {
  readonly status: number
  readonly contentType: string
  readonly body: Stream.Stream<Uint8Array, TransportFailure>
  readonly text: Effect.Effect<string, TransportFailure>
}

/** No answer (`request`: refused, reset before the headers, a bad URL) or an answer cut short (`response`). */
export class TransportFailure extends Data.TaggedError("TransportFailure")<{
  readonly phase: "request" | "response"
  readonly reason: string
}> {}

/** The deadline passed; the request was aborted. */
export class TransportTimeout extends Data.TaggedError("TransportTimeout")<{ readonly timeoutMs: number }> {}

export class LmStudioTransport extends Context.Tag("lmstudio-bridge/LmStudioTransport")<
  LmStudioTransport,
  {
    /** Sends the request and reads the whole answer; past `timeoutMs` (or on interruption) the request is destroyed. */
    readonly exchange: (
      request: Outgoing,
      timeoutMs: number
    ) => Effect.Effect<Answer, TransportFailure | TransportTimeout>
    /**
     * Sends the request and answers once the headers arrived (within `timeoutMs`). Closing the scope destroys the
     * request, whether its body was read or not.
     */
    readonly open: (
      request: Outgoing,
      timeoutMs: number
    ) => Effect.Effect<Opened, TransportFailure | TransportTimeout, Scope.Scope>
  }
>() {}

/** The most specific text of a failure: `connect ECONNREFUSED 127.0.0.1:1234` rather than "Transport error". */
export const reasonOf = (e: unknown): string => {
  let text = e instanceof Error ? e.message : String(e)
  let cause: unknown = e instanceof Error ? e.cause : undefined
  for (let depth = 0; depth < 4 && cause instanceof Error; depth++) {
    text = cause.message
    cause = cause.cause
  }
  return text
}

/**
 * The headers of every request to LM Studio: `Accept: application/json`, and the Bearer token when configured, else
 * the base URL's credentials as Basic auth.
 */
export const headersOf = (
  apiToken: Option.Option<Redacted.Redacted<string>>,
  basic: Option.Option<Redacted.Redacted<string>> = Option.none()
): Readonly<Record<string, string>> => ({
  accept: "application/json",
  ...Option.match(apiToken, {
    onNone: () =>
      Option.match(basic, { onNone: () => ({}), onSome: (b) => ({ authorization: basicAuthorization(b) }) }),
    onSome: (token) => ({ authorization: `Bearer ${Redacted.value(token)}` })
  })
})
