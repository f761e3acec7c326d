/**
 * Streamable HTTP for the MCP server (`serve --http [host:]port`), endpoint `/mcp`.
 *
 * - Binds 127.0.0.1 unless told otherwise.
 * - DNS-rebinding protection: when bound to loopback, the `Host` header must name a loopback address, and an
 *   `Origin` header, when present, must be a loopback origin. Anything else is refused with 403.
 * - `BRIDGE_HTTP_TOKEN`: when set, every request needs `Authorization: Bearer <token>` (401 otherwise).
 * - Both protocol eras (SDK v2). A request with a 2026-07-28 `_meta` envelope is served by the SDK's per-request
 *   handler (no session; a fresh server per request; closing the response stream cancels the request). Everything
 *   else is the 2025-11-25 era as before: an `initialize` request opens a session (its own SDK transport and server);
 *   later requests carry `mcp-session-id`. A session without requests for BRIDGE_HTTP_SESSION_IDLE_SECONDS is closed (an open
 *   stream counts as use), so abandoned sessions cannot pile up. Closing the scope closes every session and the
 *   listener.
 * - Bad input before the SDK sees it (Limits.ts): a body above BRIDGE_MAX_MESSAGE_BYTES is 413, text that is not JSON
 *   `-32700`, an empty batch or a non-JSON-RPC body `-32600`, nesting past the limit `-32602`; all with status 400
 *   (413 for size) and a JSON-RPC error body.
 */
import {
  type NodeIncomingMessageLike,
  NodeStreamableHTTPServerTransport,
  toNodeHandler,
  toWebRequest
} from "@modelcontextprotocol/node"
import { createMcpHandler, isInitializeRequest, isLegacyRequest, type Server } from "@modelcontextprotocol/server"
import { Duration, Effect, Redacted, Runtime, Schedule, type Scope } from "effect"
import { randomUUID } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { InvalidArguments } from "../domain/Errors.js"
import { checkText, tooLarge } from "./Limits.js"

export interface HttpOptions {
  readonly host: string
  readonly port: number
  readonly token: Redacted.Redacted<string> | undefined
  /** A fresh SDK server (for a new 2025-era session, or for one 2026-era request). */
  readonly newServer: () => Server
  readonly maxMessageBytes: number
  /** A session idle this long is closed. */
  readonly sessionIdle: Duration.Duration
  /** Says why a request was refused (stderr). */
  readonly refused: (reason: string, bytes: number) => Effect.Effect<void>
  /** Serves `GET /metrics` (behind the same host, origin and token checks) when given (`BRIDGE_HTTP_METRICS`). */
  readonly metrics?: ((req: IncomingMessage, res: ServerResponse) => void) | undefined
}

const LOOPBACK_NAMES = new Set(["127.0.0.1", "localhost", "::1", "[::1]"])

/** `8765` → 127.0.0.1:8765; `0.0.0.0:8765`; `[::1]:8765`. */
export const parseListen = (value: string): Effect.Effect<{ host: string; port: number }, InvalidArguments> => {
  const m = /^(?:(\[[^\]]+\]|[^:]+):)?(\d{1,5})$/.exec(value.trim())
  const port = m ? Number(m[2]) : Number.NaN
  if (!m || port > 65535) {
    return Effect.fail(
      new InvalidArguments({
        command: "serve --http",
        problem: `${JSON.stringify(value)} is not [host:]port (e.g. 8765 or 127.0.0.1:8765)`
      })
    )
  }
  return Effect.succeed({ host: (m[1] ?? "127.0.0.1").replace(/^\[|\]$/g, ""), port })
}

const hostName = (hostHeader: string): string => {
  const h = hostHeader.trim().toLowerCase()
  if (h.startsWith("[")) return h.slice(0, h.indexOf("]") + 1)
  return h.split(":")[0] ?? h
}

const isLoopbackOrigin = (origin: string): boolean => {
  try {
    return LOOPBACK_NAMES.has(new URL(origin).hostname.replace(/^\[|\]$/g, "")) || new URL(origin).hostname === "[::1]"
  } catch {
    return false
  }
}

const refuse = (res: ServerResponse, status: number, message: string) => {
  res.writeHead(status, { "content-type": "application/json" })
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }))
}

const answer = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" })
  res.end(JSON.stringify(body))
}

/**
 * The adapter's structural request type declares `method` and `url` as optional without `| undefined`; a server-side
 * `IncomingMessage` always has both, so it is one (the cast only states what exactOptionalPropertyTypes cannot see).
 */
const asNodeLike = (req: IncomingMessage): NodeIncomingMessageLike => req as NodeIncomingMessageLike

/** A body's text, or how large it was when it passed the limit (the rest is read and dropped, not kept). */
const readBody = (req: IncomingMessage, limit: number): Promise<{ text: string } | { tooLarge: number }> =>
  new Promise((resolve, reject) => {
    let size = 0
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => {
      size += c.length
      if (size <= limit) chunks.push(c)
      else chunks.length = 0
    })
    req.on("end", () => resolve(size > limit ? { tooLarge: size } : { text: Buffer.concat(chunks).toString("utf8") }))
    req.on("error", reject)
  })

/** Serves MCP over Streamable HTTP in the current scope; returns the endpoint URL. */
export const serveHttp = (
  options: HttpOptions
): Effect.Effect<{ readonly url: string }, InvalidArguments, Scope.Scope> =>
  Effect.gen(function*() {
    const sessions = new Map<string, NodeStreamableHTTPServerTransport>()
    // Per session: requests in flight (an open stream included) and whether it was used since the last sweep.
    const use = new Map<string, { active: number; touched: boolean; idleTicks: number }>()
    const runtime = yield* Effect.runtime<never>()
    const runRefused = (reason: string, bytes: number) => Runtime.runFork(runtime)(options.refused(reason, bytes))
    const modern = toNodeHandler(
      createMcpHandler(options.newServer, {
        legacy: "reject",
        maxRequestBodySize: options.maxMessageBytes,
        onerror: (e) =>
          Runtime.runFork(runtime)(
            Effect.logWarning("MCP request failed").pipe(
              Effect.annotateLogs({ error: e.message, transport: "http", revision: "2026-07-28" })
            )
          )
      }),
      { maxRequestBodySize: options.maxMessageBytes }
    )
    const loopbackBind = LOOPBACK_NAMES.has(options.host)
    const token = options.token ? `Bearer ${Redacted.value(options.token)}` : undefined

    const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      const path = new URL(req.url ?? "/", "http://bridge").pathname
      const metrics = path === "/metrics" ? options.metrics : undefined
      if (path !== "/mcp" && metrics === undefined) return refuse(res, 404, "Not found: the MCP endpoint is /mcp")
      if (loopbackBind && !LOOPBACK_NAMES.has(hostName(req.headers.host ?? ""))) {
        return refuse(res, 403, "Forbidden: Host is not a loopback address (DNS-rebinding protection)")
      }
      const origin = req.headers.origin
      if (origin !== undefined && !isLoopbackOrigin(origin)) {
        return refuse(res, 403, `Forbidden: Origin ${origin} is not allowed`)
      }
      if (token !== undefined && req.headers.authorization !== token) {
        return refuse(res, 401, "Unauthorized: a valid bearer token is required")
      }
      if (metrics !== undefined) {
        return req.method === "GET" || req.method === "HEAD" ? metrics(req, res) : refuse(res, 405, "Use GET")
      }

      const sessionId = req.headers["mcp-session-id"]
      const existing = typeof sessionId === "string" ? sessions.get(sessionId) : undefined
      let body: unknown = undefined
      if (req.method === "POST") {
        const declared = Number(req.headers["content-length"] ?? Number.NaN)
        if (declared > options.maxMessageBytes) {
          runRefused(`body of ${declared} bytes is above BRIDGE_MAX_MESSAGE_BYTES`, declared)
          res.setHeader("connection", "close")
          answer(res, 413, tooLarge(null, declared, options.maxMessageBytes))
          req.resume()
          return
        }
        const read = await readBody(req, options.maxMessageBytes)
        if ("tooLarge" in read) {
          runRefused(`body of ${read.tooLarge} bytes is above BRIDGE_MAX_MESSAGE_BYTES`, read.tooLarge)
          return answer(res, 413, tooLarge(null, read.tooLarge, options.maxMessageBytes))
        }
        if (read.text.trim() !== "") {
          const checked = checkText(read.text)
          if (checked._tag === "Refused") {
            runRefused(checked.reason, Buffer.byteLength(read.text))
            return answer(res, 400, checked.answer)
          }
          body = checked.json
        }
      }
      if (sessionId === undefined && req.method === "POST") {
        // The SDK's own classification (a `_meta` envelope claim makes a request 2026-era), on the body read above.
        const web = asNodeLike(req)
        if (!(await isLegacyRequest(await toWebRequest(web, body), body))) return modern(web, res, body)
      }
      if (existing && typeof sessionId === "string") {
        const u = use.get(sessionId)
        if (u !== undefined) {
          u.active++
          u.touched = true
          res.once("close", () => {
            u.active--
            u.touched = true
          })
        }
        return existing.handleRequest(req, res, body)
      }
      if (sessionId !== undefined) {
        return refuse(res, 404, "Session not found: start a new session with initialize")
      }
      if (req.method !== "POST" || !isInitializeRequest(body)) {
        return refuse(res, 400, "Bad request: no valid session; send initialize first")
      }
      const transport: NodeStreamableHTTPServerTransport = new NodeStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          sessions.set(id, transport)
          use.set(id, { active: 0, touched: true, idleTicks: 0 })
        }
      })
      transport.onclose = () => {
        if (transport.sessionId !== undefined) {
          sessions.delete(transport.sessionId)
          use.delete(transport.sessionId)
        }
      }
      await options.newServer().connect(transport)
      return transport.handleRequest(req, res, body)
    }

    const server = yield* Effect.acquireRelease(
      Effect.async<ReturnType<typeof createServer>, InvalidArguments>((resume) => {
        const s = createServer((req, res) => {
          handle(req, res).catch((e: unknown) => {
            if (!res.headersSent) refuse(res, 500, `Internal error: ${e instanceof Error ? e.message : String(e)}`)
          })
        })
        s.once("error", (e) =>
          resume(
            Effect.fail(
              new InvalidArguments({
                command: "serve --http",
                problem: `cannot listen on ${options.host}:${options.port}: ${e.message}`
              })
            )
          ))
        s.listen(options.port, options.host, () => resume(Effect.succeed(s)))
      }),
      (s) =>
        Effect.promise(async () => {
          await Promise.all([...sessions.values()].map((t) => t.close()))
          s.closeAllConnections()
          await new Promise<void>((done) => s.close(() => done()))
        })
    )
    // The idle sweep: a session untouched and without open requests for the whole idle time is closed.
    const idleMs = Duration.toMillis(options.sessionIdle)
    const tickMs = Math.min(60_000, Math.max(250, Math.floor(idleMs / 4)))
    const ticksToExpire = Math.max(1, Math.ceil(idleMs / tickMs))
    const sweep = Effect.suspend(() => {
      const expired: Array<string> = []
      for (const [id, u] of use) {
        if (u.touched || u.active > 0) {
          u.touched = false
          u.idleTicks = 0
        } else if (++u.idleTicks >= ticksToExpire) expired.push(id)
      }
      return Effect.forEach(expired, (id) =>
        Effect.promise(() => sessions.get(id)?.close() ?? Promise.resolve()).pipe(
          Effect.zipRight(
            Effect.logInfo("idle MCP session closed").pipe(
              Effect.annotateLogs({ idle_seconds: Duration.toSeconds(options.sessionIdle) })
            )
          )
        ), { discard: true })
    })
    yield* Effect.forkScoped(Effect.repeat(sweep, Schedule.spaced(Duration.millis(tickMs))))
    const address = server.address()
    if (address === null || typeof address === "string") return { url: `http://${options.host}:${options.port}/mcp` }
    const shown = address.family === "IPv6" ? `[${address.address}]` : address.address
    return { url: `http://${shown}:${address.port}/mcp` }
  })
