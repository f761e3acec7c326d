/**
 * Autonomous agents end to end: the built bridge spawned over stdio and driven by the SDK `Client`, a scripted
 * simulator model, and real child MCP servers from npm (@modelcontextprotocol/server-filesystem, server-memory)
 * started from an mcp.json in a temp folder.
 */
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { modelFromKey } from "../../src/simulator/Catalog.js"
import type { Scenario } from "../../src/simulator/Scenario.js"
import { type SimulatorOptions, start } from "../../src/simulator/Simulator.js"
import { binPath, bridgeClient, eventually, freePort, j, repoRoot, runEffect, tempDir } from "../helpers.js"
import { call, everythingServer, fsServer, memoryServer, realServers, textOf } from "../support/children.js"

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

/** The state field of /proc/<pid>/stat, or undefined when the process is gone. */
const procState = (pid: number): { readonly state: string; readonly ppid: number } | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return { state: fields[0] ?? "", ppid: Number(fields[1]) }
  } catch {
    return undefined
  }
}

/** Is the process still running (a zombie waiting to be reaped is not)? */
const isAlive = (pid: number) => {
  const s = procState(pid)
  return s !== undefined && s.state !== "Z"
}

/** The live direct children of a process. */
const childrenOf = (pid: number): Array<number> =>
  readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((p) => procState(p)?.ppid === pid && isAlive(p))

/** Waits (up to 5 s: stdin closed, then SIGTERM, then SIGKILL) until no process mentions `marker`; returns those left. */
const survivors = (marker: string) =>
  Effect.gen(function*() {
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
    {
      match: { userContains: "secret", afterToolResult: false, hasTools: true },
      reply: { toolCalls: [{ name: "fs__read_text_file", arguments: { path: join(dir, "secret.txt") } }] }
    },
    {
      match: { userContains: "as text", afterToolResult: false, hasTools: true },
      reply: {
        content: "Let me look.",
        textToolCall: {
          format: "tool_call",
          call: { name: "fs__read_text_file", arguments: { path: join(dir, "secret.txt") } }
        }
      }
    },
    {
      match: { userContains: "imaginary", afterToolResult: false, hasTools: true },
      reply: { toolCalls: [{ name: "fs__no_such_tool", arguments: {} }] }
    },
    {
      match: { userContains: "circles", hasTools: true },
      reply: { toolCalls: [{ name: "fs__list_allowed_directories", arguments: {} }] }
    },
    {
      match: { userContains: "forever", round: 0, hasTools: true },
      reply: { toolCalls: [{ name: "fs__list_directory", arguments: { path: dir } }] }
    },
    {
      match: { userContains: "forever", hasTools: true },
      reply: { toolCalls: [{ name: "fs__list_allowed_directories", arguments: {} }] }
    },
    {
      match: { userContains: "remember", afterToolResult: false, hasTools: true },
      reply: {
        toolCalls: [{ name: "memory__read_graph", arguments: {} }, {
          name: "fs__list_allowed_directories",
          arguments: {}
        }]
      }
    },
    {
      match: { userContains: "all three", afterToolResult: false, hasTools: true },
      reply: {
        toolCalls: [
          { name: "memory__read_graph", arguments: {} },
          { name: "fs__list_allowed_directories", arguments: {} },
          { name: "everything__echo", arguments: { message: "hello-everything" } },
          { name: "everything__get-sum", arguments: { a: 20, b: 22 } }
        ]
      }
    },
    {
      match: { userContains: "over http", afterToolResult: false, hasTools: true },
      reply: { toolCalls: [{ name: "web__echo", arguments: { message: "hello-over-http" } }] }
    },
    {
      match: { userContains: "crash it", afterToolResult: false, hasTools: true },
      reply: { toolCalls: [{ name: "flaky__crash", arguments: {} }] }
    },
    {
      match: { userContains: "hang it", afterToolResult: false, hasTools: true },
      reply: { toolCalls: [{ name: "flaky__hang", arguments: {} }] }
    },
    {
      match: { userContains: "echo it", afterToolResult: false, hasTools: true },
      reply: { toolCalls: [{ name: "flaky__echo", arguments: {} }] }
    },
    {
      match: { userContains: "noisy echo", afterToolResult: false, hasTools: true },
      reply: { toolCalls: [{ name: "noisy__echo", arguments: {} }] }
    },
    { match: { hasTools: false }, reply: { content: "Final answer without tools." } }
  ]
})

const setUpWith = (options: { readonly sim?: SimulatorOptions; readonly env?: Record<string, string> } = {}) =>
  Effect.gen(function*() {
    const dir = yield* tempDir
    writeFileSync(join(dir, "secret.txt"), `The secret is ${SECRET}.\n`)
    const mcpJson = join(dir, "mcp.json")
    const config = (servers: Record<string, unknown>) =>
      writeFileSync(mcpJson, JSON.stringify({ mcpServers: servers }, null, 2))
    const base = {
      fs: { command: process.execPath, args: [fsServer, dir] },
      memory: { command: process.execPath, args: [memoryServer], env: { MEMORY_FILE_PATH: join(dir, "memory.jsonl") } },
      broken: { command: process.execPath, args: [join(dir, "does-not-exist.js")] },
      itself: { command: "lmstudio-bridge", args: ["serve"] },
      off: { command: process.execPath, args: [fsServer, dir], disabled: true }
    }
    config(base)
    const sim = yield* start({ scenario: scenario(dir), ...options.sim })
    const client = yield* bridgeClient(sim.baseUrl, {
      MCP_JSON_PATH: mcpJson,
      MCP_CHILD_IDLE_SECONDS: "60",
      ...options.env
    })
    return { dir, mcpJson, config, base, sim, client }
  })
const setUp = setUpWith()

const flakyServer = join(repoRoot, "test", "support", "flaky-mcp-server.mjs")

const readOr = (file: string) => Effect.sync(() => (existsSync(file) ? readFileSync(file, "utf8") : ""))

describe("autonomous agents over real child MCP servers", () => {
  it.scopedLive(
    "list_available_mcps shows the file, the servers, and never offers the bridge itself",
    () =>
      Effect.gen(function*() {
        const { client, mcpJson } = yield* setUp
        const r = yield* call(client, "list_available_mcps", {})
        assert.notStrictEqual(r.isError, true, textOf(r))
        const out = j(r.structuredContent)
        assert.strictEqual(out.get("config_file").str, mcpJson)
        assert.strictEqual(out.get("reason").str, "MCP_JSON_PATH")
        const servers = out.get("servers").arr.map((s) => [s.get("name").str, s.get("enabled").raw])
        assert.deepStrictEqual(Object.fromEntries(servers), {
          fs: true,
          memory: true,
          broken: true,
          itself: false,
          off: false
        })
      }),
    60_000
  )

  it.scopedLive(
    "tool results reach the model: the answer holds a secret only a file read gives; a text-written call is executed too",
    () =>
      Effect.gen(function*() {
        const { client } = yield* setUp
        const r = yield* call(client, "autonomous_with_mcp", {
          mcp_name: "fs",
          task: "What is the secret in the file?"
        })
        assert.notStrictEqual(r.isError, true, textOf(r))
        const out = j(r.structuredContent)
        assert.include(out.get("answer").str, SECRET)
        assert.strictEqual(out.get("stop_reason").str, "completed")
        assert.strictEqual(out.get("rounds").num, 2)
        assert.strictEqual(out.get("api").str, "responses")
        assert.strictEqual(out.get("tool_calls", 0, "server").str, "fs")
        assert.strictEqual(out.get("tool_calls", 0, "tool").str, "read_text_file")
        assert.strictEqual(out.get("tool_calls", 0, "ok").raw, true)

        const text = yield* call(client, "autonomous_with_mcp", {
          mcp_name: "fs",
          task: "Read the file, calling the tool as text"
        })
        const t = j(text.structuredContent)
        assert.include(t.get("answer").str, SECRET)
        assert.strictEqual(t.get("tool_calls", 0, "tool").str, "read_text_file")
      }),
    90_000
  )

  it.scopedLive(
    "the same over chat completions with the full history (AGENT_API=chat), and the api used is reported",
    () =>
      Effect.gen(function*() {
        const { sim, mcpJson } = yield* setUp
        const chatClient = yield* bridgeClient(sim.baseUrl, { MCP_JSON_PATH: mcpJson, AGENT_API: "chat" })
        const r = j(
          (yield* call(chatClient, "autonomous_with_mcp", { mcp_name: "fs", task: "What is the secret in the file?" }))
            .structuredContent
        )
        assert.strictEqual(r.get("api").str, "chat")
        assert.include(r.get("answer").str, SECRET)
        const text = j(
          (yield* call(chatClient, "autonomous_with_mcp", {
            mcp_name: "fs",
            task: "Read the file, calling the tool as text"
          })).structuredContent
        )
        assert.include(text.get("answer").str, SECRET)
      }),
    90_000
  )

  it.scopedLive(
    "an unknown tool is reported back and the model recovers; a model going round in circles stops with repeated_call",
    () =>
      Effect.gen(function*() {
        const { client } = yield* setUp
        const unknown = j(
          (yield* call(client, "autonomous_with_mcp", { mcp_name: "fs", task: "Use an imaginary tool" }))
            .structuredContent
        )
        assert.strictEqual(unknown.get("stop_reason").str, "completed")
        assert.strictEqual(unknown.get("tool_calls", 0, "ok").raw, false)
        assert.include(unknown.get("answer").str, "Unknown tool")
        assert.include(unknown.get("answer").str, "fs__read_text_file")

        const circles = j(
          (yield* call(client, "autonomous_with_mcp", { mcp_name: "fs", task: "Go round in circles" }))
            .structuredContent
        )
        assert.strictEqual(circles.get("stop_reason").str, "repeated_call")
        assert.strictEqual(circles.get("tool_calls").arr.length, 2)
        assert.strictEqual(circles.get("answer").str, "Final answer without tools.")
      }),
    90_000
  )

  it.scopedLive(
    "max_rounds is honoured exactly and the tools-off round still answers",
    () =>
      Effect.gen(function*() {
        const { client } = yield* setUp
        for (const max of [1, 3]) {
          const r = j(
            (yield* call(client, "autonomous_with_mcp", {
              mcp_name: "fs",
              task: "Keep going forever",
              max_rounds: max
            })).structuredContent
          )
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
      Effect.gen(function*() {
        const { client, config, base, dir, sim } = yield* setUp
        config({ ...base, everything: { command: process.execPath, args: [everythingServer, "stdio"] } })
        const multi = j(
          (yield* call(client, "autonomous_with_multiple_mcps", {
            mcp_names: ["memory", "fs", "everything", "broken"],
            task: "Use all three servers"
          }))
            .structuredContent
        )
        assert.strictEqual(multi.get("stop_reason").str, "completed")
        const used = multi.get("tool_calls").arr.map((c) =>
          `${c.get("server").str}/${c.get("tool").str}/${c.get("ok").raw}`
        ).sort()
        assert.deepStrictEqual(used, [
          "everything/echo/true",
          "everything/get-sum/true",
          "fs/list_allowed_directories/true",
          "memory/read_graph/true"
        ])
        // The results of the three real servers reached the model: round 2 sends them as function_call_output items.
        assert.include(multi.get("answer").str, "42")
        const rounds = (yield* sim.state.get).recent.filter((q) =>
          q.path === "/v1/responses" && JSON.stringify(q.body).includes("function_call_output")
        )
        const outputs = JSON.stringify(rounds[rounds.length - 1]?.body)
        assert.include(outputs, "hello-everything")
        assert.include(outputs, "42")
        assert.include(outputs, JSON.stringify(dir).slice(1, -1))
        assert.isTrue(
          multi.get("warnings").arr.some((w) => w.str.includes("partial toolset") && w.str.includes("broken"))
        )

        const all = j(
          (yield* call(client, "autonomous_discover_and_execute", { task: "What is the secret?" })).structuredContent
        )
        assert.include(all.get("answer").str, SECRET)
        assert.deepStrictEqual(all.get("servers").arr.map((s) => s.str).sort(), [
          "broken",
          "everything",
          "fs",
          "memory"
        ])
      }),
    120_000
  )

  it.scopedLive(
    "an unknown server and an invalid mcp.json are clear errors; an edited mcp.json is used by the next call",
    () =>
      Effect.gen(function*() {
        const { client, config, base, mcpJson } = yield* setUp
        const unknown = yield* call(client, "autonomous_with_mcp", { mcp_name: "nope", task: "x" })
        assert.isTrue(unknown.isError)
        assert.include(textOf(unknown), "McpServerUnknown")
        assert.include(textOf(unknown), "fs, memory, broken")

        writeFileSync(
          mcpJson,
          JSON.stringify({ mcpServers: { fs: { command: process.execPath, args: "not-a-list" } } })
        )
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
      Effect.gen(function*() {
        const { sim, mcpJson } = yield* setUp
        const env = {
          LMSTUDIO_BASE_URL: sim.baseUrl,
          MCP_JSON_PATH: mcpJson,
          LMSTUDIO_LIFECYCLE: "jit",
          LOG_LEVEL: "error"
        }
        const list = yield* runEffect(process.execPath, [binPath, "mcps", "list", "--json"], env)
        assert.strictEqual(list.code, 0, list.stderr)
        assert.deepStrictEqual(
          j(JSON.parse(list.stdout)).get("servers").arr.filter((s) => s.get("enabled").raw === true).map((s) =>
            s.get("name").str
          ),
          ["fs", "memory", "broken"]
        )
        const run = yield* runEffect(process.execPath, [
          binPath,
          "agent",
          "run",
          "--mcp",
          "fs",
          "--json",
          "What is the secret?"
        ], env)
        assert.strictEqual(run.code, 0, run.stderr)
        const out = j(JSON.parse(run.stdout))
        assert.include(out.get("answer").str, SECRET)
        assert.strictEqual(out.get("tool_calls", 0, "tool").str, "read_text_file")
        const human = yield* runEffect(process.execPath, [
          binPath,
          "agent",
          "run",
          "--mcp",
          "fs",
          "What is the secret?"
        ], env)
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
      Effect.gen(function*() {
        const { client, config, base, dir } = yield* setUp
        config({
          ...base,
          flaky: { command: process.execPath, args: [flakyServer, dir], timeout: 800, trust: true },
          noisy: { command: process.execPath, args: [flakyServer, dir, "garbage"], trust: true }
        })
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
      Effect.gen(function*() {
        const marker = yield* Effect.scoped(
          Effect.gen(function*() {
            const { client, dir } = yield* setUp
            const r = yield* call(client, "autonomous_with_multiple_mcps", {
              mcp_names: ["fs", "memory"],
              task: "Remember what you can"
            })
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

  it.scopedLive(
    "the model is validated before anything starts: an unknown or hostile name is a typed error and no child is spawned",
    () =>
      Effect.gen(function*() {
        const { client, dir, sim } = yield* setUp
        const unknown = yield* call(client, "autonomous_with_mcp", {
          mcp_name: "fs",
          model: "nobody/no-such-model",
          task: "What is the secret?"
        })
        assert.isTrue(unknown.isError)
        assert.match(textOf(unknown), /^ModelNotFound: /)
        assert.include(textOf(unknown), "qwen/qwen3-4b")
        const hostile = yield* call(client, "autonomous_with_multiple_mcps", {
          mcp_names: ["fs", "memory"],
          model: "--help",
          task: "x"
        })
        assert.isTrue(hostile.isError)
        assert.match(textOf(hostile), /^InvalidModelName: /)
        // Neither call started a child server or asked a model anything (the API-detection probe names no model).
        assert.deepStrictEqual(processesMentioning(dir), [])
        const asked = (yield* sim.state.get).recent.filter((q) =>
          (q.path === "/v1/responses" || q.path === "/v1/chat/completions") && q.model !== null
        )
        assert.deepStrictEqual(asked, [])
      }),
    60_000
  )

  it.scopedLive(
    "progress: a notification per round and per tool call, with a value that increases every time",
    () =>
      Effect.gen(function*() {
        const { client } = yield* setUp
        const progress: Array<{ progress: number; message?: string | undefined }> = []
        const r = yield* Effect.promise(() =>
          client.callTool(
            { name: "autonomous_with_mcp", arguments: { mcp_name: "fs", task: "What is the secret in the file?" } },
            undefined,
            {
              timeout: 120_000,
              onprogress: (p) => void progress.push(p)
            }
          )
        )
        assert.notStrictEqual(r.isError, true, textOf(r))
        assert.deepStrictEqual(
          progress.map((p) => (p.message ?? "").replace(/\(\d+ ms\)/, "(N ms)")),
          ["round 1 of at most 25", "round 1: fs/read_text_file ok (N ms)", "round 2 of at most 25"]
        )
        assert.isTrue(
          progress.every((p, i) => i === 0 || p.progress > progress[i - 1]!.progress),
          JSON.stringify(progress)
        )
      }),
    90_000
  )

  it.scopedLive(
    "cancelling a run stops it: the LLM request and a child's tool call are aborted, and the bridge keeps working",
    () =>
      Effect.gen(function*() {
        const { client, config, base, dir, sim } = yield* setUp
        config({
          ...base,
          flaky: { command: process.execPath, args: [flakyServer, dir], timeout: 120_000, trust: true }
        })
        const cancelWhen = (args: Record<string, unknown>, ready: Effect.Effect<boolean>) =>
          Effect.promise(() => {
            const controller = new AbortController()
            const pending = client
              .callTool({ name: "autonomous_with_mcp", arguments: args }, undefined, {
                signal: controller.signal,
                timeout: 120_000,
                onprogress: () => {}
              })
              .then(
                () => "finished",
                () => "cancelled"
              )
            const poll = (): void => void (Effect.runSync(ready) ? controller.abort() : setTimeout(poll, 20))
            poll()
            return pending
          })

        // A first run: APIs detected, the child pooled; what follows only sends the run's own requests.
        const warm = yield* call(client, "autonomous_with_mcp", {
          mcp_name: "fs",
          task: "What is the secret in the file?"
        })
        assert.include(j(warm.structuredContent).get("answer").str, SECRET)

        // 1. Mid-round: the model is slow to answer; the run is cancelled while its LLM request is in flight.
        yield* sim.state.setFaults({ latencyMs: 1500 })
        const before = (yield* sim.state.get).counters.byPath["/v1/responses"] ?? 0
        const llmStarted = Effect.map(sim.state.get, (d) => (d.counters.byPath["/v1/responses"] ?? 0) > before)
        assert.strictEqual(
          yield* cancelWhen({ mcp_name: "fs", task: "What is the secret in the file?" }, llmStarted),
          "cancelled"
        )
        const aborted = yield* eventually(sim.state.get, (d) => d.counters.requestsAborted >= 1)
        assert.isAtLeast(aborted.counters.requestsAborted, 1)
        yield* sim.state.clearFaults
        // The cancelled run asked for nothing more after it was stopped.
        const settled = (yield* sim.state.get).counters.byPath["/v1/responses"] ?? 0
        assert.strictEqual(settled, before + 1)

        // 2. Mid-tool-call: the child's hanging tool receives notifications/cancelled.
        const started = join(dir, "hang-started.log")
        const hangStarted = Effect.map(readOr(started), (t) => t !== "")
        assert.strictEqual(yield* cancelWhen({ mcp_name: "flaky", task: "hang it" }, hangStarted), "cancelled")
        const cancelled = yield* eventually(readOr(join(dir, "cancelled.log")), (t) => t.includes("hang"))
        assert.include(cancelled, "hang")

        // 3. The bridge still works, with the same pooled child.
        const after = yield* call(client, "autonomous_with_mcp", { mcp_name: "flaky", task: "echo it" })
        assert.notStrictEqual(after.isError, true, textOf(after))
        assert.strictEqual(j(after.structuredContent).get("stop_reason").str, "completed")
        assert.include(j(after.structuredContent).get("answer").str, "echo from pid")
        const secret = yield* call(client, "autonomous_with_mcp", {
          mcp_name: "fs",
          task: "What is the secret in the file?"
        })
        assert.include(j(secret.structuredContent).get("answer").str, SECRET)
      }),
    120_000
  )

  it.scopedLive(
    "20 concurrent runs with 20 different models: every LLM request of a run names that run's model",
    () =>
      Effect.gen(function*() {
        const models = Array.from({ length: 20 }, (_, i) => `lab/agent-model-${String(i).padStart(2, "0")}`)
        const { client, sim } = yield* setUpWith({
          sim: { models: models.map(modelFromKey), loaded: [] },
          env: { AGENT_API: "chat", LMSTUDIO_LIFECYCLE: "rest" }
        })
        const results = yield* Effect.forEach(
          models,
          (model, i) =>
            call(client, "autonomous_with_mcp", {
              mcp_name: "fs",
              model,
              task: `What is the secret in the file? [run ${i}]`
            }),
          { concurrency: "unbounded" }
        )
        for (const [i, r] of results.entries()) {
          assert.notStrictEqual(r.isError, true, textOf(r))
          const out = j(r.structuredContent)
          assert.strictEqual(out.get("stop_reason").str, "completed")
          assert.strictEqual(out.get("model").str, models[i])
          assert.include(out.get("answer").str, SECRET)
        }
        // Each run's model was loaded through the REST API and leased for the run (no JIT eviction between runs).
        // With AGENT_API=chat every request carries the whole conversation, so the run's tag names its requests.
        const chats = (yield* sim.state.get).recent.filter((r) => r.path === "/v1/chat/completions")
        const runOf = (body: unknown) => /\[run (\d+)\]/.exec(JSON.stringify(body))?.[1]
        assert.strictEqual(chats.length, 40)
        for (const r of chats) {
          const run = runOf(r.body)
          assert.isDefined(run)
          assert.strictEqual(r.model, models[Number(run)], `request of run ${run}`)
        }
        assert.deepStrictEqual(new Set(chats.map((r) => runOf(r.body))).size, 20)
      }),
    180_000
  )

  it.scopedLive(
    "LM Studio forgets a previous response (previous_response_not_found): the run replays its transcript and completes",
    () =>
      Effect.gen(function*() {
        const { client, sim } = yield* setUpWith({ sim: { faults: { forgetResponses: true } } })
        const r = yield* call(client, "autonomous_with_mcp", {
          mcp_name: "fs",
          task: "What is the secret in the file?"
        })
        assert.notStrictEqual(r.isError, true, textOf(r))
        const out = j(r.structuredContent)
        assert.strictEqual(out.get("stop_reason").str, "completed")
        assert.strictEqual(out.get("api").str, "responses")
        assert.include(out.get("answer").str, SECRET)
        const requests = (yield* sim.state.get).recent.filter((q) => q.path === "/v1/responses")
        const chained = requests.filter((q) => JSON.stringify(q.body).includes("previous_response_id"))
        // Round 2 was first sent chained (refused: LM Studio no longer knew it), then as the whole transcript.
        assert.strictEqual(chained.length, 1)
        const replay = requests[requests.indexOf(chained[0]!) + 1]
        assert.isDefined(replay)
        const replayed = JSON.stringify(replay!.body)
        assert.notInclude(replayed, "previous_response_id")
        assert.include(replayed, "What is the secret in the file?")
        assert.include(replayed, "function_call_output")
        assert.include(replayed, SECRET)
      }),
    90_000
  )

  it.live(
    "SIGTERM or SIGINT to the bridge stops every child it started",
    () =>
      Effect.forEach(
        ["SIGTERM", "SIGINT"] as const,
        (signal) =>
          Effect.scoped(
            Effect.gen(function*() {
              const dir = yield* tempDir
              const sim = yield* start({ scenario: scenario(dir) })
              const mcpJson = join(dir, "mcp.json")
              writeFileSync(
                mcpJson,
                JSON.stringify({
                  mcpServers: { fs: realServers(dir).fs, memory: realServers(dir).memory }
                })
              )
              const transport = new StdioClientTransport({
                command: process.execPath,
                args: [binPath, "serve"],
                env: {
                  PATH: process.env.PATH ?? "",
                  LMSTUDIO_BASE_URL: sim.baseUrl,
                  LMSTUDIO_LIFECYCLE: "jit",
                  LOG_LEVEL: "warn",
                  MCP_JSON_PATH: mcpJson
                },
                stderr: "pipe"
              })
              const client = new Client({ name: "signals", version: "1.0.0" })
              yield* Effect.acquireRelease(
                Effect.promise(() => client.connect(transport)),
                () => Effect.promise(() => client.close())
              )
              const r = yield* call(client, "autonomous_with_multiple_mcps", {
                mcp_names: ["fs", "memory"],
                task: "Remember what you can"
              })
              assert.notStrictEqual(r.isError, true, textOf(r))
              const pid = transport.pid
              assert.isNotNull(pid)
              // The bridge runs its two children.
              const kids = childrenOf(pid!)
              assert.strictEqual(kids.length, 2, `children of the bridge: ${kids.join(", ")}`)
              process.kill(pid!, signal)
              const left = yield* eventually(
                Effect.sync(() => kids.filter(isAlive)),
                (alive) => alive.length === 0
              ).pipe(Effect.orElseSucceed(() => kids.filter(isAlive)))
              assert.deepStrictEqual(left, [], `after ${signal}`)
            })
          ),
        { discard: true }
      ),
    120_000
  )

  it.scopedLive(
    "a child over Streamable HTTP (server-everything at a url): its tools are used like a stdio child's",
    () =>
      Effect.gen(function*() {
        const { client, config, base, sim } = yield* setUp
        const port = yield* freePort
        const server = yield* Effect.acquireRelease(
          Effect.async<ChildProcess>((resume) => {
            const child = spawn(process.execPath, [everythingServer, "streamableHttp"], {
              env: { ...process.env, PORT: String(port) },
              stdio: ["ignore", "ignore", "pipe"]
            })
            let err = ""
            child.stderr.on("data", (d: Buffer) => {
              err += d.toString()
              if (err.includes("listening on port")) resume(Effect.succeed(child))
            })
            child.once("exit", (code) => resume(Effect.dieMessage(`server-everything exited (${code}): ${err}`)))
          }),
          (child) => Effect.sync(() => child.kill("SIGKILL"))
        )
        assert.isDefined(server.pid)
        config({ ...base, web: { url: `http://127.0.0.1:${port}/mcp` } })
        const listed = j((yield* call(client, "list_available_mcps", {})).structuredContent)
        assert.strictEqual(
          listed.get("servers").arr.find((x) => x.get("name").str === "web")?.get("transport").str,
          "http"
        )
        const r = yield* call(client, "autonomous_with_mcp", { mcp_name: "web", task: "Echo something over http" })
        assert.notStrictEqual(r.isError, true, textOf(r))
        const out = j(r.structuredContent)
        assert.strictEqual(out.get("stop_reason").str, "completed")
        assert.deepStrictEqual(
          out.get("tool_calls").arr.map((c) => `${c.get("server").str}/${c.get("tool").str}/${c.get("ok").raw}`),
          ["web/echo/true"]
        )
        const rounds = (yield* sim.state.get).recent.filter((q) =>
          q.path === "/v1/responses" && JSON.stringify(q.body).includes("function_call_output")
        )
        assert.include(JSON.stringify(rounds[rounds.length - 1]?.body), "hello-over-http")
      }),
    90_000
  )
})
