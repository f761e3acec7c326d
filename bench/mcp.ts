/**
 * MCP server benchmark (`npm run bench`): `chat_completion` through the bridge over stdio (SDK client, the built
 * binary as a child process) against the same request sent directly over HTTP, in one run against a zero-latency
 * simulator running in its own process (as LM Studio does, so it does not share the measuring process's event loop);
 * sequential and 32-way concurrent throughput over one connection; time from spawn to the `initialize` answer; idle
 * RSS of the bridge process.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { Effect } from "effect"
import { Agent } from "node:http"
import * as Logging from "../src/observability/Logging.js"
import { binPath, cpuMs, nowMs, percentile, rawPost, rssMiB, simulator } from "./support.js"

const TOTAL = Number(process.env.BENCH_MCP_REQUESTS ?? 1000)
const BATCH = 100

const program = Effect.gen(function* () {
  const sim = yield* simulator()
  const body = JSON.stringify({ model: "qwen/qwen3-4b", messages: [{ role: "user", content: "benchmark ping" }], max_tokens: 16 })
  const agent = new Agent({ keepAlive: true, maxSockets: 32 })
  yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
  const raw = rawPost(agent, sim.port, "/v1/chat/completions", body)

  const env = { PATH: process.env.PATH ?? "", LMSTUDIO_BASE_URL: sim.baseUrl, LMSTUDIO_LIFECYCLE: "jit", LOG_LEVEL: "error" }
  // Start-up: the median of 7 spawns (a single spawn varies by ±50 ms on this machine).
  const spawns: Array<number> = []
  for (let i = 0; i < 7; i++) {
    const probe = new Client({ name: "bench-startup", version: "1.0.0" })
    const s0 = yield* nowMs
    yield* Effect.promise(() => probe.connect(new StdioClientTransport({ command: process.execPath, args: [binPath, "serve"], env, stderr: "ignore" })))
    spawns.push((yield* nowMs) - s0)
    yield* Effect.promise(() => probe.close())
  }

  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [binPath, "serve"],
    env,
    stderr: "ignore"
  })
  const client = new Client({ name: "bench", version: "1.0.0" })
  yield* Effect.promise(() => client.connect(transport))
  const initializeMs = percentile(spawns, 50)
  yield* Effect.addFinalizer(() => Effect.promise(() => client.close()))
  const viaMcp = Effect.promise(() =>
    client.callTool({ name: "chat_completion", arguments: { model: "qwen/qwen3-4b", prompt: "benchmark ping", max_tokens: 16 } })
  )

  for (let i = 0; i < 200; i++) {
    yield* raw
    yield* viaMcp
  }
  const pid = transport.pid ?? 0
  const idleRss = rssMiB(pid)

  const bridgeCpu0 = cpuMs(pid)
  const simCpu0 = cpuMs(sim.child.pid ?? 0)
  const selfCpu0 = process.cpuUsage()
  const rawMs: Array<number> = []
  const mcpMs: Array<number> = []
  let rawWall = 0
  let mcpWall = 0
  for (let done = 0; done < TOTAL; done += BATCH) {
    const a = yield* nowMs
    for (let i = 0; i < BATCH; i++) {
      const s = yield* nowMs
      yield* raw
      rawMs.push((yield* nowMs) - s)
    }
    const b = yield* nowMs
    for (let i = 0; i < BATCH; i++) {
      const s = yield* nowMs
      yield* viaMcp
      mcpMs.push((yield* nowMs) - s)
    }
    const c = yield* nowMs
    rawWall += b - a
    mcpWall += c - b
  }
  // CPU per sequential call: the bridge works only in the MCP batches; the simulator and this process in both.
  const bridgeCpuPerCall = (cpuMs(pid) - bridgeCpu0) / TOTAL
  const simCpuPerCall = (cpuMs(sim.child.pid ?? 0) - simCpu0) / (2 * TOTAL)
  const selfCpu = process.cpuUsage(selfCpu0)
  const selfCpuPerCall = (selfCpu.user + selfCpu.system) / 1000 / (2 * TOTAL)
  const concurrent = (effect: Effect.Effect<unknown, unknown>) =>
    Effect.gen(function* () {
      const s = yield* nowMs
      yield* Effect.forEach(Array.from({ length: TOTAL }), () => effect, { concurrency: 32, discard: true })
      return (TOTAL / ((yield* nowMs) - s)) * 1000
    })
  const rawConc = yield* concurrent(raw)
  const mcpConc = yield* concurrent(viaMcp)
  const busyRss = rssMiB(pid)

  const row = (name: string, ms: ReadonlyArray<number>, wall: number, conc: number) =>
    `| ${name} | ${percentile(ms, 50).toFixed(3)} | ${percentile(ms, 95).toFixed(3)} | ${percentile(ms, 99).toFixed(3)} | ${((ms.length / wall) * 1000).toFixed(0)} | ${conc.toFixed(0)} |`
  const lines = [
    `MCP server over stdio — ${TOTAL} chat_completion calls each way, zero-latency simulator in its own process, node ${process.version}`,
    "",
    "| path | p50 ms | p95 ms | p99 ms | sequential req/s | req/s at 32 concurrent |",
    "|---|---|---|---|---|---|",
    row("raw HTTP to the simulator", rawMs, rawWall, rawConc),
    row("chat_completion via the bridge (stdio)", mcpMs, mcpWall, mcpConc),
    "",
    `overhead p50 ${(percentile(mcpMs, 50) - percentile(rawMs, 50)).toFixed(3)} ms (target <= 0.5), p99 ${(percentile(mcpMs, 99) - percentile(rawMs, 99)).toFixed(3)} ms (target <= 2); ratio ${(percentile(mcpMs, 50) / percentile(rawMs, 50)).toFixed(2)}x`,
    `CPU per sequential call: bridge ${bridgeCpuPerCall.toFixed(3)} ms; simulator ${simCpuPerCall.toFixed(3)} ms; this process (both paths, averaged) ${selfCpuPerCall.toFixed(3)} ms`,
    `spawn to initialize answer (median of 7; min ${Math.min(...spawns).toFixed(0)}, max ${Math.max(...spawns).toFixed(0)}): ${initializeMs.toFixed(0)} ms (target <= 300); bridge RSS idle after warm-up ${idleRss.toFixed(0)} MiB (target <= 80), after the run ${busyRss.toFixed(0)} MiB`
  ]
  yield* Effect.sync(() => process.stdout.write(`${lines.join("\n")}\n`))
})

Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Logging.make("json", "warn")))).catch((e: unknown) => {
  process.stderr.write(`bench failed: ${String(e)}\n`)
  process.exitCode = 1
})
