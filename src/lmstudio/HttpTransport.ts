/**
 * The HTTP transport under LmStudioClient: an `@effect/platform` `HttpClient` over `node:http`/`node:https` with a
 * keep-alive agent.
 *
 * Why not `NodeHttpClient.layerUndici`: per call, the undici client and its web `Response` cost about as much as the
 * whole overhead budget of the client (docs/benchmarks.md, "LmStudioClient overhead"); the stock `node:http` client of
 * platform-node is slower still (no keep-alive by default, body and response awaited by two fibers). This one sends
 * the body with one `end()`, resumes once on `response`, and reads a body straight from the `IncomingMessage`.
 * It is still a platform `HttpClient` made with `HttpClient.make`: the request's abort signal (scopes, interruption,
 * `HttpClient.withScope`) destroys the request, tracing and all combinators work as with any other client.
 *
 * Bodies: empty, bytes and text (what LmStudioClient sends). A stream or form-data body fails with a
 * `RequestError` (reason "Encode") naming the body kind rather than being sent wrongly.
 */
import * as Cookies from "@effect/platform/Cookies"
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as UrlParams from "@effect/platform/UrlParams"
import * as NodeStream from "@effect/platform-node/NodeStream"
import { Effect, Inspectable, Layer, Option, Stream } from "effect"
import * as Http from "node:http"
import * as Https from "node:https"

class NodeClientResponse extends Inspectable.Class implements HttpClientResponse.HttpClientResponse {
  readonly [HttpClientResponse.TypeId]: HttpClientResponse.TypeId = HttpClientResponse.TypeId
  readonly [HttpIncomingMessage.TypeId]: HttpIncomingMessage.TypeId = HttpIncomingMessage.TypeId
  private textMemo: Effect.Effect<string, HttpClientError.ResponseError> | undefined
  private headersMemo: Headers.Headers | undefined

  constructor(
    readonly request: HttpClientRequest.HttpClientRequest,
    readonly source: Http.IncomingMessage,
    /** The whole body, when the transport read it before answering (every response but an event stream). */
    private readonly whole?: Buffer | { readonly failure: unknown }
  ) {
    super()
  }

  private readonly onError = (cause: unknown) =>
    new HttpClientError.ResponseError({ request: this.request, response: this, reason: "Decode", cause })

  get status(): number {
    return this.source.statusCode ?? 0
  }

  get headers(): Headers.Headers {
    if (this.headersMemo === undefined) {
      const out: Record<string, string> = {}
      for (const [key, value] of Object.entries(this.source.headers)) {
        if (value !== undefined) out[key] = Array.isArray(value) ? value.join(", ") : value
      }
      this.headersMemo = Headers.fromInput(out)
    }
    return this.headersMemo
  }

  get cookies(): Cookies.Cookies {
    const header = this.source.headers["set-cookie"]
    return header === undefined ? Cookies.empty : Cookies.fromSetCookie(header)
  }

  get remoteAddress(): Option.Option<string> {
    return Option.fromNullable(this.source.socket?.remoteAddress)
  }

  /** The whole body as bytes: already read, or read once from the message (no stream machinery). */
  private get bytes(): Effect.Effect<Buffer, HttpClientError.ResponseError> {
    const whole = this.whole
    if (whole === undefined) return this.readBytes
    return Buffer.isBuffer(whole) ? Effect.succeed(whole) : Effect.fail(this.onError(whole.failure))
  }

  private readonly readBytes: Effect.Effect<Buffer, HttpClientError.ResponseError> = Effect.async((resume) => {
    const source = this.source
    const chunks: Array<Buffer> = []
    const onData = (chunk: Buffer) => chunks.push(chunk)
    const onEnd = () => {
      cleanup()
      resume(Effect.succeed(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)))
    }
    const onFailure = (cause: unknown) => {
      cleanup()
      resume(Effect.fail(this.onError(cause)))
    }
    const onClose = () => {
      if (!source.complete) onFailure(new Error("the connection closed before the body was complete"))
    }
    const cleanup = () => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onFailure)
      source.off("close", onClose)
    }
    if (source.readableEnded) return resume(Effect.fail(this.onError(new Error("the body was already read"))))
    source.on("data", onData)
    source.once("end", onEnd)
    source.once("error", onFailure)
    source.once("close", onClose)
    return Effect.sync(() => {
      cleanup()
      source.destroy()
    })
  })

  get text(): Effect.Effect<string, HttpClientError.ResponseError> {
    if (this.textMemo === undefined) {
      let memo: string | undefined
      const read = Effect.map(this.bytes, (b) => (memo = b.toString("utf8")))
      this.textMemo = Effect.suspend(() => (memo === undefined ? read : Effect.succeed(memo)))
    }
    return this.textMemo
  }

  get json(): Effect.Effect<unknown, HttpClientError.ResponseError> {
    return Effect.flatMap(this.text, (text) =>
      Effect.try({ try: (): unknown => (text === "" ? null : JSON.parse(text)), catch: this.onError })
    )
  }

  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpClientError.ResponseError> {
    return Effect.flatMap(this.text, (text) =>
      Effect.try({ try: () => UrlParams.fromInput(new URLSearchParams(text)), catch: this.onError })
    )
  }

  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpClientError.ResponseError> {
    return Effect.map(this.bytes, (b) => {
      const copy = new ArrayBuffer(b.byteLength)
      new Uint8Array(copy).set(b)
      return copy
    })
  }

  get stream(): Stream.Stream<Uint8Array, HttpClientError.ResponseError> {
    if (this.whole !== undefined) return Stream.fromEffect(this.bytes)
    return NodeStream.fromReadable<HttpClientError.ResponseError, Uint8Array>(() => this.source, this.onError)
  }

  get formData(): Effect.Effect<FormData, HttpClientError.ResponseError> {
    return Effect.flatMap(this.bytes, (b) =>
      Effect.tryPromise({
        try: () => new Response(b, { headers: this.headers, status: this.status }).formData(),
        catch: this.onError
      })
    )
  }

  toJSON(): unknown {
    return { _id: "@effect/platform/HttpClientResponse", request: this.request.toJSON(), status: this.status }
  }
}

const bodyOf = (request: HttpClientRequest.HttpClientRequest): string | Uint8Array | undefined | Error => {
  const body = request.body
  switch (body._tag) {
    case "Empty":
      return undefined
    case "Uint8Array":
      return body.body
    case "Raw":
      return typeof body.body === "string" || body.body instanceof Uint8Array
        ? body.body
        : new Error(`unsupported raw body of type ${typeof body.body}`)
    case "FormData":
    case "Stream":
      return new Error(`unsupported ${body._tag} request body (this transport sends whole bodies only)`)
  }
}

/** The client over the given agents (one for http:, one for https:). */
export const fromAgents = (agents: { readonly http: Http.Agent; readonly https: Https.Agent }): HttpClient.HttpClient =>
  HttpClient.make((request, url, signal) =>
    Effect.async<HttpClientResponse.HttpClientResponse, HttpClientError.RequestError>((resume) => {
      const body = bodyOf(request)
      if (body instanceof Error) {
        return resume(Effect.fail(new HttpClientError.RequestError({ request, reason: "Encode", cause: body })))
      }
      const headers: Record<string, string> = { ...request.headers }
      if (request.body._tag !== "Empty") {
        const contentType = request.body.contentType
        if (contentType !== undefined && contentType !== "" && headers["content-type"] === undefined) headers["content-type"] = contentType
        if (body !== undefined) headers["content-length"] = String(typeof body === "string" ? Buffer.byteLength(body) : body.byteLength)
      }
      if (signal.aborted) return resume(Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause: signal.reason })))
      // The abort signal (interruption, a closed scope, a deadline) destroys the request; listened to directly rather
      // than through node's `signal` option, which also watches the stream's end (measurably more per call).
      const options = { method: request.method, headers }
      const req =
        url.protocol === "https:" ? Https.request(url, { ...options, agent: agents.https }) : Http.request(url, { ...options, agent: agents.http })
      const onResponse = (res: Http.IncomingMessage) => {
        req.off("error", onError)
        // A late error (socket reset while the body is read) reaches the response's own listeners.
        req.on("error", ignore)
        if ((res.headers["content-type"] ?? "").includes("text/event-stream")) {
          return resume(Effect.succeed(new NodeClientResponse(request, res)))
        }
        readWhole(res, (whole) => resume(Effect.succeed(new NodeClientResponse(request, res, whole))))
      }
      const onError = (cause: Error) => {
        req.off("response", onResponse)
        resume(Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause })))
      }
      const onAbort = () => req.destroy(signal.reason instanceof Error ? signal.reason : new Error("aborted"))
      signal.addEventListener("abort", onAbort, { once: true })
      req.once("close", () => signal.removeEventListener("abort", onAbort))
      req.once("response", onResponse)
      req.once("error", onError)
      req.end(typeof body === "string" || body === undefined ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8"))
      return Effect.sync(() => {
        req.off("response", onResponse)
        req.off("error", onError)
        req.on("error", ignore)
        req.destroy()
      })
    })
  )

const ignore = () => {}

/**
 * Reads a whole body, then calls `done` once with the bytes or the failure (reset, closed early). Answering with
 * the body already read saves the caller a second asynchronous wait; event streams are never read this way.
 */
const readWhole = (source: Http.IncomingMessage, done: (whole: Buffer | { readonly failure: unknown }) => void) => {
  const chunks: Array<Buffer> = []
  let finished = false
  const finish = (whole: Buffer | { readonly failure: unknown }) => {
    if (finished) return
    finished = true
    source.off("data", onData)
    done(whole)
  }
  const onData = (chunk: Buffer) => chunks.push(chunk)
  source.on("data", onData)
  source.once("end", () => finish(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)))
  source.once("error", (failure) => finish({ failure }))
  source.once("close", () => {
    if (!source.complete) finish({ failure: new Error("the connection closed before the body was complete") })
  })
}

/** `HttpClient` layer with keep-alive agents that are destroyed with the layer. */
export const layer: Layer.Layer<HttpClient.HttpClient> = Layer.scoped(
  HttpClient.HttpClient,
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => ({
        http: new Http.Agent({ keepAlive: true }),
        https: new Https.Agent({ keepAlive: true })
      })),
      (agents) =>
        Effect.sync(() => {
          agents.http.destroy()
          agents.https.destroy()
        })
    ),
    fromAgents
  )
)
