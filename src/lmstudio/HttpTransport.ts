/**
 * The HTTP transport under LmStudioClient: an `@effect/platform` `HttpClient` over `node:http`/`node:https` with a
 * keep-alive agent.
 *
 * Why not `NodeHttpClient.layerUndici`: per call, the undici client and its web `Response` cost about as much as the
 * whole overhead budget of the client (docs/benchmarks.md, "LmStudioClient overhead"); the stock `node:http` client of
 * platform-node is slower still (no keep-alive by default, body and response awaited by two fibers). This one sends
 * the body with one `end()`, resumes once on `response`, and reads a body straight from the `IncomingMessage`.
 * It is a platform `HttpClient` (made with `HttpClient.makeWith`, so every combinator works); interruption destroys a
 * request, and `withAbortScope` (this transport's `HttpClient.withScope`) also ties it to a scope. The platform's
 * `withScope` relies on `HttpClient.make`'s abort controller and does not apply here.
 *
 * Bodies: empty, bytes and text (what LmStudioClient sends). A stream or form-data body fails with a
 * `RequestError` (reason "Encode") naming the body kind rather than being sent wrongly.
 *
 * `directOf(client)` gives the same transport without the platform's request and response objects: one request in,
 * status and whole body out. LmStudioClient uses it for its plain JSON exchanges (the hot path of every call):
 * building an `HttpClientRequest`, running it through the client's pipeline and reading the body through the
 * response's effects cost ~0.15 ms of CPU per call over the bare request (docs/benchmarks.md).
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
import { Data, Effect, Inspectable, Layer, Option, Scope, Stream } from "effect"
import * as Http from "node:http"
import * as Https from "node:https"
import { urlToHttpOptions } from "node:url"

/** A body read to its end, or why it could not be. */
type Whole = Buffer | { readonly failure: unknown }

class NodeClientResponse extends Inspectable.Class implements HttpClientResponse.HttpClientResponse {
  readonly [HttpClientResponse.TypeId]: HttpClientResponse.TypeId = HttpClientResponse.TypeId
  readonly [HttpIncomingMessage.TypeId]: HttpIncomingMessage.TypeId = HttpIncomingMessage.TypeId
  private textMemo: Effect.Effect<string, HttpClientError.ResponseError> | undefined
  private headersMemo: Headers.Headers | undefined

  constructor(
    readonly request: HttpClientRequest.HttpClientRequest,
    readonly source: Http.IncomingMessage,
    /** The whole body, when the transport read it before answering (every response but an event stream). */
    private readonly whole?: Whole
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
    return this.whole === undefined ? this.readBytes : this.fromWhole(this.whole)
  }

  private readonly fromWhole = (whole: Whole): Effect.Effect<Buffer, HttpClientError.ResponseError> =>
    Buffer.isBuffer(whole) ? Effect.succeed(whole) : Effect.fail(this.onError(whole.failure))

  private readonly readBytes: Effect.Effect<Buffer, HttpClientError.ResponseError> = Effect.async((resume) => {
    if (this.source.readableEnded) return resume(Effect.fail(this.onError(new Error("the body was already read"))))
    readWhole(this.source, (whole) => resume(this.fromWhole(whole)))
    return Effect.sync(() => this.source.destroy())
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

/** Requests bound to an abort scope by `withAbortScope`: closing that scope destroys the request. */
const abortScopes = new WeakMap<HttpClientRequest.HttpClientRequest, Scope.Scope>()

/** Marks clients made here (the value is the client's `Direct` sender), so callers can use `directOf` and `withAbortScope`. */
const TransportId: unique symbol = Symbol.for("lmstudio-bridge/HttpTransport")

/** Where a direct request goes: parsed once (`directUrl`), reused for every request. */
export interface DirectUrl {
  readonly https: boolean
  readonly options: Http.RequestOptions
}

/** Parses a URL once for `Direct` requests; an invalid URL is an `Error`. */
export const directUrl = (href: string): DirectUrl | Error => {
  try {
    const url = new URL(href)
    return { https: url.protocol === "https:", options: urlToHttpOptions(url) }
  } catch (cause) {
    return cause instanceof Error ? cause : new Error(String(cause))
  }
}

/** A response read to its end. */
export interface WholeResponse {
  readonly status: number
  readonly body: Buffer
}

/** Why a direct request failed: no answer (`request`: refused, reset before the headers) or a cut body (`response`). */
export class DirectError extends Data.TaggedError("DirectError")<{ readonly phase: "request" | "response"; readonly cause: unknown }> {
  override get message(): string {
    return this.cause instanceof Error ? this.cause.message : String(this.cause)
  }
}

/**
 * One request with a whole (or no) body, answered with the status and the whole body. Interruption destroys the
 * request; `onAbort` receives "destroy this request" as soon as it exists (for a deadline watcher).
 */
export type Direct = (
  method: string,
  url: DirectUrl,
  headers: Readonly<Record<string, string>>,
  body: string | undefined,
  onAbort?: (abort: () => void) => void
) => Effect.Effect<WholeResponse, DirectError>

/** The direct sender of a client made here, else undefined (any other `HttpClient`). */
export const directOf = (client: HttpClient.HttpClient): Direct | undefined => {
  const direct: unknown = (client as HttpClient.HttpClient & { readonly [TransportId]?: Direct })[TransportId]
  return typeof direct === "function" ? (direct as Direct) : undefined
}

export const isTransport = (client: HttpClient.HttpClient): boolean => TransportId in client

/**
 * This transport's `HttpClient.withScope`: each request is bound to the caller's scope, and closing the scope (a
 * deadline, the end of a stream) destroys it. Interruption destroys a request with or without it.
 */
export const withAbortScope = <E, R>(self: HttpClient.HttpClient.With<E, R>): HttpClient.HttpClient.With<E, R | Scope.Scope> =>
  HttpClient.transform(self, (effect, request) =>
    Effect.flatMap(Effect.scope, (scope) => {
      abortScopes.set(request, scope)
      return effect
    })
  )

const urlOf = (request: HttpClientRequest.HttpClientRequest): string | URL | Error => {
  if (request.urlParams.length === 0 && Option.isNone(request.hash)) return request.url
  const url = UrlParams.makeUrl(request.url, request.urlParams, request.hash)
  return url._tag === "Right" ? url.right : url.left
}

/**
 * One request: sent with one `end()`, answered once the headers (event streams) or the whole body arrived.
 * `onAbort`, when given, receives "destroy this request" as soon as the request exists.
 */
const send = (agents: Agents, request: HttpClientRequest.HttpClientRequest, onAbort: ((abort: () => void) => void) | undefined) =>
  Effect.async<HttpClientResponse.HttpClientResponse, HttpClientError.RequestError>((resume) => {
    const body = bodyOf(request)
    if (body instanceof Error) {
      return resume(Effect.fail(new HttpClientError.RequestError({ request, reason: "Encode", cause: body })))
    }
    const url = urlOf(request)
    if (url instanceof Error) return resume(Effect.fail(new HttpClientError.RequestError({ request, reason: "InvalidUrl", cause: url })))
    const headers: Record<string, string> = { ...request.headers }
    if (request.body._tag !== "Empty") {
      const contentType = request.body.contentType
      if (contentType !== undefined && contentType !== "" && headers["content-type"] === undefined) headers["content-type"] = contentType
      if (body !== undefined) headers["content-length"] = String(typeof body === "string" ? Buffer.byteLength(body) : body.byteLength)
    }
    let req: Http.ClientRequest
    try {
      const https = typeof url === "string" ? url.startsWith("https:") : url.protocol === "https:"
      req = https
        ? Https.request(url, { method: request.method, headers, agent: agents.https })
        : Http.request(url, { method: request.method, headers, agent: agents.http })
    } catch (cause) {
      return resume(Effect.fail(new HttpClientError.RequestError({ request, reason: "InvalidUrl", cause })))
    }
    const text = typeof body === "string" || body === undefined ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8")
    return dispatch(
      req,
      text,
      onAbort,
      (res) => {
        if ((res.headers["content-type"] ?? "").includes("text/event-stream")) {
          return resume(Effect.succeed(new NodeClientResponse(request, res)))
        }
        readWhole(res, (whole) => resume(Effect.succeed(new NodeClientResponse(request, res, whole))))
      },
      (cause) => resume(Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause })))
    )
  })

/**
 * Sends a request that has been made, with its whole body, and wires its outcome: `answer` gets the response, `failed`
 * an error before any response. `onAbort`, when given, receives "destroy this request" at once. Returns what
 * interruption runs: the request is destroyed (LM Studio sees the connection close).
 */
const dispatch = (
  req: Http.ClientRequest,
  body: string | undefined,
  onAbort: ((abort: () => void) => void) | undefined,
  answer: (res: Http.IncomingMessage) => void,
  failed: (cause: Error) => void
): Effect.Effect<void> => {
  onAbort?.(() => destroy(req))
  const onResponse = (res: Http.IncomingMessage) => {
    req.off("error", onError)
    // A late error (socket reset while the body is read) reaches the response's own listeners.
    req.on("error", ignore)
    answer(res)
  }
  const onError = (cause: Error) => {
    req.off("response", onResponse)
    failed(cause)
  }
  req.once("response", onResponse)
  req.once("error", onError)
  req.end(body)
  return Effect.sync(() => {
    req.off("response", onResponse)
    req.off("error", onError)
    destroy(req)
  })
}

const sendDirect =
  (agents: Agents): Direct =>
  (method, url, headers, body, onAbort) =>
    Effect.async<WholeResponse, DirectError>((resume) => {
      let req: Http.ClientRequest
      try {
        const options = { ...url.options, method, headers }
        req = url.https ? Https.request({ ...options, agent: agents.https }) : Http.request({ ...options, agent: agents.http })
      } catch (cause) {
        return resume(Effect.fail(new DirectError({ phase: "request", cause })))
      }
      return dispatch(
        req,
        body,
        onAbort,
        (res) =>
          readWhole(res, (whole) =>
            resume(
              Buffer.isBuffer(whole)
                ? Effect.succeed({ status: res.statusCode ?? 0, body: whole })
                : Effect.fail(new DirectError({ phase: "response", cause: whole.failure }))
            )
          ),
        (cause) => resume(Effect.fail(new DirectError({ phase: "request", cause })))
      )
    })

const destroy = (req: Http.ClientRequest) => {
  if (req.destroyed) return
  req.on("error", ignore)
  req.destroy()
}

interface Agents {
  readonly http: Http.Agent
  readonly https: Https.Agent
}

/**
 * The client over the given agents (one for http:, one for https:), made with `HttpClient.makeWith`: no URL
 * re-parsing, no abort controller and no response wrapper per call (`HttpClient.make`'s envelope measured ~0.1 ms of
 * latency and ~0.2 ms of CPU per call: docs/benchmarks.md). Cancellation: interruption destroys the request at any
 * point; `withAbortScope` adds "when this scope closes". No HTTP client spans are made (the bridge's own spans cover
 * its calls).
 */
export const fromAgents = (agents: Agents): HttpClient.HttpClient => {
  const client = HttpClient.makeWith(
    (effect: Effect.Effect<HttpClientRequest.HttpClientRequest, HttpClientError.HttpClientError>) =>
      Effect.flatMap(effect, (request) => {
        const scope = abortScopes.get(request)
        if (scope === undefined) return send(agents, request, undefined)
        // Bound to a scope: its close runs the abort the request hands over once it exists.
        let abort: (() => void) | undefined
        return Effect.zipRight(
          Scope.addFinalizer(scope, Effect.sync(() => abort?.())),
          send(agents, request, (f) => (abort = f))
        )
      }),
    Effect.succeed
  )
  return Object.assign(client, { [TransportId]: sendDirect(agents) })
}

const ignore = () => {}

/**
 * Reads a whole body, then calls `done` once with the bytes or the failure (reset, closed early). Answering with
 * the body already read saves the caller a second asynchronous wait; event streams are never read this way.
 */
const readWhole = (source: Http.IncomingMessage, done: (whole: Whole) => void) => {
  const chunks: Array<Buffer> = []
  let finished = false
  const finish = (whole: Whole) => {
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
