/**
 * The node:http transport under LmStudioClient, against a plain node:http server over real HTTP: bodies and headers
 * on the wire, keep-alive reuse, a body cut short, an event stream read incrementally, unsupported bodies refused,
 * and the request destroyed (the server sees it close) when the caller is interrupted or its scope closes. The direct
 * sender (`directOf`, what LmStudioClient's JSON exchanges use) is held to the same: what it sends, what it reads,
 * its failures by phase, and destruction through its abort hook or interruption.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Context, Deferred, Effect, Exit, Fiber, FiberId, Layer, Schedule, Scope, Stream } from "effect"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import * as HttpTransport from "../../src/lmstudio/HttpTransport.js"

interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: IncomingMessage["headers"]
  readonly body: string
  readonly socketPort: number
}

/** A server whose behaviour per path is given by the test; records what it received and which requests closed. */
const server = (handle: (req: IncomingMessage, res: ServerResponse, body: string) => void) =>
  Effect.acquireRelease(
    Effect.async<{ readonly base: string; readonly seen: Array<Seen>; readonly closed: Deferred.Deferred<string>; readonly srv: Server }>((resume) => {
      const seen: Array<Seen> = []
      const closed = Deferred.unsafeMake<string>(FiberId.none)
      const srv = createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8")
          seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body, socketPort: req.socket.remotePort ?? 0 })
          res.on("close", () => {
            if (!res.writableFinished) Deferred.unsafeDone(closed, Exit.succeed(req.url ?? ""))
          })
          handle(req, res, body)
        })
      })
      srv.listen(0, "127.0.0.1", () => {
        const { port } = srv.address() as AddressInfo
        resume(Effect.succeed({ base: `http://127.0.0.1:${port}`, seen, closed, srv }))
      })
    }),
    (s) =>
      Effect.async<void>((resume) => {
        s.srv.closeAllConnections()
        s.srv.close(() => resume(Effect.void))
      })
  )

/** Answers a 100-byte body with 11 bytes, then drops the connection. */
const cutShort = (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { "content-type": "application/json", "content-length": "100" })
  res.write('{"partial":')
  setImmediate(() => res.socket?.destroy())
}

/** Waits until the server has received a request. */
const arrived = (s: { readonly seen: ReadonlyArray<Seen> }) =>
  Effect.suspend(() => (s.seen.length > 0 ? Effect.void : Effect.fail("not yet"))).pipe(Effect.retry(Schedule.spaced(5)))

const transport = Effect.map(Layer.build(HttpTransport.layer), Context.get(HttpClient.HttpClient))

describe("HttpTransport (node:http, real HTTP)", () => {
  it.scopedLive("sends method, headers and a JSON body; reads status, headers and JSON; reuses the connection", () =>
    Effect.gen(function* () {
      const s = yield* server((_req, res, body) => {
        res.writeHead(201, { "content-type": "application/json", "x-echo": "yes" })
        res.end(JSON.stringify({ got: JSON.parse(body) as unknown }))
      })
      const http = yield* transport
      const send = (n: number) =>
        http.execute(
          HttpClientRequest.post(`${s.base}/v1/thing`).pipe(HttpClientRequest.setHeader("authorization", "Bearer t"), HttpClientRequest.bodyUnsafeJson({ n, text: "héllo" }))
        )
      const first = yield* send(1)
      assert.strictEqual(first.status, 201)
      assert.strictEqual(first.headers["x-echo"], "yes")
      assert.deepStrictEqual(yield* first.json, { got: { n: 1, text: "héllo" } })
      // The body can be read again (text is memoised).
      assert.include(yield* first.text, "héllo")
      const second = yield* send(2)
      assert.deepStrictEqual(yield* second.json, { got: { n: 2, text: "héllo" } })
      assert.strictEqual(s.seen.length, 2)
      assert.strictEqual(s.seen[0]!.method, "POST")
      assert.strictEqual(s.seen[0]!.headers["content-type"], "application/json")
      assert.strictEqual(s.seen[0]!.headers.authorization, "Bearer t")
      assert.strictEqual(s.seen[0]!.headers["content-length"], String(Buffer.byteLength(s.seen[0]!.body)))
      // keep-alive: both requests came over the same socket
      assert.strictEqual(s.seen[0]!.socketPort, s.seen[1]!.socketPort)
    })
  )

  it.scopedLive("a body cut short is a ResponseError; a refused connection is a RequestError", () =>
    Effect.gen(function* () {
      const s = yield* server(cutShort)
      const http = yield* transport
      const cut = yield* Effect.flatMap(http.get(`${s.base}/cut`), (r) => r.text).pipe(Effect.flip)
      assert.strictEqual(cut._tag, "ResponseError")
      const refused = yield* http.get("http://127.0.0.1:1/nothing").pipe(Effect.flip)
      assert.strictEqual(refused._tag, "RequestError")
      // An https: URL goes through TLS: against a plain-HTTP port the handshake fails, as a RequestError.
      const tls = yield* http.get(`${s.base.replace("http:", "https:")}/tls`).pipe(Effect.flip)
      assert.strictEqual(tls._tag, "RequestError")
      assert.match(String(tls.cause), /SSL|TLS|EPROTO|wrong version/i)
      assert.isFalse(s.seen.some((r) => r.url === "/tls"))
    })
  )

  it.scopedLive("an event stream is read as it arrives, not buffered", () =>
    Effect.gen(function* () {
      const release = yield* Deferred.make<void>()
      const s = yield* server((_req, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" })
        res.write("data: one\n\n")
        Effect.runFork(Effect.andThen(Deferred.await(release), () => res.end("data: two\n\n")))
      })
      const http = yield* transport
      const res = yield* http.get(`${s.base}/events`)
      // The first event is readable while the server still holds the second back.
      const first = yield* res.stream.pipe(Stream.decodeText(), Stream.take(1), Stream.runCollect)
      assert.strictEqual(Chunk.join(first, ""), "data: one\n\n")
      yield* Deferred.succeed(release, undefined)
    })
  )

  it.scopedLive("stream and form-data request bodies are refused with an Encode RequestError", () =>
    Effect.gen(function* () {
      const s = yield* server((_req, res) => res.end("{}"))
      const http = yield* transport
      const e = yield* http
        .execute(HttpClientRequest.post(`${s.base}/x`).pipe(HttpClientRequest.bodyStream(Stream.make(new Uint8Array([1])))))
        .pipe(Effect.flip)
      assert.strictEqual(e._tag, "RequestError")
      assert.strictEqual(e._tag === "RequestError" ? e.reason : "", "Encode")
      assert.strictEqual(s.seen.length, 0)
    })
  )

  it.scopedLive("interrupting a call waiting for headers destroys the request: the server sees it close", () =>
    Effect.gen(function* () {
      const s = yield* server(() => {
        /* never answers */
      })
      const http = yield* transport
      const fiber = yield* Effect.fork(http.get(`${s.base}/hang`))
      yield* arrived(s)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* Deferred.await(s.closed), "/hang")
    })
  )

  it.scopedLive("closing the scope a request is bound to (withAbortScope) destroys it: the server sees it close", () =>
    Effect.gen(function* () {
      const s = yield* server(() => {
        /* never answers */
      })
      const http = HttpTransport.withAbortScope(yield* transport)
      const scope = yield* Scope.make()
      // Not interrupted: only the scope is closed, as the deadline watcher does.
      const fiber = yield* Effect.fork(Scope.extend(http.get(`${s.base}/bound`), scope))
      yield* arrived(s)
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(yield* Deferred.await(s.closed), "/bound")
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit))
      assert.isTrue(HttpTransport.isTransport(yield* transport))
    })
  )

  describe("direct sender", () => {
    const directOf = Effect.map(transport, (http) => {
      const direct = HttpTransport.directOf(http)
      if (direct === undefined) throw new Error("the transport has no direct sender")
      return direct
    })
    const urlOf = (href: string) => {
      const url = HttpTransport.directUrl(href)
      if (url instanceof Error) throw url
      return url
    }

    it.scopedLive("sends method, headers and body; answers status and the whole body; reuses the connection", () =>
      Effect.gen(function* () {
        const s = yield* server((_req, res, body) => {
          res.writeHead(404, { "content-type": "application/json" })
          res.end(JSON.stringify({ got: body }))
        })
        const send = yield* directOf
        const url = urlOf(`${s.base}/v1/thing?x=1`)
        const body = JSON.stringify({ text: "héllo" })
        const first = yield* send("POST", url, { "content-type": "application/json", authorization: "Bearer t" }, body)
        assert.strictEqual(first.status, 404)
        assert.deepStrictEqual(JSON.parse(first.body.toString("utf8")), { got: body })
        const second = yield* send("GET", url, { accept: "application/json" }, undefined)
        assert.strictEqual(second.status, 404)
        assert.deepStrictEqual(
          s.seen.map((r) => [r.method, r.url, r.body]),
          [
            ["POST", "/v1/thing?x=1", body],
            ["GET", "/v1/thing?x=1", ""]
          ]
        )
        assert.strictEqual(s.seen[0]!.headers.authorization, "Bearer t")
        assert.strictEqual(s.seen[0]!.headers["content-length"], String(Buffer.byteLength(body)))
        assert.strictEqual(s.seen[0]!.socketPort, s.seen[1]!.socketPort)
      })
    )

    it.scopedLive("a refused connection fails in the request phase, a body cut short in the response phase", () =>
      Effect.gen(function* () {
        const s = yield* server(cutShort)
        const send = yield* directOf
        const cut = yield* send("GET", urlOf(`${s.base}/cut`), {}, undefined).pipe(Effect.flip)
        assert.strictEqual(cut.phase, "response")
        const refused = yield* send("GET", urlOf("http://127.0.0.1:1/nothing"), {}, undefined).pipe(Effect.flip)
        assert.strictEqual(refused.phase, "request")
        assert.match(refused.message, /ECONNREFUSED/)
        assert.instanceOf(HttpTransport.directUrl("not a url"), Error)
      })
    )

    it.scopedLive("the abort hook and interruption both destroy the request: the server sees it close", () =>
      Effect.gen(function* () {
        const s = yield* server(() => {
          /* never answers */
        })
        const send = yield* directOf
        let abort: (() => void) | undefined
        const aborted = yield* Effect.fork(send("GET", urlOf(`${s.base}/hooked`), {}, undefined, (f) => (abort = f)))
        yield* arrived(s)
        abort?.()
        assert.strictEqual(yield* Deferred.await(s.closed), "/hooked")
        // Destroyed by its hook, the call fails (it is not left waiting).
        assert.strictEqual((yield* Effect.flip(Fiber.join(aborted))).phase, "request")

        const t = yield* server(() => {
          /* never answers */
        })
        const fiber = yield* Effect.fork(send("GET", urlOf(`${t.base}/interrupted`), {}, undefined))
        yield* arrived(t)
        yield* Fiber.interrupt(fiber)
        assert.strictEqual(yield* Deferred.await(t.closed), "/interrupted")
      })
    )
  })
})
