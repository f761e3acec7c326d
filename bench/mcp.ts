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
import { Agent, createServer, type Server } from "node:http"
import { fileURLToPath } from "node:url"
import { observeRequest } from "../src/lmstudio/client/GenAiTelemetry.js"
import { recordServed } from "../src/mcp/CallTelemetry.js"
import * as Logging from "../src/observability/Logging.js"
import { CurrentRecorder, Recorder } from "../src/observability/Metrics.js"
import { binPath, cpuMs, nowMs, percentile, rawPost, rssMiB, simulator } from "./support.js"

const floorPath = fileURLToPath(new URL("./floor-server.js", import.meta.url))
/** Seconds the bridge is left idle before its idle RSS is read. */
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 120)

const TOTAL = Number(process.env.BENCH_MCP_REQUESTS ?? 1000)
const BATCH = 100

/** An SDK client over stdio to the server `args` starts (closed with the scope), and its benchmark call. */
const connectOver = (args: ReadonlyArray<string>, env: Record<string, string>) =>
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

  const connect = (args: ReadonlyArray<string>) => connectOver(args, env)
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
  if (Number(process.env.BENCH_TELEMETRY_ROUNDS ?? 5) > 0) yield* telemetryCost(env)
})

/**
 * The recording a chat_completion does, in this process, without the noise of four processes: the MCP server's
 * observation around the LLM request's (a `tools/call` histogram, an LLM duration, two token counts), with the
 * recorder installed and without.
 */
const recordingWork = Effect.gen(function*() {
  const result = { content: [{ type: "text" as const, text: "pong" }] }
  const served = {
    method: "tools/call" as const,
    tool: "chat_completion",
    jsonRpcId: 7,
    sessionId: undefined,
    meta: undefined,
    transport: "pipe" as const,
    tracing: false
  }
  const call = {
    operation: "chat" as const,
    api: "chat_completions" as const,
    model: "qwen/qwen3-4b",
    address: "127.0.0.1",
    port: 1234
  }
  const usage = { input: 12, output: 4 }
  const request = observeRequest(call, false, () => usage, Effect.succeed(result))
  const N = 50_000
  const time = (recorder: Recorder | undefined) =>
    Effect.gen(function*() {
      // As Server.ts serves a request: the served-request histogram around the run, the LLM request's inside it.
      const once = recorder === undefined ? request : Effect.suspend(() => {
        const t0 = recorder.now()
        return Effect.tap(Effect.exit(request), (exit) => recordServed(recorder, served, t0, exit))
      })
      const loop = Effect.gen(function*() {
        for (let i = 0; i < N; i++) yield* once
      }).pipe(recorder === undefined ? (e) => e : Effect.provideService(CurrentRecorder, recorder))
      yield* loop
      const c0 = process.cpuUsage()
      yield* loop
      const c = process.cpuUsage(c0)
      return (c.user + c.system) / N
    })
  const recorder = new Recorder()
  const times = { off: [] as Array<number>, on: [] as Array<number> }
  for (let r = 0; r < 5; r++) {
    times.off.push(yield* time(undefined))
    times.on.push(yield* time(recorder))
  }
  const off = percentile(times.off, 50)
  const on = percentile(times.on, 50)
  return `in-process, the observation of one chat_completion (median of 5 × ${N}): ${
    off.toFixed(1)
  } µs CPU with metrics off, ${on.toFixed(1)} µs on: recording costs ${(on - off).toFixed(1)} µs`
})

/**
 * Telemetry's cost (issue 15), in one run: four bridges — telemetry off, metrics on (METRICS_PORT), traces on (OTLP
 * protobuf to a receiver in this process that answers 200), both — each warmed up, then their batches interleaved so
 * drift in the machine hits all four alike. CPU per call is the bridge process's own (utime + stime).
 */
const telemetryCost = (env: Record<string, string>) =>
  Effect.gen(function*() {
    const total = Number(process.env.BENCH_TELEMETRY_REQUESTS ?? 3000)
    const ROUNDS = Number(process.env.BENCH_TELEMETRY_ROUNDS ?? 5)
    let received = 0
    const receiver = yield* Effect.acquireRelease(
      Effect.async<Server>((resume) => {
        const server = createServer((req, res) => {
          req.on("data", (c: Buffer) => (received += c.length))
          req.on("end", () => res.writeHead(200, { "content-type": "application/x-protobuf" }).end())
        })
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) => Effect.sync(() => server.close())
    )
    const address = receiver.address()
    const otlp = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`
    const traces = { OTEL_EXPORTER_OTLP_ENDPOINT: otlp, OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" }
    const variants = [
      { name: "telemetry off", env: {} },
      { name: "metrics on (METRICS_PORT)", env: { METRICS_PORT: "0" } },
      { name: "traces on (OTLP to a local receiver)", env: traces },
      { name: "metrics and traces on", env: { METRICS_PORT: "0", ...traces } }
    ]
    // Fresh processes per round: one process's JIT and heap history can differ from another's by more than what is
    // measured, so each round starts all four anew and the figure is the median over rounds.
    const round = Effect.scoped(Effect.gen(function*() {
      const bridges = yield* Effect.forEach(variants, (v) =>
        Effect.gen(function*() {
          const { call, transport } = yield* connectOver([binPath, "serve"], { ...env, ...v.env })
          return { call, pid: transport.pid ?? 0, ms: [] as Array<number>, cpu: 0 }
        }))
      for (let i = 0; i < 300; i++) for (const b of bridges) yield* b.call
      for (let done = 0; done < total; done += BATCH) {
        for (const b of bridges) {
          const c0 = cpuMs(b.pid)
          for (let i = 0; i < BATCH; i++) {
            const s = yield* nowMs
            yield* b.call
            b.ms.push((yield* nowMs) - s)
          }
          b.cpu += cpuMs(b.pid) - c0
        }
      }
      return bridges.map((b) => ({
        p50: percentile(b.ms, 50),
        p99: percentile(b.ms, 99),
        cpuUs: (b.cpu / total) * 1000
      }))
    }))
    const rounds: Array<ReadonlyArray<{ readonly p50: number; readonly p99: number; readonly cpuUs: number }>> = []
    for (let r = 0; r < ROUNDS; r++) rounds.push(yield* round)
    const med = (xs: ReadonlyArray<number>) => percentile(xs, 50)
    const of = (i: number, f: (x: { readonly p50: number; readonly p99: number; readonly cpuUs: number }) => number) =>
      med(rounds.map((r) => f(r[i]!)))
    const overOff = (i: number) => med(rounds.map((r) => r[i]!.cpuUs - r[0]!.cpuUs))
    const lines = [
      "",
      `Telemetry cost — ${total} chat_completion calls per bridge per round, batches of ${BATCH} interleaved across ` +
      `the four, ${ROUNDS} rounds of fresh processes; medians over the rounds`,
      "",
      "| bridge | p50 ms | p99 ms | CPU per call µs | CPU over off µs (each round) |",
      "|---|---|---|---|---|",
      ...variants.map((v, i) =>
        `| ${v.name} | ${of(i, (x) => x.p50).toFixed(3)} | ${of(i, (x) => x.p99).toFixed(3)} | ${
          of(i, (x) => x.cpuUs).toFixed(0)
        } | ${
          i === 0
            ? "—"
            : `${overOff(i).toFixed(0)} (${rounds.map((r) => (r[i]!.cpuUs - r[0]!.cpuUs).toFixed(0)).join(", ")})`
        } |`
      ),
      "",
      `metrics on costs ${overOff(1).toFixed(0)} µs CPU per call (median over rounds; target <= 20); traces sent ${
        (received / 1024).toFixed(0)
      } KiB of OTLP in all`,
      yield* recordingWork
    ]
    yield* Effect.sync(() => process.stdout.write(`${lines.join("\n")}\n`))
  })

Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Logging.make("json", "warn")))).catch((e: unknown) => {
  process.stderr.write(`bench failed: ${String(e)}\n`)
  process.exitCode = 1
})
