/**
 * What metrics cost per `chat_completion`, measured where the difference is not drowned (issue 15): across
 * processes the CPU time of one bridge differs from another's by more than telemetry costs (JIT and heap history;
 * docs/benchmarks.md), so here both bridges live in ONE process — the services of App.ts built twice, once with
 * `METRICS_PORT` (the recorder installed, the exporter loaded, its port open) and once without — each behind the
 * bridge's own MCP server (Server.ts) and an SDK client over an in-memory transport, both against the simulator in
 * its own process. Batches of calls alternate between the two; the process's CPU time per batch is the measure, so
 * the client's and the transport's share is the same for both and cancels.
 *
 * On this VM one batch's CPU time differs from the next by ±15 % whatever runs, with rare batches at 2–3 times the
 * rest (neither GC nor which bridge explains them), so the report gives robust figures: the median and the 10 %
 * trimmed mean of the paired differences, each with a 95 % bootstrap interval, beside the plain mean. (Counting
 * instructions under callgrind instead was tried: in one process under valgrind a batch's count still varies
 * twofold, with compilation and GC landing in one batch or the other.) Usage:
 *   node --expose-gc dist/bench/inprocess.js      (BATCHES, CALLS per batch, WARM calls per bridge from env)
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js"
import { Effect, Layer, ManagedRuntime } from "effect"
import { createRequire } from "node:module"
import { appLayer } from "../src/App.js"
import { tools } from "../src/mcp/index.js"
import { makeServer } from "../src/mcp/Server.js"
import * as Logging from "../src/observability/Logging.js"
import { percentile, simulator } from "./support.js"

const { version } = createRequire(import.meta.url)("../../package.json") as { version: string }
const BATCHES = Number(process.env.BATCHES ?? 400)
const CALLS = Number(process.env.CALLS ?? 250)
const WARM = Number(process.env.WARM ?? 3000)

/** One bridge in this process: the services built with `env` set (and unset again), served to an SDK client. */
const bridge = (baseUrl: string, env: Readonly<Record<string, string>>) =>
  Effect.gen(function*() {
    const vars = { LMSTUDIO_BASE_URL: baseUrl, LMSTUDIO_LIFECYCLE: "jit", LOG_LEVEL: "error", ...env }
    const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]))
    Object.assign(process.env, vars)
    const runtime = ManagedRuntime.make(
      appLayer(version)({ serving: true }).pipe(Layer.provide(Logging.make("json", "warn")), Layer.orDie)
    )
    const rt = yield* Effect.promise(() => runtime.runtime())
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
    yield* Effect.addFinalizer(() => Effect.promise(() => runtime.dispose()))
    const server = makeServer({ name: "lmstudio-bridge", version, transport: "pipe" }, tools, rt)
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
    yield* Effect.promise(() => server.connect(serverSide))
    const client = new Client({ name: "bench-inprocess", version: "1.0.0" })
    yield* Effect.promise(() => client.connect(clientSide))
    yield* Effect.addFinalizer(() => Effect.promise(() => client.close()))
    const call = Effect.promise(() =>
      client.callTool({
        name: "chat_completion",
        arguments: { model: "qwen/qwen3-4b", prompt: "benchmark ping", max_tokens: 16 }
      })
    )
    return Effect.gen(function*() {
      for (let i = 0; i < CALLS; i++) {
        const r = yield* call
        if (r.isError === true) return yield* Effect.die(new Error(`chat_completion failed: ${JSON.stringify(r)}`))
      }
    })
  })

/** A scavenge before each batch (with `--expose-gc`; not counted): a batch does not start in the other's garbage. */
const minorGc: () => void = typeof globalThis.gc === "function"
  ? () => (globalThis.gc as (options: { type: "minor" }) => void)({ type: "minor" })
  : () => {}

/** CPU time (user + system) of this process for one batch, per call, in µs. */
const cpuPerCall = (batch: Effect.Effect<void>) =>
  Effect.gen(function*() {
    minorGc()
    const c0 = process.cpuUsage()
    yield* batch
    const c = process.cpuUsage(c0)
    return (c.user + c.system) / CALLS
  })

const median = (sorted: ReadonlyArray<number>) => sorted[sorted.length >> 1]!
const trimmedMean = (sorted: ReadonlyArray<number>) => {
  const cut = Math.floor(sorted.length / 10)
  const kept = sorted.slice(cut, sorted.length - cut)
  return kept.reduce((a, b) => a + b, 0) / kept.length
}

/** The 2.5th and 97.5th percentiles of `stat` over 2,000 resamples of `xs` (a fixed-seed generator: repeatable). */
const bootstrap = (xs: ReadonlyArray<number>, stat: (sorted: ReadonlyArray<number>) => number): [number, number] => {
  let seed = 12345
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648
  const stats: Array<number> = []
  for (let b = 0; b < 2000; b++) {
    const sample = Array.from({ length: xs.length }, () => xs[Math.floor(next() * xs.length)]!)
    stats.push(stat(sample.sort((a, b) => a - b)))
  }
  stats.sort((a, b) => a - b)
  return [stats[49]!, stats[1949]!]
}

const program = Effect.gen(function*() {
  const sim = yield* simulator()
  const off = yield* bridge(sim.baseUrl, {})
  const on = yield* bridge(sim.baseUrl, { METRICS_PORT: "0" })
  for (let i = 0; i < WARM / CALLS; i++) {
    yield* off
    yield* on
  }
  const offs: Array<number> = []
  const ons: Array<number> = []
  const diffs: Array<number> = []
  for (let b = 0; b < BATCHES; b++) {
    // Alternate which goes first, so neither is always the one after the other's garbage.
    const onFirst = b % 2 === 1
    const first = yield* cpuPerCall(onFirst ? on : off)
    const second = yield* cpuPerCall(onFirst ? off : on)
    const [x, y] = onFirst ? [second, first] : [first, second]
    offs.push(x)
    ons.push(y)
    diffs.push(y - x)
  }
  const mean = diffs.reduce((a, b) => a + b, 0) / diffs.length
  const sd = Math.sqrt(diffs.reduce((a, b) => a + (b - mean) ** 2, 0) / (diffs.length - 1))
  const half = 1.96 * sd / Math.sqrt(diffs.length)
  const line = (xs: ReadonlyArray<number>) =>
    `p25 ${percentile(xs, 25).toFixed(1)} / p50 ${percentile(xs, 50).toFixed(1)} / p75 ${percentile(xs, 75).toFixed(1)}`
  const robust = (name: string, stat: (sorted: ReadonlyArray<number>) => number) => {
    const [lo, hi] = bootstrap(diffs, stat)
    return `  on − off, ${name}: ${stat([...diffs].sort((a, b) => a - b)).toFixed(1)} µs (95 % interval ${
      lo.toFixed(1)
    } to ${hi.toFixed(1)}; target <= 20)`
  }
  yield* Effect.sync(() =>
    process.stdout.write(
      [
        `in one process, ${BATCHES} alternating batches of ${CALLS} chat_completion per bridge (after ${WARM} each):`,
        `  telemetry off:          CPU per call µs ${line(offs)}`,
        `  metrics on:             CPU per call µs ${line(ons)}`,
        `  on − off (same batch pair): µs ${line(diffs)}`,
        robust("median", median),
        robust("10 % trimmed mean", trimmedMean),
        `  on − off, mean: ${mean.toFixed(1)} µs ± ${half.toFixed(1)}`
      ].join("\n") + "\n"
    )
  )
})

Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Logging.make("json", "warn")))).catch((e: unknown) => {
  process.stderr.write(`bench failed: ${String(e)}\n`)
  process.exitCode = 1
})
