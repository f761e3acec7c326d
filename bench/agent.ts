/**
 * Agent benchmark (`npm run bench`): the AgentLoop service in-process against a zero-latency simulator in its own
 * process, with the real @modelcontextprotocol/server-filesystem as the child server.
 * - setup time of the first run (cold: the child is spawned) against the second (pooled child);
 * - bridge time per round: a run's wall time minus its LLM requests and child tool calls, both timed with the
 *   nanosecond clock where the bridge makes them (decorated LmStudioClient.chat/respond and ChildServers.callTool);
 * - 100 and 1,000 concurrent 3-round runs sharing the pooled child: errors, p50/p99 wall time, peak RSS.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { Clock, Duration, Effect, Fiber, Option } from "effect"
import { EventEmitter } from "node:events"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Logging from "../src/observability/Logging.js"
import { timedAgent } from "./agentLayer.js"
import { binPath, nowMs, peakRssMiB, percentile, rssMiB, simulator } from "./support.js"

// The SDK client's stdio transport waits for 'drain' once per request written while the pipe is full; a thousand
// concurrent calls legitimately exceed Node's default of 10 listeners.
EventEmitter.defaultMaxListeners = 0

const program = Effect.gen(function*() {
  const dir = mkdtempSync(join(tmpdir(), "bridge-agent-bench-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  writeFileSync(join(dir, "a.txt"), "alpha\n")
  // Three rounds: list the folder, read a file, answer.
  const scenario = join(dir, "scenario.json")
  writeFileSync(
    scenario,
    JSON.stringify({
      rules: [
        {
          match: { round: 0, hasTools: true },
          reply: { toolCalls: [{ name: "fs__list_directory", arguments: { path: dir } }] }
        },
        {
          match: { round: 1, hasTools: true },
          reply: { toolCalls: [{ name: "fs__read_text_file", arguments: { path: join(dir, "a.txt") } }] }
        },
        { match: { round: 2 }, reply: { content: "done" } }
      ]
    })
  )
  const mcpJson = join(dir, "mcp.json")
  const fsServer = join(process.cwd(), "node_modules", "@modelcontextprotocol", "server-filesystem", "dist", "index.js")
  writeFileSync(mcpJson, JSON.stringify({ mcpServers: { fs: { command: process.execPath, args: [fsServer, dir] } } }))
  const sim = yield* simulator(["--scenario", scenario])
  const { agent, outside, servers } = yield* timedAgent({
    baseUrl: sim.baseUrl,
    mcpJsonPath: Option.some(mcpJson),
    agentApi: "chat",
    agentBudget: Duration.seconds(600)
  })
  const run = agent.run({ servers, task: "bench" })

  const cold = yield* run
  const warm = yield* run
  const perRound: Array<number> = []
  for (let i = 0; i < 200; i++) {
    outside.llmNs = 0
    outside.toolNs = 0
    const t0 = yield* Clock.currentTimeNanos
    const r = yield* run
    const wallNs = Number((yield* Clock.currentTimeNanos) - t0)
    perRound.push((wallNs - outside.llmNs - outside.toolNs) / 1e6 / r.rounds)
  }
  const concurrent = (n: number) =>
    Effect.gen(function*() {
      let peak = process.memoryUsage().rss
      let peakHeap = process.memoryUsage().heapUsed
      const sample = Effect.sync(() => {
        const m = process.memoryUsage()
        peak = Math.max(peak, m.rss)
        peakHeap = Math.max(peakHeap, m.heapUsed)
      })
      const sampler = yield* Effect.fork(Effect.forever(Effect.zipRight(sample, Effect.sleep(Duration.millis(20)))))
      const timedRun = Effect.gen(function*() {
        const t0 = yield* nowMs
        const r = yield* run
        return { completed: r.stopReason === "completed", ms: (yield* nowMs) - t0 }
      })
      const results = yield* Effect.forEach(Array.from({ length: n }), () => Effect.either(timedRun), {
        concurrency: "unbounded"
      })
      yield* Fiber.interrupt(sampler)
      yield* sample
      const ok = results.flatMap((r) => (r._tag === "Right" && r.right.completed ? [r.right.ms] : []))
      return {
        errors: n - ok.length,
        p50: percentile(ok, 50),
        p99: percentile(ok, 99),
        peakMiB: peak / 1048576,
        peakHeapMiB: peakHeap / 1048576
      }
    })
  const c100 = yield* concurrent(100)
  const c1000 = yield* concurrent(1000)

  /**
   * The same runs through the product as an MCP client uses it: `lmstudio-bridge serve` spawned over stdio (the
   * bundled executable, one SDK client connection), n concurrent `autonomous_with_mcp` calls; the bridge process's
   * peak RSS is the kernel's high-water mark (VmHWM). A fresh bridge per size, so each peak is its own.
   */
  const throughBridge = (n: number) =>
    Effect.scoped(
      Effect.gen(function*() {
        const transport = new StdioClientTransport({
          command: process.execPath,
          args: [binPath, "serve"],
          env: {
            PATH: process.env.PATH ?? "",
            LMSTUDIO_BASE_URL: sim.baseUrl,
            LMSTUDIO_LIFECYCLE: "jit",
            MCP_JSON_PATH: mcpJson,
            AGENT_API: "chat",
            LOG_LEVEL: "error"
          },
          stderr: "ignore"
        })
        const mcp = new Client({ name: "bench", version: "1.0.0" })
        yield* Effect.acquireRelease(
          Effect.promise(() => mcp.connect(transport)),
          () => Effect.promise(() => mcp.close())
        )
        const callRun = Effect.promise(() =>
          mcp.callTool({ name: "autonomous_with_mcp", arguments: { mcp_name: "fs", task: "bench" } }, undefined, {
            timeout: 600_000
          })
        )
        // Setup as the MCP client sees it: the first call spawns the child, the second finds it pooled.
        const c0 = yield* nowMs
        yield* callRun
        const c1 = yield* nowMs
        yield* callRun
        const coldMs = c1 - c0
        const warmMs = (yield* nowMs) - c1
        const pid = transport.pid ?? 0
        const idle = rssMiB(pid)
        const results = yield* Effect.forEach(
          Array.from({ length: n }),
          () =>
            Effect.gen(function*() {
              const t0 = yield* nowMs
              const r = yield* callRun
              const ok = r.isError !== true &&
                JSON.stringify(r.structuredContent ?? {}).includes("\"stop_reason\":\"completed\"")
              return { ok, ms: (yield* nowMs) - t0 }
            }),
          { concurrency: "unbounded" }
        )
        const ok = results.filter((r) => r.ok).map((r) => r.ms)
        return {
          errors: n - ok.length,
          p50: percentile(ok, 50),
          p99: percentile(ok, 99),
          idle,
          peak: peakRssMiB(pid),
          coldMs,
          warmMs
        }
      })
    )
  const b100 = yield* throughBridge(100)
  const b1000 = yield* throughBridge(1000)
  const lines = [
    `Agent runs — AgentLoop in-process, chat API, zero-latency simulator in its own process, server-filesystem child, node ${process.version}`,
    "",
    `first run (child spawned): ${cold.durationMs} ms; second run (pooled child): ${warm.durationMs} ms; setup saved by the pool: ${
      cold.durationMs - warm.durationMs
    } ms`,
    `bridge time per round (run wall time - its LLM requests - its child tool calls, / rounds; 200 runs): p50 ${
      percentile(perRound, 50).toFixed(3)
    } ms, p99 ${percentile(perRound, 99).toFixed(3)} ms (target <= 1 ms)`,
    `100 concurrent 3-round runs: errors ${c100.errors}, wall p50 ${c100.p50.toFixed(0)} ms, p99 ${
      c100.p99.toFixed(0)
    } ms, peak RSS ${c100.peakMiB.toFixed(0)} MiB (JS heap used ${c100.peakHeapMiB.toFixed(0)} MiB)`,
    `1,000 concurrent 3-round runs: errors ${c1000.errors} (target 0), wall p50 ${c1000.p50.toFixed(0)} ms, p99 ${
      c1000.p99.toFixed(0)
    } ms, peak RSS ${c1000.peakMiB.toFixed(0)} MiB (target <= 400; JS heap used ${c1000.peakHeapMiB.toFixed(0)} MiB)`,
    "",
    "Through the bridge over stdio (`lmstudio-bridge serve`, one SDK client, concurrent autonomous_with_mcp calls):",
    `first autonomous_with_mcp call (child spawned): ${b100.coldMs.toFixed(0)} ms; second (pooled child): ${
      b100.warmMs.toFixed(0)
    } ms`,
    `100 concurrent runs: errors ${b100.errors}, wall p50 ${b100.p50.toFixed(0)} ms, p99 ${
      b100.p99.toFixed(0)
    } ms, bridge RSS idle ${b100.idle.toFixed(0)} MiB, peak ${b100.peak.toFixed(0)} MiB`,
    `1,000 concurrent runs: errors ${b1000.errors} (target 0), wall p50 ${b1000.p50.toFixed(0)} ms, p99 ${
      b1000.p99.toFixed(0)
    } ms, bridge RSS idle ${b1000.idle.toFixed(0)} MiB, peak ${b1000.peak.toFixed(0)} MiB (target <= 400)`
  ]
  yield* Effect.sync(() => process.stdout.write(`${lines.join("\n")}\n`))
})

Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Logging.make("json", "error")))).catch((e: unknown) => {
  process.stderr.write(`bench failed: ${String(e)}\n`)
  process.exitCode = 1
})
