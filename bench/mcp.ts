/**
 * MCP server benchmark (`npm run bench`): `chat_completion` through the bridge over stdio (SDK client, the built
 * binary as a child process) against the same request sent directly over HTTP, in one run against a zero-latency
 * simulator running in its own process (as LM Studio does, so it does not share the measuring process's event loop);
 * sequential and 32-way concurrent throughput over one connection; time from spawn to the `initialize` answer; RSS of
 * the bridge process right after the calls and once it has sat idle (V8 gives memory back only after some idle
 * seconds). A third path, the floor, is the smallest SDK stdio server doing the same request (bench/floor-server.ts):
 * the overhead splits into what any SDK stdio server pays and what the bridge adds.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { Effect } from "effect"
import { Agent } from "node:http"
import { fileURLToPath } from "node:url"
import * as Logging from "../src/observability/Logging.js"
import { binPath, cpuMs, nowMs, percentile, rawPost, rssMiB, simulator } from "./support.js"

const floorPath = fileURLToPath(new URL("./floor-server.js", import.meta.url))
/** Seconds the bridge is left idle before its idle RSS is read. */
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 120)

const TOTAL = Number(process.env.BENCH_MCP_REQUESTS ?? 1000)
const BATCH = 100

const program = Effect.gen(function*() {
  const sim = yield* simulator()
  const body = JSON.stringify({
    model: "qwen/qwen3-4b",
    messages: [{ role: "user", content: "benchmark ping" }],
    max_tokens: 16
  })
  const agent = new Agent({ keepAlive: true, maxSockets: 32 })
  yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
  const raw = rawPost(agent, sim.port, "/v1/chat/completions", body)

  const env = {
    PATH: process.env.PATH ?? "",
    LMSTUDIO_BASE_URL: sim.baseUrl,
    LMSTUDIO_LIFECYCLE: "jit",
    LOG_LEVEL: "error"
  }
  // Start-up: the median of 7 spawns (a single spawn varies by ±50 ms on this machine).
  const spawns: Array<number> = []
  for (let i = 0; i < 7; i++) {
    const probe = new Client({ name: "bench-startup", version: "1.0.0" })
    const s0 = yield* nowMs
    yield* Effect.promise(() =>
      probe.connect(
        new StdioClientTransport({ command: process.execPath, args: [binPath, "serve"], env, stderr: "ignore" })
      )
    )
    spawns.push((yield* nowMs) - s0)
    yield* Effect.promise(() => probe.close())
  }

  const connect = (args: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const transport = new StdioClientTransport({ command: process.execPath, args: [...args], env, stderr: "ignore" })
      const client = new Client({ name: "bench", version: "1.0.0" })
      yield* Effect.promise(() => client.connect(transport))
      yield* Effect.addFinalizer(() => Effect.promise(() => client.close()))
      const call = Effect.promise(() =>
        client.callTool({
          name: "chat_completion",
          arguments: { model: "qwen/qwen3-4b", prompt: "benchmark ping", max_tokens: 16 }
        })
      )
      return { transport, call }
    })
  const bridge = yield* connect([binPath, "serve"])
  const floor = yield* connect([floorPath])
  const transport = bridge.transport
  const initializeMs = percentile(spawns, 50)
  const viaMcp = bridge.call
  const viaFloor = floor.call

  for (let i = 0; i < 200; i++) {
    yield* raw
    yield* viaFloor
    yield* viaMcp
  }
  const pid = transport.pid ?? 0
  const warmRss = rssMiB(pid)

  const simCpu0 = cpuMs(sim.child.pid ?? 0)
  const selfCpu0 = process.cpuUsage()
  const rawMs: Array<number> = []
  const floorMs: Array<number> = []
  const mcpMs: Array<number> = []
  let rawWall = 0
  let floorWall = 0
  let mcpWall = 0
  let bridgeCpu = 0
  let floorCpu = 0
  const floorPid = floor.transport.pid ?? 0
  const batch = (effect: Effect.Effect<unknown, unknown>, into: Array<number>) =>
    Effect.gen(function*() {
      const a = yield* nowMs
      for (let i = 0; i < BATCH; i++) {
        const s = yield* nowMs
        yield* effect
        into.push((yield* nowMs) - s)
      }
      return (yield* nowMs) - a
    })
  for (let done = 0; done < TOTAL; done += BATCH) {
    rawWall += yield* batch(raw, rawMs)
    const f0 = cpuMs(floorPid)
    floorWall += yield* batch(viaFloor, floorMs)
    floorCpu += cpuMs(floorPid) - f0
    const c0 = cpuMs(pid)
    mcpWall += yield* batch(viaMcp, mcpMs)
    bridgeCpu += cpuMs(pid) - c0
  }
  // CPU per sequential call: the bridge works only in the MCP batches; the simulator and this process in both.
  const bridgeCpuPerCall = bridgeCpu / TOTAL
  const simCpuPerCall = (cpuMs(sim.child.pid ?? 0) - simCpu0) / (3 * TOTAL)
  const selfCpu = process.cpuUsage(selfCpu0)
  const selfCpuPerCall = (selfCpu.user + selfCpu.system) / 1000 / (3 * TOTAL)
  const concurrent = (effect: Effect.Effect<unknown, unknown>) =>
    Effect.gen(function*() {
      const s = yield* nowMs
      yield* Effect.forEach(Array.from({ length: TOTAL }), () => effect, { concurrency: 32, discard: true })
      return (TOTAL / ((yield* nowMs) - s)) * 1000
    })
  const rawConc = yield* concurrent(raw)
  const floorConc = yield* concurrent(viaFloor)
  const mcpConc = yield* concurrent(viaMcp)
  const busyRss = rssMiB(pid)
  // Idle: V8 gives back the pages of a heap that has stopped growing only once its memory reducer has run, several
  // to tens of idle seconds after the last call (longer after a bigger heap). The idle figure is read once the RSS
  // has come down and stayed put for 5 s, or after IDLE_SECONDS at most.
  const idleSamples: Array<number> = []
  for (let i = 0; i < IDLE_SECONDS; i++) {
    yield* Effect.sleep("1 second")
    idleSamples.push(rssMiB(pid))
    const last5 = idleSamples.slice(-5)
    if (last5.length === 5 && last5.every((v) => v === last5[0]) && last5[0]! < busyRss) break
  }
  const idleRss = idleSamples[idleSamples.length - 1] ?? busyRss
  const settledAfter = idleSamples.findIndex((v) => v === idleRss) + 1

  const row = (name: string, ms: ReadonlyArray<number>, wall: number, conc: number) =>
    `| ${name} | ${percentile(ms, 50).toFixed(3)} | ${percentile(ms, 95).toFixed(3)} | ${
      percentile(ms, 99).toFixed(3)
    } | ${((ms.length / wall) * 1000).toFixed(0)} | ${conc.toFixed(0)} |`
  const p = (xs: ReadonlyArray<number>, q: number) => percentile(xs, q)
  const over = (a: ReadonlyArray<number>, b: ReadonlyArray<number>, q: number) => (p(a, q) - p(b, q)).toFixed(3)
  const lines = [
    `MCP server over stdio — ${TOTAL} chat_completion calls per path, interleaved in batches of ${BATCH}, zero-latency simulator in its own process, node ${process.version}`,
    "",
    "| path | p50 ms | p95 ms | p99 ms | sequential req/s | req/s at 32 concurrent |",
    "|---|---|---|---|---|---|",
    row("raw HTTP to the simulator", rawMs, rawWall, rawConc),
    row(
      "floor: minimal SDK stdio server, one node:http request (bench/floor-server.ts)",
      floorMs,
      floorWall,
      floorConc
    ),
    row("chat_completion via the bridge (stdio)", mcpMs, mcpWall, mcpConc),
    "",
    `overhead over raw HTTP: bridge p50 ${over(mcpMs, rawMs, 50)} ms (target <= 0.5), p95 ${
      over(mcpMs, rawMs, 95)
    }, p99 ${over(mcpMs, rawMs, 99)} ms (target <= 2); ratio ${(p(mcpMs, 50) / p(rawMs, 50)).toFixed(2)}x`,
    `  of which the SDK and the stdio hop (floor over raw): p50 ${over(floorMs, rawMs, 50)}, p99 ${
      over(floorMs, rawMs, 99)
    } ms; the bridge's own (bridge over floor): p50 ${over(mcpMs, floorMs, 50)}, p99 ${over(mcpMs, floorMs, 99)} ms`,
    `CPU per sequential call: bridge ${bridgeCpuPerCall.toFixed(3)} ms, floor server ${
      (floorCpu / TOTAL).toFixed(3)
    } ms; simulator ${simCpuPerCall.toFixed(3)} ms; this process (all paths, averaged) ${selfCpuPerCall.toFixed(3)} ms`,
    `spawn to initialize answer (median of 7; min ${Math.min(...spawns).toFixed(0)}, max ${
      Math.max(...spawns).toFixed(0)
    }): ${initializeMs.toFixed(0)} ms (target <= 300)`,
    `bridge RSS: idle ${
      idleRss.toFixed(0)
    } MiB (target <= 80; idle since the run: it came down after ${settledAfter} s without calls, read ${idleSamples.length} s after); right after the warm-up ${
      warmRss.toFixed(0)
    } MiB, right after the run ${busyRss.toFixed(0)} MiB`
  ]
  yield* Effect.sync(() => process.stdout.write(`${lines.join("\n")}\n`))
})

Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Logging.make("json", "warn")))).catch((e: unknown) => {
  process.stderr.write(`bench failed: ${String(e)}\n`)
  process.exitCode = 1
})
