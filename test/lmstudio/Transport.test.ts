/**
 * The LmStudioTransport contract, held by both layers (NodeTransport, production; HttpClientTransport over undici)
 * against a plain node:http server over real HTTP: what is sent (method, path, headers, token, body), what is read,
 * failures by phase, the deadline under TestClock (the request destroyed: the server sees it close), an event stream
 * read as it arrives, the scope of an opened response and interruption both destroying the request.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import {
  Chunk,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  FiberId,
  Layer,
  Option,
  Redacted,
  Scope,
  Stream,
  TestClock
} from "effect"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { AppConfig } from "../../src/Config.js"
import * as HttpClientTransport from "../../src/lmstudio/transport/HttpClientTransport.js"
import { LmStudioTransport } from "../../src/lmstudio/transport/LmStudioTransport.js"
import * as NodeTransport from "../../src/lmstudio/transport/NodeTransport.js"

interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: IncomingMessage["headers"]
  readonly body: string
  readonly socketPort: number
}

interface TestServer {
  readonly base: string
  readonly seen: Array<Seen>
  /** Completed with the path of the first request whose connection closed before its answer was finished. */
  readonly closed: Deferred.Deferred<string>
  /** Completed when the first request has arrived. */
  readonly arrived: Deferred.Deferred<void>
  readonly srv: Server
}

/** A server whose behaviour is given by the test; records what it received and which requests closed early. */
const server = (handle: (req: IncomingMessage, res: ServerResponse, body: string) => void) =>
  Effect.acquireRelease(
    Effect.async<TestServer>((resume) => {
      const seen: Array<Seen> = []
      const closed = Deferred.unsafeMake<string>(FiberId.none)
      const arrived = Deferred.unsafeMake<void>(FiberId.none)
      const srv = createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8")
          seen.push({
            method: req.method ?? "",
            url: req.url ?? "",
            headers: req.headers,
            body,
            socketPort: req.socket.remotePort ?? 0
          })
          res.on("close", () => {
            if (!res.writableFinished) Deferred.unsafeDone(closed, Exit.succeed(req.url ?? ""))
          })
          Deferred.unsafeDone(arrived, Exit.void)
          handle(req, res, body)
        })
      })
      srv.listen(0, "127.0.0.1", () => {
        const { port } = srv.address() as AddressInfo
        resume(Effect.succeed({ base: `http://127.0.0.1:${port}`, seen, closed, arrived, srv }))
      })
    }),
    (s) =>
      Effect.async<void>((resume) => {
        s.srv.closeAllConnections()
        s.srv.close(() => resume(Effect.void))
      })
  )

const never = () => {
  /* never answers */
}

/** Answers a 100-byte body with 11 bytes, then drops the connection. */
const cutShort = (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { "content-type": "application/json", "content-length": "100" })
  res.write("{\"partial\":")
  setImmediate(() => res.socket?.destroy())
}

const kinds = {
  NodeTransport: NodeTransport.layer,
  "HttpClientTransport (undici)": HttpClientTransport.layer.pipe(Layer.provide(NodeHttpClient.layerUndici))
} as const

for (const [kind, layer] of Object.entries(kinds)) {
  const transportFor = (baseUrl: string) =>
    Layer.build(
      layer.pipe(Layer.provide(AppConfig.layerFrom({ baseUrl, apiToken: Option.some(Redacted.make("t0ken")) })))
    ).pipe(
      Effect.map(Context.get(LmStudioTransport))
    )

  describe(`${kind} (real HTTP)`, () => {
    it.scopedLive("sends method, path, headers, token and body; answers status and the whole body", () =>
      Effect.gen(function*() {
        const s = yield* server((_req, res, body) => {
          res.writeHead(404, { "content-type": "application/json" })
          res.end(JSON.stringify({ got: body }))
        })
        const t = yield* transportFor(s.base)
        const body = JSON.stringify({ text: "héllo" })
        const first = yield* t.exchange({ method: "POST", path: "/v1/thing?x=1", body }, 30_000)
        assert.strictEqual(first.status, 404)
        assert.deepStrictEqual(JSON.parse(first.text), { got: body })
        const second = yield* t.exchange({ method: "GET", path: "/v1/thing?x=1" }, 30_000)
        assert.strictEqual(second.status, 404)
        assert.deepStrictEqual(
          s.seen.map((r) => [r.method, r.url, r.body]),
          [
            ["POST", "/v1/thing?x=1", body],
            ["GET", "/v1/thing?x=1", ""]
          ]
        )
        assert.strictEqual(s.seen[0]!.headers.authorization, "Bearer t0ken")
        assert.strictEqual(s.seen[0]!.headers.accept, "application/json")
        assert.strictEqual(s.seen[0]!.headers["content-type"], "application/json")
        assert.strictEqual(s.seen[0]!.headers["content-length"], String(Buffer.byteLength(body)))
        assert.isUndefined(s.seen[1]!.headers["content-type"])
        if (kind === "NodeTransport") {
          assert.strictEqual(s.seen[0]!.socketPort, s.seen[1]!.socketPort, "keep-alive: one socket")
        }
      }))

    it.scopedLive("a refused connection fails in the request phase, a body cut short in the response phase", () =>
      Effect.gen(function*() {
        const s = yield* server(cutShort)
        const cut = yield* Effect.flip((yield* transportFor(s.base)).exchange({ method: "GET", path: "/cut" }, 30_000))
        assert.deepStrictEqual([cut._tag, cut._tag === "TransportFailure" ? cut.phase : ""], [
          "TransportFailure",
          "response"
        ])
        const refused = yield* Effect.flip(
          (yield* transportFor("http://127.0.0.1:1")).exchange({ method: "GET", path: "/x" }, 30_000)
        )
        assert.deepStrictEqual([refused._tag, refused._tag === "TransportFailure" ? refused.phase : ""], [
          "TransportFailure",
          "request"
        ])
        assert.match(refused._tag === "TransportFailure" ? refused.reason : "", /ECONNREFUSED|fetch failed|connect/i)
        const bad = yield* Effect.flip(
          (yield* transportFor("not a url")).exchange({ method: "GET", path: "/x" }, 30_000)
        )
        assert.deepStrictEqual([bad._tag, bad._tag === "TransportFailure" ? bad.phase : ""], [
          "TransportFailure",
          "request"
        ])
      }))

    it.scoped("past its deadline (TestClock) an exchange fails with TransportTimeout and the request is destroyed", () =>
      Effect.gen(function*() {
        const s = yield* server(never)
        const t = yield* transportFor(s.base)
        const fiber = yield* Effect.fork(Effect.flip(t.exchange({ method: "GET", path: "/slow" }, 5000)))
        yield* Deferred.await(s.arrived)
        yield* TestClock.adjust(Duration.seconds(4))
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)), "not before its deadline")
        yield* TestClock.adjust(Duration.seconds(2))
        const e = yield* Fiber.join(fiber)
        assert.deepStrictEqual([e._tag, e._tag === "TransportTimeout" ? e.timeoutMs : 0], ["TransportTimeout", 5000])
        assert.strictEqual(yield* Deferred.await(s.closed), "/slow")
      }))

    it.scopedLive("interrupting an exchange destroys the request: the server sees it close", () =>
      Effect.gen(function*() {
        const s = yield* server(never)
        const t = yield* transportFor(s.base)
        const fiber = yield* Effect.fork(t.exchange({ method: "GET", path: "/hang" }, 30_000))
        yield* Deferred.await(s.arrived)
        yield* Fiber.interrupt(fiber)
        assert.strictEqual(yield* Deferred.await(s.closed), "/hang")
      }))

    it.scopedLive("an opened event stream is read as it arrives; closing its scope destroys the request", () =>
      Effect.gen(function*() {
        const s = yield* server((_req, res) => {
          res.writeHead(200, { "content-type": "text/event-stream" })
          res.write("data: one\n\n")
        })
        const t = yield* transportFor(s.base)
        const scope = yield* Scope.make()
        const opened = yield* Scope.extend(t.open({ method: "POST", path: "/events", body: "{}" }, 30_000), scope)
        assert.deepStrictEqual([opened.status, opened.contentType], [200, "text/event-stream"])
        // The first event is readable while the server holds the rest back.
        const first = yield* opened.body.pipe(Stream.decodeText(), Stream.take(1), Stream.runCollect)
        assert.strictEqual(Chunk.join(first, ""), "data: one\n\n")
        yield* Scope.close(scope, Exit.void)
        assert.strictEqual(yield* Deferred.await(s.closed), "/events")
      }))

    it.scopedLive("an opened response that is not a stream is read whole", () =>
      Effect.gen(function*() {
        const s = yield* server((_req, res) => {
          res.writeHead(500, { "content-type": "application/json" })
          res.end("{\"error\":\"boom\"}")
        })
        const opened = yield* (yield* transportFor(s.base)).open({ method: "GET", path: "/x" }, 30_000)
        assert.deepStrictEqual([opened.status, opened.contentType, yield* opened.text], [
          500,
          "application/json",
          "{\"error\":\"boom\"}"
        ])
      }))
  })
}
