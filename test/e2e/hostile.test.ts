/**
 * Hostile input gets a clear error, never a silent exit (issue 14). Raw stdio against the built bridge: a 20 MB line,
 * a 20 MB valid request (id first, and id last as the SDK writes it), 100,000-deep nesting, text that is not JSON —
 * each answered with a JSON-RPC error, and the next request served. Streamable HTTP: an empty batch, unparseable
 * JSON, a body over the limit, and a session that expires when idle.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { start } from "../../src/simulator/Simulator.js"
import { binPath, j } from "../helpers.js"

const MB20 = 20 * 1024 * 1024

/** The bridge over raw stdio: send lines, await the answer with an id, see stderr and the exit code. */
const rawBridge = (baseUrl: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(process.execPath, [binPath, "serve"], {
        env: { PATH: process.env.PATH ?? "", LMSTUDIO_BASE_URL: baseUrl, LMSTUDIO_LIFECYCLE: "jit", LOG_LEVEL: "warn" },
        stdio: ["pipe", "pipe", "pipe"]
      })
      let out = ""
      let err = ""
      const answers: Array<unknown> = []
      const waiting: Array<() => void> = []
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString()
        let nl: number
        while ((nl = out.indexOf("\n")) >= 0) {
          answers.push(JSON.parse(out.slice(0, nl)))
          out = out.slice(nl + 1)
          for (const w of waiting.splice(0)) w()
        }
      })
      child.stderr.on("data", (d: Buffer) => (err += d.toString()))
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
      const write = (line: string) =>
        new Promise<void>((resolve) => {
          if (child.stdin.write(`${line}\n`)) resolve()
          else child.stdin.once("drain", () => resolve())
        })
      /** The next answer that matches, in arrival order. */
      const next = (matches: (a: ReturnType<typeof j>) => boolean) =>
        new Promise<ReturnType<typeof j>>((resolve, reject) => {
          const look = () => {
            const i = answers.findIndex((a) => matches(j(a)))
            if (i >= 0) return resolve(j(answers.splice(i, 1)[0]))
            if (child.exitCode !== null) return reject(new Error(`the bridge exited (${child.exitCode}): ${err}`))
            waiting.push(look)
          }
          look()
        })
      return { child, write, next, stderr: () => err, exited }
    }),
    ({ child }) => Effect.sync(() => child.kill())
  )

const byId = (id: number | null) => (a: ReturnType<typeof j>) => a.get("id").raw === id

describe("hostile input (issue 14)", () => {
  it.scopedLive(
    "stdio: oversized lines, deep nesting and non-JSON get JSON-RPC errors; the next request is served",
    () =>
      Effect.gen(function*() {
        const sim = yield* start({})
        const b = yield* rawBridge(sim.baseUrl)
        const send = (line: string) => Effect.promise(() => b.write(line))
        const answer = (id: number | null) => Effect.promise(() => b.next(byId(id)))
        yield* send(JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "initialize",
          params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
        }))
        assert.strictEqual((yield* answer(1)).get("result", "serverInfo", "name").str, "lmstudio-bridge")
        yield* send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }))

        // 1. A 20 MB line that is not even JSON: an error without an id (there is none to find).
        yield* send("x".repeat(MB20))
        const junk = yield* answer(null)
        assert.strictEqual(junk.get("error", "code").num, -32600)
        assert.include(junk.get("error", "message").str, "BRIDGE_MAX_MESSAGE_BYTES (10485760 bytes)")
        assert.strictEqual(junk.get("error", "data", "bytes").num, MB20)

        // 2. A 20 MB valid request, the id first; and the same as the SDK writes it, the id last.
        const big = "y".repeat(MB20)
        const params = { name: "chat_completion", arguments: { messages: [{ role: "user", content: big }] } }
        yield* send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":${JSON.stringify(params)}}`)
        assert.include((yield* answer(2)).get("error", "message").str, "Message too large")
        yield* send(JSON.stringify({ method: "tools/call", params, jsonrpc: "2.0", id: 3 }))
        assert.strictEqual((yield* answer(3)).get("error", "code").num, -32600)

        // 3. Arguments nested 100,000 deep: invalid params, not a stack overflow.
        const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`
        yield* send(
          `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"health_check","arguments":{"x":${deep}}}}`
        )
        const nested = yield* answer(4)
        assert.strictEqual(nested.get("error", "code").num, -32602)
        assert.include(nested.get("error", "message").str, "nested deeper than 128 levels")

        // 4. Not JSON, and JSON that is not JSON-RPC.
        yield* send("{oops")
        assert.strictEqual((yield* answer(null)).get("error", "code").num, -32700)
        yield* send(JSON.stringify({ id: 5, hello: "world" }))
        assert.strictEqual((yield* answer(5)).get("error", "code").num, -32600)

        // 5. And the session goes on.
        yield* send(JSON.stringify({ jsonrpc: "2.0", id: 6, method: "tools/list", params: {} }))
        assert.isAbove((yield* answer(6)).get("result", "tools").arr.length, 10)
        assert.isNull(b.child.exitCode)
        assert.include(b.stderr(), "MCP message refused")
        // Closing stdin ends it cleanly.
        b.child.stdin.end()
        assert.strictEqual(yield* Effect.promise(() => b.exited), 0)
      }),
    120_000
  )

  it.scopedLive(
    "Streamable HTTP: empty batch -32600, bad JSON -32700, a body over the limit 413, idle sessions expire",
    () =>
      Effect.gen(function*() {
        const sim = yield* start({})
        const url = yield* Effect.acquireRelease(
          Effect.promise(() =>
            new Promise<{ url: string; kill: () => void; stderr: () => string }>((resolve, reject) => {
              const child = spawn(process.execPath, [binPath, "serve", "--http", "127.0.0.1:0"], {
                env: {
                  ...process.env,
                  LMSTUDIO_BASE_URL: sim.baseUrl,
                  LOG_LEVEL: "info",
                  BRIDGE_MAX_MESSAGE_BYTES: "100000",
                  BRIDGE_HTTP_SESSION_IDLE_SECONDS: "1"
                },
                stdio: ["ignore", "pipe", "pipe"]
              })
              let out = ""
              let err = ""
              child.stderr.on("data", (d: Buffer) => (err += d.toString()))
              child.stdout.on("data", (d: Buffer) => {
                out += d.toString()
                const m = /MCP server listening on (\S+)/.exec(out)
                if (m) resolve({ url: m[1]!, kill: () => child.kill("SIGINT"), stderr: () => err })
              })
              child.on("exit", (code) => reject(new Error(`serve --http exited with ${code}`)))
            })
          ),
          (s) => Effect.sync(() => s.kill())
        )
        const post = (body: string, headers: Record<string, string> = {}) =>
          Effect.promise(async () => {
            const res = await fetch(url.url, {
              method: "POST",
              headers: {
                "content-type": "application/json",
                accept: "application/json, text/event-stream",
                ...headers
              },
              body
            })
            const text = await res.text()
            // An answer on an SSE stream (a session's ping) is only looked at for its status.
            return { status: res.status, body: j(text.startsWith("event:") ? null : JSON.parse(text)) }
          })
        const empty = yield* post("[]")
        assert.strictEqual(empty.status, 400)
        assert.strictEqual(empty.body.get("error", "code").num, -32600)
        const bad = yield* post("{oops")
        assert.strictEqual(bad.status, 400)
        assert.strictEqual(bad.body.get("error", "code").num, -32700)
        const large = yield* post(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping", pad: "z".repeat(200_000) }))
        assert.strictEqual(large.status, 413)
        assert.include(large.body.get("error", "message").str, "BRIDGE_MAX_MESSAGE_BYTES (100000 bytes)")
        const deep = yield* post(
          `{"jsonrpc":"2.0","id":2,"method":"ping","params":{"x":${"[".repeat(5000)}${"]".repeat(5000)}}}`
        )
        assert.strictEqual(deep.status, 400)
        assert.strictEqual(deep.body.get("error", "code").num, -32602)

        // A session opened and then left (no stream kept open): closed after a second of idleness, said on stderr,
        // and its id is unknown from then on.
        const init = yield* Effect.promise(async () => {
          const res = await fetch(url.url, {
            method: "POST",
            headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
            body: JSON.stringify({
              jsonrpc: "2.0",
              id: 1,
              method: "initialize",
              params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "idle", version: "1" } }
            })
          })
          await res.text()
          return { status: res.status, session: res.headers.get("mcp-session-id") }
        })
        assert.strictEqual(init.status, 200)
        assert.isString(init.session)
        const headers = { "mcp-session-id": init.session!, "mcp-protocol-version": "2025-06-18" }
        const ping = JSON.stringify({ jsonrpc: "2.0", id: 9, method: "ping" })
        assert.strictEqual((yield* post(ping, headers)).status, 200)
        for (let i = 0; i < 300 && !url.stderr().includes("idle MCP session closed"); i++) {
          yield* Effect.promise(() => new Promise((r) => setTimeout(r, 100)))
        }
        assert.include(url.stderr(), "idle MCP session closed")
        assert.strictEqual((yield* post(ping, headers)).status, 404)
      }),
    120_000
  )
})
