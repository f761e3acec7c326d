/**
 * LmStudioTransport over any `@effect/platform` HttpClient (undici, fetch, a test's fake): interruption aborts a
 * request (the platform's abort signal), deadlines are `Effect.timeoutFail`, an opened response is bound to its
 * scope (`HttpClient.withScope`). HTTP client spans and trace headers only when traces are exported.
 */
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Effect, identity, Layer, Stream } from "effect"
import { AppConfig } from "../../Config.js"
import { tracingEnabled } from "../../observability/Tracing.js"
import {
  headersOf,
  LmStudioTransport,
  type Outgoing,
  reasonOf,
  TransportFailure,
  TransportTimeout
} from "./LmStudioTransport.js"

const failureOf = (e: HttpClientError.HttpClientError) =>
  new TransportFailure({ phase: e._tag === "RequestError" ? "request" : "response", reason: reasonOf(e) })

export const make = (
  client: HttpClient.HttpClient,
  baseUrl: string,
  headers: Readonly<Record<string, string>>
): LmStudioTransport["Type"] => {
  const scoped = HttpClient.withScope(client)
  const requestOf = (o: Outgoing): HttpClientRequest.HttpClientRequest =>
    HttpClientRequest.make(o.method)(`${baseUrl}${o.path}`, {
      headers: o.traceparent === undefined ? headers : { ...headers, traceparent: o.traceparent },
      ...(o.body !== undefined ? { body: HttpBody.text(o.body, "application/json") } : {})
    })
  return {
    exchange: (o, timeoutMs) =>
      client.execute(requestOf(o)).pipe(
        Effect.flatMap((res) => Effect.map(res.text, (text) => ({ status: res.status, text }))),
        Effect.mapError(failureOf),
        Effect.timeoutFail({ duration: timeoutMs, onTimeout: () => new TransportTimeout({ timeoutMs }) })
      ),
    open: (o, timeoutMs) =>
      scoped.execute(requestOf(o)).pipe(
        Effect.map((res) => ({
          status: res.status,
          contentType: res.headers["content-type"] ?? "",
          body: Stream.mapError(res.stream, failureOf),
          text: Effect.mapError(res.text, failureOf)
        })),
        Effect.mapError(failureOf),
        Effect.timeoutFail({ duration: timeoutMs, onTimeout: () => new TransportTimeout({ timeoutMs }) })
      )
  }
}

/** The transport over the HttpClient in context, with the config's base URL and token. */
export const layer: Layer.Layer<LmStudioTransport, never, AppConfig | HttpClient.HttpClient> = Layer.effect(
  LmStudioTransport,
  Effect.gen(function*() {
    const config = yield* AppConfig
    const tracing = tracingEnabled(config)
    const client = (yield* HttpClient.HttpClient).pipe(
      tracing ? identity : HttpClient.withTracerDisabledWhen(() => true),
      HttpClient.withTracerPropagation(tracing)
    )
    return make(client, config.baseUrl, headersOf(config.apiToken, config.baseUrlCredentials))
  })
)
