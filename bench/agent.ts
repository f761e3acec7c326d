/**
 * Agent benchmark (`npm run bench`): the AgentLoop service in-process against a zero-latency simulator in its own
 * process, with the real @modelcontextprotocol/server-filesystem as the child server.
 * - setup time of the first run (cold: the child is spawned) against the second (pooled child);
 * - bridge time per round: a run's wall time minus its LLM requests (timed around the client) and tool calls;
 * - 100 and 1,000 concurrent 3-round runs sharing the pooled child: errors, p50/p99 wall time, peak RSS.
 */
import { NodeContext } from "@effect/platform-node"
import { Context, Duration, Effect, Fiber, Layer, Option } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { AgentLoop } from "../src/agent/AgentLoop.js"
import { ChildServers } from "../src/agent/ChildServers.js"
import { McpConfig } from "../src/agent/McpConfig.js"
import { AppConfig } from "../src/Config.js"
import { LmsCli } from "../src/lmstudio/LmsCli.js"
import { LmStudioClient } from "../src/lmstudio/LmStudioClient.js"
import { ModelCatalog } from "../src/lmstudio/ModelCatalog.js"
import { ModelLifecycle } from "../src/lmstudio/ModelLifecycle.js"
import * as Logging from "../src/observability/Logging.js"
import { nowMs, percentile, simulator } from "./support.js"
import * as HttpTransport from "../src/lmstudio/HttpTransport.js"

const program = Effect.gen(function* () {
  const dir = mkdtempSync(join(tmpdir(), "bridge-agent-bench-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  writeFileSync(join(dir, "a.txt"), "alpha\n")
  // Three rounds: list the folder, read a file, answer.
  const scenario = join(dir, "scenario.json")
  writeFileSync(
    scenario,
    JSON.stringify({
      rules: [
        { match: { round: 0, hasTools: true }, reply: { toolCalls: [{ name: "fs__list_directory", arguments: { path: dir } }] } },
        { match: { round: 1, hasTools: true }, reply: { toolCalls: [{ name: "fs__read_text_file", arguments: { path: join(dir, "a.txt") } }] } },
        { match: { round: 2 }, reply: { content: "done" } }
      ]
    })
  )
  const mcpJson = join(dir, "mcp.json")
  const fsServer = join(process.cwd(), "node_modules", "@modelcontextprotocol", "server-filesystem", "dist", "index.js")
  writeFileSync(mcpJson, JSON.stringify({ mcpServers: { fs: { command: process.execPath, args: [fsServer, dir] } } }))
  const sim = yield* simulator(["--scenario", scenario])
  const layer = Layer.mergeAll(AgentLoop.Default, McpConfig.Default).pipe(
    Layer.provideMerge(ChildServers.Default),
    Layer.provideMerge(ModelLifecycle.Default),
    Layer.provideMerge(ModelCatalog.Default),
    Layer.provideMerge(Layer.mergeAll(LmStudioClient.Default, LmsCli.Default)),
    Layer.provideMerge(AppConfig.layerFrom({ baseUrl: sim.baseUrl, lifecycle: "jit", mcpJsonPath: Option.some(mcpJson), agentApi: "chat", agentBudget: Duration.seconds(600) })),
    Layer.provide(Layer.mergeAll(HttpTransport.layer, NodeContext.layer))
  )
  const ctx = yield* Layer.build(layer)
  const agent = Context.get(ctx, AgentLoop)
  const client = Context.get(ctx, LmStudioClient)
  const servers = (yield* Context.get(ctx, McpConfig).load).servers
  const run = agent.run({ servers, task: "bench" })

  const cold = yield* run
  const warm = yield* run
  // LLM time of a run, measured with the same three requests sent directly.
  const llm = Effect.gen(function* () {
    const t0 = yield* nowMs
    for (let i = 0; i < 3; i++) yield* client.chat({ model: "qwen/qwen3-4b", messages: [{ role: "user", content: "x" }] })
    return (yield* nowMs) - t0
  })
  const perRound: Array<number> = []
  for (let i = 0; i < 200; i++) {
    const r = yield* run
    const l = yield* llm
    const tools = r.toolCalls.reduce((s, c) => s + c.ms, 0)
    perRound.push((r.durationMs - l - tools) / r.rounds)
  }
  const concurrent = (n: number) =>
    Effect.gen(function* () {
      let peak = process.memoryUsage().rss
      const sample = Effect.sync(() => {
        peak = Math.max(peak, process.memoryUsage().rss)
      })
      const sampler = yield* Effect.fork(Effect.forever(Effect.zipRight(sample, Effect.sleep(Duration.millis(20)))))
      const timedRun = Effect.gen(function* () {
        const t0 = yield* nowMs
        const r = yield* run
        return { completed: r.stopReason === "completed", ms: (yield* nowMs) - t0 }
      })
      const results = yield* Effect.forEach(Array.from({ length: n }), () => Effect.either(timedRun), { concurrency: "unbounded" })
      yield* Fiber.interrupt(sampler)
      yield* sample
      const ok = results.flatMap((r) => (r._tag === "Right" && r.right.completed ? [r.right.ms] : []))
      return { errors: n - ok.length, p50: percentile(ok, 50), p99: percentile(ok, 99), peakMiB: peak / 1048576 }
    })
  const c100 = yield* concurrent(100)
  const c1000 = yield* concurrent(1000)
  const lines = [
    `Agent runs — AgentLoop in-process, chat API, zero-latency simulator in its own process, server-filesystem child, node ${process.version}`,
    "",
    `first run (child spawned): ${cold.durationMs} ms; second run (pooled child): ${warm.durationMs} ms; setup saved by the pool: ${cold.durationMs - warm.durationMs} ms`,
    `bridge time per round (run wall time - its LLM requests - its tool calls, / rounds; 200 runs): p50 ${percentile(perRound, 50).toFixed(3)} ms, p99 ${percentile(perRound, 99).toFixed(3)} ms (target <= 1 ms)`,
    `100 concurrent 3-round runs: errors ${c100.errors}, wall p50 ${c100.p50.toFixed(0)} ms, p99 ${c100.p99.toFixed(0)} ms, peak RSS ${c100.peakMiB.toFixed(0)} MiB`,
    `1,000 concurrent 3-round runs: errors ${c1000.errors} (target 0), wall p50 ${c1000.p50.toFixed(0)} ms, p99 ${c1000.p99.toFixed(0)} ms, peak RSS ${c1000.peakMiB.toFixed(0)} MiB (target <= 400)`
  ]
  yield* Effect.sync(() => process.stdout.write(`${lines.join("\n")}\n`))
})

Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Logging.make("json", "error")))).catch((e: unknown) => {
  process.stderr.write(`bench failed: ${String(e)}\n`)
  process.exitCode = 1
})
