/**
 * Both MCP revisions against the built bridge (issue 16): a 2025-11-25 client (the 1.x SDK, `initialize` first) and
 * a 2026-07-28 client (the v2 SDK pinned to that revision: no `initialize`, version and capabilities in every
 * request's `_meta`), over stdio and Streamable HTTP, get the same tools and the same results; the 2026-era answers
 * carry what that revision adds (`server/discover`, `resultType`, cache hints, server info in `_meta`); on HTTP,
 * closing a 2026-era response stream cancels the call and its LM Studio request.
 */
import { assert, describe, it } from "@effect/vitest"
import { Client as ModernClient, StreamableHTTPClientTransport as ModernHttp } from "@modelcontextprotocol/client"
import { StdioClientTransport as ModernStdio } from "@modelcontextprotocol/client/stdio"
import { Client as LegacyClient } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as LegacyHttp } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js"
import { Duration, Effect, Schedule } from "effect"
import { spawn } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { start } from "../../src/simulator/Simulator.js"
import { binPath, bridgeClient, j, repoRoot, serveHttpBridge, tempDir, TOOL_CONTRACT } from "../helpers.js"

const REVISION = "2026-07-28"
const ENVELOPE = {
  "io.modelcontextprotocol/protocolVersion": REVISION,
  "io.modelcontextprotocol/clientInfo": { name: "raw-2026", version: "1" },
  "io.modelcontextprotocol/clientCapabilities": {}
}

const bridgeEnv = (baseUrl: string): Record<string, string> => ({
  PATH: process.env.PATH ?? "",
  LMSTUDIO_BASE_URL: baseUrl,
  LMSTUDIO_LIFECYCLE: "jit",
  LOG_LEVEL: "warn"
})

/** A v2 SDK client pinned to 2026-07-28, on a freshly spawned `serve` (stdio). */
const modernStdio = (baseUrl: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new ModernClient({ name: "e2e-2026", version: "1.0.0" }, {
        versionNegotiation: { mode: { pin: REVISION } }
      })
      await client.connect(
        new ModernStdio({
          command: process.execPath,
          args: [binPath, "serve"],
          env: bridgeEnv(baseUrl),
          stderr: "pipe"
        })
      )
      return client
    }),
    (client) => Effect.promise(() => client.close())
  )

/** Raw JSON-RPC lines over the stdio of a spawned `serve`: every answer by id. */
const rawStdio = (baseUrl: string, messages: ReadonlyArray<Record<string, unknown>>, expect: number) =>
  Effect.async<Map<unknown, Record<string, unknown>>>((resume) => {
    const child = spawn(process.execPath, [binPath, "serve"], {
      env: bridgeEnv(baseUrl),
      stdio: ["pipe", "pipe", "ignore"]
    })
    const answers = new Map<unknown, Record<string, unknown>>()
    let buffer = ""
    child.stdout.on("data", (d: Buffer) => {
      buffer += d.toString()
      for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
        const line = JSON.parse(buffer.slice(0, nl)) as Record<string, unknown>
        buffer = buffer.slice(nl + 1)
        answers.set(line.id, line)
        if (answers.size === expect) {
          child.stdin.end()
          resume(Effect.succeed(answers))
        }
      }
    })
    for (const m of messages) child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", ...m })}\n`)
    return Effect.sync(() => child.kill())
  })

const chatText = (r: unknown) => j(r).get("structuredContent", "content").str
const namesOf = (r: { readonly tools: ReadonlyArray<{ readonly name: string }> }) => r.tools.map((t) => t.name)

describe("both MCP revisions (2025-11-25 and 2026-07-28)", () => {
  it.scopedLive("stdio: the same tools in the same order and the same results for either era's client", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const legacy = yield* bridgeClient(sim.baseUrl)
      const modern = yield* modernStdio(sim.baseUrl)
      assert.strictEqual(modern.getNegotiatedProtocolVersion(), REVISION)
      const [oldTools, newTools] = yield* Effect.promise(() => Promise.all([legacy.listTools(), modern.listTools()]))
      assert.deepStrictEqual(namesOf(newTools), namesOf(oldTools))
      assert.deepStrictEqual([...namesOf(newTools)].sort(), [...TOOL_CONTRACT].sort())
      const args = { name: "chat_completion", arguments: { prompt: "the same question", max_tokens: 40 } }
      const a = yield* Effect.promise(() => legacy.callTool(args))
      const b = yield* Effect.promise(() => modern.callTool(args))
      assert.notStrictEqual(a.isError, true, JSON.stringify(a))
      assert.strictEqual(chatText(b), chatText(a))
      const health = yield* Effect.promise(() => modern.callTool({ name: "health_check", arguments: {} }))
      assert.strictEqual(j(health.structuredContent).get("reachable").raw, true)
      const unknown = yield* Effect.promise(() => modern.callTool({ name: "no_such_tool", arguments: {} }))
      assert.isTrue(unknown.isError)
      assert.match(j(unknown).get("content", 0, "text").str, /^UnknownTool: /)
    }))

  it.scopedLive("stdio, raw: server/discover without initialize; resultType, cache hints and server info", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const answers = yield* rawStdio(sim.baseUrl, [
        { id: 1, method: "server/discover", params: { _meta: ENVELOPE } },
        { id: 2, method: "tools/list", params: { _meta: ENVELOPE } },
        { id: 3, method: "tools/call", params: { name: "list_models", arguments: {}, _meta: ENVELOPE } }
      ], 3)
      const discover = j(answers.get(1)).get("result")
      assert.include(discover.get("supportedVersions").arr.map((v) => v.str), REVISION)
      assert.isObject(discover.get("capabilities", "tools").raw)
      assert.strictEqual(discover.get("_meta", "io.modelcontextprotocol/serverInfo", "name").str, "lmstudio-bridge")
      const list = j(answers.get(2)).get("result")
      assert.strictEqual(list.get("resultType").str, "complete")
      assert.isNumber(list.get("ttlMs").raw)
      assert.isString(list.get("cacheScope").str)
      assert.strictEqual(list.get("tools").arr.length, TOOL_CONTRACT.length)
      const call = j(answers.get(3)).get("result")
      assert.strictEqual(call.get("resultType").str, "complete")
      assert.isAbove(call.get("structuredContent", "models").arr.length, 0)
    }))

  it.scopedLive("Streamable HTTP: a 2026-07-28 client (no session) and a 2025-11-25 session get the same results", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const { url } = yield* serveHttpBridge(sim.baseUrl)
      const legacy = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const c = new LegacyClient({ name: "e2e-2025", version: "1.0.0" })
          await c.connect(new LegacyHttp(new URL(url)))
          return c
        }),
        (c) => Effect.promise(() => c.close())
      )
      const modern = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const c = new ModernClient({ name: "e2e-2026", version: "1.0.0" }, {
            versionNegotiation: { mode: { pin: REVISION } }
          })
          await c.connect(new ModernHttp(new URL(url)))
          return c
        }),
        (c) => Effect.promise(() => c.close())
      )
      assert.strictEqual(modern.getNegotiatedProtocolVersion(), REVISION)
      assert.deepStrictEqual(
        namesOf(yield* Effect.promise(() => modern.listTools())),
        namesOf(yield* Effect.promise(() => legacy.listTools()))
      )
      const args = { name: "chat_completion", arguments: { prompt: "over http", max_tokens: 30 } }
      const a = yield* Effect.promise(() => legacy.callTool(args))
      const b = yield* Effect.promise(() => modern.callTool(args))
      assert.notStrictEqual(b.isError, true, JSON.stringify(b))
      assert.strictEqual(chatText(b), chatText(a))
    }))

  it.scopedLive("Streamable HTTP, 2026-07-28: closing the response stream cancels the call and its LM Studio request", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const { url } = yield* serveHttpBridge(sim.baseUrl)
      // Warm the bridge up (API detection, the model listing), then make LM Studio slow: only the chat waits.
      yield* Effect.promise(() =>
        fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
          body: JSON.stringify({
            jsonrpc: "2.0",
            id: 1,
            method: "tools/call",
            params: { name: "chat_completion", arguments: { prompt: "warm up" }, _meta: ENVELOPE }
          })
        }).then((r) => r.text())
      )
      yield* sim.state.setFaults({ latencyMs: 1500 })
      const controller = new AbortController()
      const headers = {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": REVISION,
        "mcp-method": "tools/call",
        "mcp-name": "chat_completion"
      }
      const body = JSON.stringify({
        jsonrpc: "2.0",
        id: 7,
        method: "tools/call",
        params: { name: "chat_completion", arguments: { prompt: "never mind" }, _meta: ENVELOPE }
      })
      const pending = fetch(url, { method: "POST", headers, body, signal: controller.signal }).then(
        (r) => r.text(),
        () => "aborted"
      )
      // Once LM Studio has the chat request (it would answer after 1.5 s: a request it finishes is not counted as
      // aborted), the client goes away.
      yield* sim.state.get.pipe(
        Effect.filterOrFail((d) => (d.counters.byPath["/v1/chat/completions"] ?? 0) >= 1, () => "not yet" as const),
        Effect.retry(Schedule.spaced(Duration.millis(50)).pipe(Schedule.upTo(Duration.seconds(20)))),
        Effect.orDie
      )
      controller.abort()
      assert.strictEqual(yield* Effect.promise(() => pending), "aborted")
      const state = yield* sim.state.get.pipe(
        Effect.filterOrFail((d) => d.counters.requestsAborted >= 1, () => "not yet" as const),
        Effect.retry(Schedule.spaced(Duration.millis(50)).pipe(Schedule.upTo(Duration.seconds(4)))),
        Effect.orDie
      )
      assert.strictEqual(state.counters.requestsAborted, 1)
    }))

  it.scopedLive("child servers of either era: a 2026-07-28-only one, and a 2025 one that exits unless initialize is first", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const fixture = join(repoRoot, "test", "support", "era-mcp-server.mjs")
      const mcpJson = join(dir, "mcp.json")
      writeFileSync(
        mcpJson,
        JSON.stringify({
          mcpServers: {
            modern: { command: process.execPath, args: [fixture, "modern", dir], trust: true },
            strict: { command: process.execPath, args: [fixture, "strict", dir], trust: true }
          }
        })
      )
      const sim = yield* start({
        scenario: {
          rules: [
            {
              match: { userContains: "ask-modern", afterToolResult: false, hasTools: true },
              reply: { toolCalls: [{ name: "modern__whoami", arguments: {} }] }
            },
            {
              match: { userContains: "ask-strict", afterToolResult: false, hasTools: true },
              reply: { toolCalls: [{ name: "strict__whoami", arguments: {} }] }
            }
          ]
        }
      })
      const client = yield* bridgeClient(sim.baseUrl, { MCP_JSON_PATH: mcpJson })
      for (const server of ["modern", "strict"]) {
        const run = yield* Effect.promise(() =>
          client.callTool({ name: "autonomous_with_mcp", arguments: { mcp_name: server, task: `ask-${server}` } })
        )
        assert.notStrictEqual(run.isError, true, JSON.stringify(run))
        const calls = j(run.structuredContent).get("tool_calls").arr
        assert.deepStrictEqual(calls.map((c) => [c.get("tool").str, c.get("ok").raw]), [["whoami", true]], server)
      }
      const log = readFileSync(join(dir, "era.log"), "utf8").split("\n")
      assert.include(log, "modern 2026-07-28", "the 2026-only child was spoken to in its revision")
      assert.include(log, "strict initialize", "the strict 2025 child was started with initialize first")
      // The bridge's client probed with server/discover first (on a disposable copy of the child, which exited).
      assert.isTrue(log.some((l) => l.startsWith("strict exited on") && l.includes("server/discover")), log.join("\n"))
    }))

  it.scopedLive("logging (2025 era): no log notifications until the client sets a level, then that level and above", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const fixture = join(repoRoot, "test", "support", "era-mcp-server.mjs")
      const mcpJson = join(dir, "mcp.json")
      const child = { command: process.execPath, args: [fixture, "modern", dir], trust: true }
      writeFileSync(mcpJson, JSON.stringify({ mcpServers: { first: child, second: child, third: child } }))
      const sim = yield* start()
      const messages: Array<{ level: string; data: unknown }> = []
      const client = yield* bridgeClient(sim.baseUrl, { MCP_JSON_PATH: mcpJson, LOG_LEVEL: "info" }, {
        prepare: (c) =>
          c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
            messages.push({ level: n.params.level, data: n.params.data })
          })
      })
      const run = (server: string) =>
        Effect.promise(() =>
          client.callTool({ name: "autonomous_with_mcp", arguments: { mcp_name: server, task: "say hello" } })
        )
      const started = (server: string) =>
        messages.filter((m) =>
          j(m.data).get("message").raw === "child MCP server started" && j(m.data).get("server").raw === server
        )
      yield* run("first")
      assert.deepStrictEqual(messages, [], "nothing before logging/setLevel")
      yield* Effect.promise(() => client.setLoggingLevel("info"))
      yield* run("second")
      const line = started("second")
      assert.lengthOf(line, 1, JSON.stringify(messages))
      assert.strictEqual(line[0]!.level, "info")
      assert.match(String(j(line[0]!.data).get("request_id").raw), /^[0-9a-f]{16}$/)
      yield* Effect.promise(() => client.setLoggingLevel("error"))
      const before = messages.length
      yield* run("third")
      assert.deepStrictEqual(started("third"), [])
      assert.isTrue(messages.slice(before).every((m) => ["error", "critical", "alert", "emergency"].includes(m.level)))
    }))
})
