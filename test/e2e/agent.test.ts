/**
 * Autonomous agents end to end: the built bridge spawned over stdio and driven by the SDK `Client`, a scripted
 * simulator model, and real child MCP servers from npm (@modelcontextprotocol/server-filesystem, server-memory)
 * started from an mcp.json in a temp folder.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import type { Scenario } from "../../src/simulator/Scenario.js"
import { start } from "../../src/simulator/Simulator.js"
import { binPath, bridgeClient, j, repoRoot, runEffect, tempDir } from "../helpers.js"

const fsServer = join(repoRoot, "node_modules", "@modelcontextprotocol", "server-filesystem", "dist", "index.js")
const memoryServer = join(repoRoot, "node_modules", "@modelcontextprotocol", "server-memory", "dist", "index.js")

const call = (client: Client, name: string, args: Record<string, unknown>) =>
  Effect.promise(() => client.callTool({ name, arguments: args }, undefined, { timeout: 120_000 }))

const textOf = (r: Awaited<ReturnType<Client["callTool"]>>) =>
  (Array.isArray(r.content) ? r.content : []).map((c: { type: string; text?: string }) => c.text ?? "").join("\n")

/** Processes whose command line mentions `marker` (the temp folder): children that outlived the bridge. */
const processesMentioning = (marker: string): Array<number> =>
  readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid)
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, "utf8").includes(marker)
      } catch {
        return false
      }
    })
    .map(Number)

/** Waits (up to 5 s: stdin closed, then SIGTERM, then SIGKILL) until no process mentions `marker`; returns those left. */
const survivors = (marker: string) =>
  Effect.gen(function* () {
    let left = processesMentioning(marker)
    for (let i = 0; i < 50 && left.length > 0; i++) {
      yield* Effect.sleep("100 millis")
      left = processesMentioning(marker)
    }
    return left
  })

const SECRET = "PELICAN-7731"

const scenario = (dir: string): Scenario => ({
  rules: [
    { match: { userContains: "secret", afterToolResult: false, hasTools: true }, reply: { toolCalls: [{ name: "fs__read_text_file", arguments: { path: join(dir, "secret.txt") } }] } },
    {
      match: { userContains: "as text", afterToolResult: false, hasTools: true },
      reply: { content: "Let me look.", textToolCall: { format: "tool_call", call: { name: "fs__read_text_file", arguments: { path: join(dir, "secret.txt") } } } }
    },
    { match: { userContains: "imaginary", afterToolResult: false, hasTools: true }, reply: { toolCalls: [{ name: "fs__no_such_tool", arguments: {} }] } },
    { match: { userContains: "circles", hasTools: true }, reply: { toolCalls: [{ name: "fs__list_allowed_directories", arguments: {} }] } },
    { match: { userContains: "forever", round: 0, hasTools: true }, reply: { toolCalls: [{ name: "fs__list_directory", arguments: { path: dir } }] } },
    { match: { userContains: "forever", hasTools: true }, reply: { toolCalls: [{ name: "fs__list_allowed_directories", arguments: {} }] } },
    { match: { userContains: "remember", afterToolResult: false, hasTools: true }, reply: { toolCalls: [{ name: "memory__read_graph", arguments: {} }, { name: "fs__list_allowed_directories", arguments: {} }] } },
    { match: { userContains: "crash it", afterToolResult: false, hasTools: true }, reply: { toolCalls: [{ name: "flaky__crash", arguments: {} }] } },
    { match: { userContains: "hang it", afterToolResult: false, hasTools: true }, reply: { toolCalls: [{ name: "flaky__hang", arguments: {} }] } },
    { match: { userContains: "echo it", afterToolResult: false, hasTools: true }, reply: { toolCalls: [{ name: "flaky__echo", arguments: {} }] } },
    { match: { userContains: "noisy echo", afterToolResult: false, hasTools: true }, reply: { toolCalls: [{ name: "noisy__echo", arguments: {} }] } },
    { match: { hasTools: false }, reply: { content: "Final answer without tools." } }
  ]
})

const setUp = Effect.gen(function* () {
  const dir = yield* tempDir
  writeFileSync(join(dir, "secret.txt"), `The secret is ${SECRET}.\n`)
  const mcpJson = join(dir, "mcp.json")
  const config = (servers: Record<string, unknown>) => writeFileSync(mcpJson, JSON.stringify({ mcpServers: servers }, null, 2))
  const base = {
    fs: { command: process.execPath, args: [fsServer, dir] },
    memory: { command: process.execPath, args: [memoryServer], env: { MEMORY_FILE_PATH: join(dir, "memory.jsonl") } },
    broken: { command: process.execPath, args: [join(dir, "does-not-exist.js")] },
    itself: { command: "lmstudio-bridge", args: ["serve"] },
    off: { command: process.execPath, args: [fsServer, dir], disabled: true }
  }
  config(base)
  const sim = yield* start({ scenario: scenario(dir) })
  const client = yield* bridgeClient(sim.baseUrl, { MCP_JSON_PATH: mcpJson, MCP_CHILD_IDLE_SECONDS: "60" })
  return { dir, mcpJson, config, base, sim, client }
})

describe("autonomous agents over real child MCP servers", () => {
  it.scopedLive(
    "list_available_mcps shows the file, the servers, and never offers the bridge itself",
    () =>
      Effect.gen(function* () {
        const { client, mcpJson } = yield* setUp
        const r = yield* call(client, "list_available_mcps", {})
        assert.notStrictEqual(r.isError, true, textOf(r))
        const out = j(r.structuredContent)
        assert.strictEqual(out.get("config_file").str, mcpJson)
        assert.strictEqual(out.get("reason").str, "MCP_JSON_PATH")
        const servers = out.get("servers").arr.map((s) => [s.get("name").str, s.get("enabled").raw])
        assert.deepStrictEqual(Object.fromEntries(servers), { fs: true, memory: true, broken: true, itself: false, off: false })
      }),
    60_000
  )

  it.scopedLive(
    "tool results reach the model: the answer holds a secret only a file read gives; a text-written call is executed too",
    () =>
      Effect.gen(function* () {
        const { client } = yield* setUp
        const r = yield* call(client, "autonomous_with_mcp", { mcp_name: "fs", task: "What is the secret in the file?" })
        assert.notStrictEqual(r.isError, true, textOf(r))
        const out = j(r.structuredContent)
        assert.include(out.get("answer").str, SECRET)
        assert.strictEqual(out.get("stop_reason").str, "completed")
        assert.strictEqual(out.get("rounds").num, 2)
        assert.strictEqual(out.get("api").str, "responses")
        assert.strictEqual(out.get("tool_calls", 0, "server").str, "fs")
        assert.strictEqual(out.get("tool_calls", 0, "tool").str, "read_text_file")
        assert.strictEqual(out.get("tool_calls", 0, "ok").raw, true)

        const text = yield* call(client, "autonomous_with_mcp", { mcp_name: "fs", task: "Read the file, calling the tool as text" })
        const t = j(text.structuredContent)
        assert.include(t.get("answer").str, SECRET)
        assert.strictEqual(t.get("tool_calls", 0, "tool").str, "read_text_file")
      }),
    90_000
  )

  it.scopedLive(
    "the same over chat completions with the full history (AGENT_API=chat), and the api used is reported",
    () =>
      Effect.gen(function* () {
        const { sim, mcpJson } = yield* setUp
        const chatClient = yield* bridgeClient(sim.baseUrl, { MCP_JSON_PATH: mcpJson, AGENT_API: "chat" })
        const r = j((yield* call(chatClient, "autonomous_with_mcp", { mcp_name: "fs", task: "What is the secret in the file?" })).structuredContent)
        assert.strictEqual(r.get("api").str, "chat")
        assert.include(r.get("answer").str, SECRET)
        const text = j((yield* call(chatClient, "autonomous_with_mcp", { mcp_name: "fs", task: "Read the file, calling the tool as text" })).structuredContent)
        assert.include(text.get("answer").str, SECRET)
      }),
    90_000
  )

  it.scopedLive(
    "an unknown tool is reported back and the model recovers; a model going round in circles stops with repeated_call",
    () =>
      Effect.gen(function* () {
        const { client } = yield* setUp
        const unknown = j((yield* call(client, "autonomous_with_mcp", { mcp_name: "fs", task: "Use an imaginary tool" })).structuredContent)
        assert.strictEqual(unknown.get("stop_reason").str, "completed")
        assert.strictEqual(unknown.get("tool_calls", 0, "ok").raw, false)
        assert.include(unknown.get("answer").str, "Unknown tool")
        assert.include(unknown.get("answer").str, "fs__read_text_file")

        const circles = j((yield* call(client, "autonomous_with_mcp", { mcp_name: "fs", task: "Go round in circles" })).structuredContent)
        assert.strictEqual(circles.get("stop_reason").str, "repeated_call")
        assert.strictEqual(circles.get("tool_calls").arr.length, 2)
        assert.strictEqual(circles.get("answer").str, "Final answer without tools.")
      }),
    90_000
  )

  it.scopedLive(
    "max_rounds is honoured exactly and the tools-off round still answers",
    () =>
      Effect.gen(function* () {
        const { client } = yield* setUp
        for (const max of [1, 3]) {
          const r = j((yield* call(client, "autonomous_with_mcp", { mcp_name: "fs", task: "Keep going forever", max_rounds: max })).structuredContent)
          assert.strictEqual(r.get("stop_reason").str, "max_rounds")
          assert.strictEqual(r.get("rounds").num, max)
          assert.strictEqual(r.get("tool_calls").arr.length, max)
          assert.strictEqual(r.get("answer").str, "Final answer without tools.")
        }
      }),
    90_000
  )

  it.scopedLive(
    "several servers: namespacing works, a broken server gives a partial-toolset warning; discover-all skips the bridge",
    () =>
      Effect.gen(function* () {
        const { client } = yield* setUp
        const multi = j((yield* call(client, "autonomous_with_multiple_mcps", { mcp_names: ["memory", "fs", "broken"], task: "Remember what you can" })).structuredContent)
        assert.strictEqual(multi.get("stop_reason").str, "completed")
        const used = multi.get("tool_calls").arr.map((c) => `${c.get("server").str}/${c.get("tool").str}/${c.get("ok").raw}`).sort()
        assert.deepStrictEqual(used, ["fs/list_allowed_directories/true", "memory/read_graph/true"])
        assert.isTrue(multi.get("warnings").arr.some((w) => w.str.includes("partial toolset") && w.str.includes("broken")))

        const all = j((yield* call(client, "autonomous_discover_and_execute", { task: "What is the secret?" })).structuredContent)
        assert.include(all.get("answer").str, SECRET)
        assert.deepStrictEqual(all.get("servers").arr.map((s) => s.str).sort(), ["broken", "fs", "memory"])
      }),
    120_000
  )

  it.scopedLive(
    "an unknown server and an invalid mcp.json are clear errors; an edited mcp.json is used by the next call",
    () =>
      Effect.gen(function* () {
        const { client, config, base, mcpJson } = yield* setUp
        const unknown = yield* call(client, "autonomous_with_mcp", { mcp_name: "nope", task: "x" })
        assert.isTrue(unknown.isError)
        assert.include(textOf(unknown), "McpServerUnknown")
        assert.include(textOf(unknown), "fs, memory, broken")

        writeFileSync(mcpJson, JSON.stringify({ mcpServers: { fs: { command: process.execPath, args: "not-a-list" } } }))
        const invalid = yield* call(client, "list_available_mcps", {})
        assert.isTrue(invalid.isError)
        assert.include(textOf(invalid), "McpConfigInvalid")
        assert.include(textOf(invalid), "mcpServers.fs.args")

        config({ files: base.fs })
        const renamed = yield* call(client, "autonomous_with_mcp", { mcp_name: "files", task: "What is the secret?" })
        assert.notStrictEqual(renamed.isError, true, textOf(renamed))
        // The model calls fs__read_text_file, which is now files__read_text_file: it is told so and recovers.
        assert.include(j(renamed.structuredContent).get("answer").str, "files__read_text_file")
        const old = yield* call(client, "autonomous_with_mcp", { mcp_name: "fs", task: "x" })
        assert.isTrue(old.isError)
      }),
    120_000
  )

  it.scopedLive(
    "CLI: mcps list and agent run (--mcp, --json), and an unknown server is one clear line",
    () =>
      Effect.gen(function* () {
        const { sim, mcpJson } = yield* setUp
        const env = { LMSTUDIO_BASE_URL: sim.baseUrl, MCP_JSON_PATH: mcpJson, LMSTUDIO_LIFECYCLE: "jit", LOG_LEVEL: "error" }
        const list = yield* runEffect(process.execPath, [binPath, "mcps", "list", "--json"], env)
        assert.strictEqual(list.code, 0, list.stderr)
        assert.deepStrictEqual(j(JSON.parse(list.stdout)).get("servers").arr.filter((s) => s.get("enabled").raw === true).map((s) => s.get("name").str), ["fs", "memory", "broken"])
        const run = yield* runEffect(process.execPath, [binPath, "agent", "run", "--mcp", "fs", "--json", "What is the secret?"], env)
        assert.strictEqual(run.code, 0, run.stderr)
        const out = j(JSON.parse(run.stdout))
        assert.include(out.get("answer").str, SECRET)
        assert.strictEqual(out.get("tool_calls", 0, "tool").str, "read_text_file")
        const human = yield* runEffect(process.execPath, [binPath, "agent", "run", "--mcp", "fs", "What is the secret?"], env)
        assert.include(human.stdout, SECRET)
        assert.include(human.stderr, "completed after 2 round(s)")
        const bad = yield* runEffect(process.execPath, [binPath, "agent", "run", "--mcp", "nope", "x"], env)
        assert.notStrictEqual(bad.code, 0)
        assert.match(bad.stderr.trim(), /^lmstudio-bridge: McpServerUnknown: .+ \(hint: Use one of: fs, memory, broken/)
      }),
    120_000
  )

  it.scopedLive(
    "a child that crashes mid-call, one that hangs, one that prints garbage: typed results, recovery, no orphans",
    () =>
      Effect.gen(function* () {
        const { client, config, base, dir } = yield* setUp
        const flaky = join(repoRoot, "test", "support", "flaky-mcp-server.mjs")
        config({ ...base, flaky: { command: process.execPath, args: [flaky, dir], timeout: 800 }, noisy: { command: process.execPath, args: [flaky, dir, "garbage"] } })
        const run = (mcp: string, task: string) =>
          Effect.map(call(client, "autonomous_with_mcp", { mcp_name: mcp, task }), (r) => {
            assert.notStrictEqual(r.isError, true, textOf(r))
            return j(r.structuredContent)
          })
        const crashed = yield* run("flaky", "crash it")
        assert.strictEqual(crashed.get("stop_reason").str, "completed")
        assert.strictEqual(crashed.get("tool_calls", 0, "ok").raw, false)
        assert.include(crashed.get("answer").str, "McpServerFailed")
        assert.include(crashed.get("answer").str, "exited")
        const hung = yield* run("flaky", "hang it")
        assert.strictEqual(hung.get("tool_calls", 0, "ok").raw, false)
        assert.include(hung.get("answer").str, "McpServerTimeout")
        assert.include(hung.get("answer").str, "800 ms")
        // After a crash and a hang the server is started afresh and answers.
        const echo = yield* run("flaky", "echo it")
        assert.strictEqual(echo.get("tool_calls", 0, "ok").raw, true, JSON.stringify(echo.raw))
        assert.include(echo.get("answer").str, "echo from pid")
        const noisy = yield* run("noisy", "noisy echo please")
        assert.strictEqual(noisy.get("tool_calls", 0, "ok").raw, true, JSON.stringify(noisy.raw))
        assert.include(noisy.get("answer").str, "echo from pid")
        return dir
      }).pipe(
        Effect.scoped,
        Effect.flatMap(survivors),
        Effect.map((left) => assert.deepStrictEqual(left, []))
      ),
    120_000
  )

  it.live(
    "no child process outlives the bridge",
    () =>
      Effect.gen(function* () {
        const marker = yield* Effect.scoped(
          Effect.gen(function* () {
            const { client, dir } = yield* setUp
            const r = yield* call(client, "autonomous_with_multiple_mcps", { mcp_names: ["fs", "memory"], task: "Remember what you can" })
            assert.notStrictEqual(r.isError, true, textOf(r))
            assert.isAbove(processesMentioning(dir).length, 0)
            return dir
          })
        )
        // The bridge's children stop with it.
        assert.deepStrictEqual(yield* survivors(marker), [])
      }),
    90_000
  )
})
