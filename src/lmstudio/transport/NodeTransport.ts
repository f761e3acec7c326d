/**
 * Pays for itself: +0.16 ms of CPU per call over raw HTTP where undici's HttpClient costs +0.56 ms (docs/benchmarks.md).
 *
 * The production LmStudioTransport. An exchange sends its body with one `end()`, reads the whole body from the
 * `IncomingMessage` and answers once; its deadline is watched by `Deadlines` (one watcher fiber for all calls in
 * flight), which destroys the request when its time is up. An opened response hands its body over as a stream;
 * closing the scope destroys the request. Interruption destroys a request at any point.
 */
import * as NodeStream from "@effect/platform-node/NodeStream"
import { Effect, Layer, Scope } from "effect"
import * as Http from "node:http"
import * as Https from "node:https"
import { urlToHttpOptions } from "node:url"
import { AppConfig } from "../../Config.js"
import * as Deadlines from "../../resilience/Deadlines.js"
import {
  type Answer,
  headersOf,
  LmStudioTransport,
  type Opened,
  type Outgoing,
  reasonOf,
  TransportFailure,
  TransportTimeout
} from "./LmStudioTransport.js"

interface Agents {
  readonly http: Http.Agent
  readonly https: Https.Agent
}

/** Where requests of one path go: parsed once, reused for every request. */
interface Target {
  readonly https: boolean
  readonly options: Http.RequestOptions
}

/** A body read to its end, or why it could not be. */
type Whole = Buffer | { readonly failure: unknown }

const ignore = () => {}

const destroy = (req: Http.ClientRequest) => {
  if (req.destroyed) return
  req.on("error", ignore)
  req.destroy()
}

/**
 * Reads a whole body, then calls `done` once with the bytes or the failure (reset, closed early). Answering with
 * the body already read saves the caller a second asynchronous wait.
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

const responseFailure = (failure: unknown) => new TransportFailure({ phase: "response", reason: reasonOf(failure) })

/**
 * Sends a request with its whole body and wires its outcome: `answer` gets the response, `failed` an error before
 * any response. `onAbort`, when given, receives "destroy this request" at once. Returns what interruption runs: the
 * request is destroyed (LM Studio sees the connection close).
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

/** The transport over the given agents, base URL and headers; `deadlines` watches the exchanges' timeouts. */
export const make = (
  agents: Agents,
  baseUrl: string,
  headers: Readonly<Record<string, string>>,
  deadlines: Deadlines.Deadlines
): LmStudioTransport["Type"] => {
  const getHeaders = { ...headers }
  const postHeaders = { ...headers, "content-type": "application/json" }
  const targets = new Map<string, Target | TransportFailure>()
  const targetOf = (path: string): Target | TransportFailure => {
    let target = targets.get(path)
    if (target === undefined) {
      try {
        const url = new URL(`${baseUrl}${path}`)
        target = { https: url.protocol === "https:", options: urlToHttpOptions(url) }
      } catch (cause) {
        target = new TransportFailure({ phase: "request", reason: reasonOf(cause) })
      }
      targets.set(path, target)
    }
    return target
  }

  /** Makes the request (not yet sent), or fails with why it cannot be made. */
  const requestOf = (o: Outgoing): Http.ClientRequest | TransportFailure => {
    const target = targetOf(o.path)
    if (target instanceof TransportFailure) return target
    try {
      const base = o.body === undefined ? getHeaders : postHeaders
      const headers = o.traceparent === undefined ? base : { ...base, traceparent: o.traceparent }
      const options = { ...target.options, method: o.method, headers }
      return target.https
        ? Https.request({ ...options, agent: agents.https })
        : Http.request({ ...options, agent: agents.http })
    } catch (cause) {
      return new TransportFailure({ phase: "request", reason: reasonOf(cause) })
    }
  }

  const sendWhole = (o: Outgoing, onAbort: Deadlines.OnAbort) =>
    Effect.async<Answer, TransportFailure>((resume) => {
      const req = requestOf(o)
      if (req instanceof TransportFailure) return resume(Effect.fail(req))
      return dispatch(
        req,
        o.body,
        onAbort,
        (res) =>
          readWhole(res, (whole) =>
            resume(
              Buffer.isBuffer(whole)
                ? Effect.succeed({ status: res.statusCode ?? 0, text: whole.toString("utf8") })
                : Effect.fail(responseFailure(whole.failure))
            )),
        (cause) => resume(Effect.fail(new TransportFailure({ phase: "request", reason: reasonOf(cause) })))
      )
    })

  const exchange: LmStudioTransport["Type"]["exchange"] = (o, timeoutMs) =>
    deadlines.within(timeoutMs, () => new TransportTimeout({ timeoutMs }), (onAbort) => sendWhole(o, onAbort))

  const opened = (res: Http.IncomingMessage): Opened => ({
    status: res.statusCode ?? 0,
    contentType: res.headers["content-type"] ?? "",
    body: NodeStream.fromReadable<TransportFailure, Uint8Array>(() => res, responseFailure),
    text: Effect.async<string, TransportFailure>((resume) => {
      if (res.readableEnded) return resume(Effect.fail(responseFailure(new Error("the body was already read"))))
      readWhole(
        res,
        (whole) =>
          resume(
            Buffer.isBuffer(whole)
              ? Effect.succeed(whole.toString("utf8"))
              : Effect.fail(responseFailure(whole.failure))
          )
      )
    })
  })

  const open: LmStudioTransport["Type"]["open"] = (o, timeoutMs) =>
    Effect.flatMap(Effect.scope, (scope) => {
      let abort: (() => void) | undefined
      const headersIn = Effect.async<Opened, TransportFailure>((resume) => {
        const req = requestOf(o)
        if (req instanceof TransportFailure) return resume(Effect.fail(req))
        return dispatch(
          req,
          o.body,
          (f) => (abort = f),
          (res) => resume(Effect.succeed(opened(res))),
          (cause) => resume(Effect.fail(new TransportFailure({ phase: "request", reason: reasonOf(cause) })))
        )
      })
      return Effect.zipRight(
        Scope.addFinalizer(scope, Effect.sync(() => abort?.())),
        Effect.timeoutFail(headersIn, { duration: timeoutMs, onTimeout: () => new TransportTimeout({ timeoutMs }) })
      )
    })

  return { exchange, open }
}

/** The production transport: keep-alive agents destroyed with the layer, the base URL and token of the config. */
export const layer: Layer.Layer<LmStudioTransport, never, AppConfig> = Layer.scoped(
  LmStudioTransport,
  Effect.gen(function*() {
    const config = yield* AppConfig
    const agents = yield* Effect.acquireRelease(
      Effect.sync((): Agents => ({
        http: new Http.Agent({ keepAlive: true }),
        https: new Https.Agent({ keepAlive: true })
      })),
      (a) =>
        Effect.sync(() => {
          a.http.destroy()
          a.https.destroy()
        })
    )
    return make(agents, config.baseUrl, headersOf(config.apiToken, config.baseUrlCredentials), yield* Deadlines.make())
  })
)
