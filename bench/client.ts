/**
 * Client overhead benchmark (`npm run bench`).
 *
 * The same 2,000 chat requests go to a zero-latency simulator running in its own process (as LM Studio does, so its
 * work does not share the measuring event loop and blur the figures) four ways in one run: directly over HTTP (node:http
 * with a keep-alive agent, JSON.parse of the body), through @effect/platform's undici HttpClient (execute, read,
 * JSON.parse), through the bridge's NodeTransport alone (exchange with its deadline, JSON.parse), and through
 * LmStudioClient over NodeTransport (Schema decoding, error checks, model check, deadline, breaker and retry
 * wrappers). They are interleaved in batches so drift hits all alike.
 * Reports p50/p95/p99 per call, sequential throughput, throughput at concurrency 8, RSS, and the overhead.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Clock, Context, Effect, Layer } from "effect"
import { Agent } from "node:http"
import { AppConfig } from "../src/Config.js"
import { LmStudioClient } from "../src/lmstudio/LmStudioClient.js"
import { LmStudioTransport } from "../src/lmstudio/transport/LmStudioTransport.js"
import * as NodeTransport from "../src/lmstudio/transport/NodeTransport.js"
import * as Logging from "../src/observability/Logging.js"
import { percentile, rawPost, simulator } from "./support.js"

const TOTAL = Number(process.env.BENCH_REQUESTS ?? 2000)
const BATCH = 100
const WARMUP = 200
const CONCURRENT = 8

const body = JSON.stringify({
  model: "qwen/qwen3-4b",
  messages: [{ role: "user", content: "benchmark ping" }],
  max_tokens: 16
})

const timed = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const t0 = yield* Clock.currentTimeNanos
    yield* effect
    const t1 = yield* Clock.currentTimeNanos
    return Number(t1 - t0) / 1e6
  })

const summary = (ms: ReadonlyArray<number>, wallMs: number) => {
  return {
    p50: percentile(ms, 50),
    p95: percentile(ms, 95),
    p99: percentile(ms, 99),
    throughput: (ms.length / wallMs) * 1000
  }
}

const fmt = (n: number, digits = 3) => n.toFixed(digits)

const program = Effect.gen(function*() {
  const sim = yield* simulator()
  const built = yield* Layer.build(
    LmStudioClient.Default.pipe(
      Layer.provideMerge(Layer.provideMerge(NodeTransport.layer, AppConfig.layerFrom({ baseUrl: sim.baseUrl })))
    )
  )
  const client = Context.get(built, LmStudioClient)
  const viaTransport = Effect.map(
    Context.get(built, LmStudioTransport).exchange({ method: "POST", path: "/v1/chat/completions", body }, 30_000),
    (r): unknown => JSON.parse(r.text)
  )
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENT })
  yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))

  const raw = rawPost(agent, sim.port, "/v1/chat/completions", body)
  const bare = (layer: Layer.Layer<HttpClient.HttpClient>) =>
    Effect.gen(function*() {
      const http = yield* Layer.build(layer).pipe(
        Effect.map(Context.get(HttpClient.HttpClient)),
        Effect.map((c) =>
          c.pipe(HttpClient.withTracerDisabledWhen(() => true), HttpClient.withTracerPropagation(false))
        )
      )
      return Effect.suspend(() =>
        http.execute(
          HttpClientRequest.post(`${sim.baseUrl}/v1/chat/completions`).pipe(
            HttpClientRequest.bodyText(body, "application/json")
          )
        )
      ).pipe(
        Effect.flatMap((r) => r.text),
        Effect.map((t): unknown => JSON.parse(t))
      )
    })
  const viaClient = client.chat({
    model: "qwen/qwen3-4b",
    messages: [{ role: "user", content: "benchmark ping" }],
    maxTokens: 16
  })
  const paths: ReadonlyArray<{ readonly name: string; readonly call: Effect.Effect<unknown, unknown> }> = [
    { name: "raw HTTP (node:http keep-alive)", call: raw },
    {
      name: "@effect/platform HttpClient, undici (NodeHttpClient.layerUndici)",
      call: yield* bare(NodeHttpClient.layerUndici)
    },
    { name: "LmStudioTransport alone (NodeTransport: exchange, deadline, JSON.parse)", call: viaTransport },
    { name: "LmStudioClient (over NodeTransport)", call: viaClient }
  ]

  yield* Effect.repeatN(Effect.all(paths.map((p) => p.call)), WARMUP - 1)

  const ms = paths.map((): Array<number> => [])
  const wall = paths.map(() => 0)
  // CPU this process spends per call on each path (user + system): steadier than latency on a noisy machine.
  const cpu = paths.map(() => 0)
  for (let done = 0; done < TOTAL; done += BATCH) {
    for (const [i, path] of paths.entries()) {
      const t0 = yield* Clock.currentTimeMillis
      const c0 = process.cpuUsage()
      for (let n = 0; n < BATCH; n++) ms[i]!.push(yield* timed(path.call))
      const used = process.cpuUsage(c0)
      cpu[i]! += (used.user + used.system) / 1000
      wall[i]! += (yield* Clock.currentTimeMillis) - t0
    }
  }
  const cpuPerCall = cpu.map((c) => c / TOTAL)

  const concurrent = (effect: Effect.Effect<unknown, unknown>) =>
    Effect.gen(function*() {
      const t0 = yield* Clock.currentTimeMillis
      yield* Effect.forEach(Array.from({ length: TOTAL }), () => effect, { concurrency: CONCURRENT, discard: true })
      return (TOTAL / ((yield* Clock.currentTimeMillis) - t0)) * 1000
    })
  const rows: Array<ReturnType<typeof summary> & { readonly name: string; readonly concurrent: number }> = []
  for (const [i, path] of paths.entries()) {
    rows.push({ name: path.name, ...summary(ms[i]!, wall[i]!), concurrent: yield* concurrent(path.call) })
  }

  const [a, undici, transport, b] = rows as [(typeof rows)[0], (typeof rows)[0], (typeof rows)[0], (typeof rows)[0]]
  const rssMb = process.memoryUsage().rss / 1024 / 1024
  const lines = [
    `LmStudioClient overhead — ${TOTAL} chat requests each way, zero-latency simulator in its own process, node ${process.version}`,
    "",
    "| path | p50 ms | p95 ms | p99 ms | sequential req/s | req/s at concurrency 8 | CPU ms per call (this process) |",
    "|---|---|---|---|---|---|---|",
    ...rows.map((r, i) =>
      `| ${r.name} | ${fmt(r.p50)} | ${fmt(r.p95)} | ${fmt(r.p99)} | ${fmt(r.throughput, 0)} | ${
        fmt(r.concurrent, 0)
      } | ${fmt(cpuPerCall[i]!)} |`
    ),
    "",
    `overhead p50 over raw HTTP: ${fmt(b.p50 - a.p50)} ms per call (ratio ${fmt(b.p50 / a.p50, 2)}x); p99: ${
      fmt(b.p99 - a.p99)
    } ms`,
    `  for comparison, the transport alone (NodeTransport.exchange): ${fmt(transport.p50 - a.p50)} ms over raw HTTP`,
    `  for comparison, the undici HttpClient alone: ${fmt(undici.p50 - a.p50)} ms over raw HTTP`,
    `CPU per call over raw HTTP: transport +${fmt(cpuPerCall[2]! - cpuPerCall[0]!)} ms, LmStudioClient +${
      fmt(cpuPerCall[3]! - cpuPerCall[0]!)
    } ms (undici +${fmt(cpuPerCall[1]! - cpuPerCall[0]!)} ms)`,
    `RSS after run: ${fmt(rssMb, 0)} MiB`,
    `target: client overhead p50 <= 0.2 ms — ${b.p50 - a.p50 <= 0.2 ? "met" : "NOT met"}`
  ]
  yield* Effect.sync(() => process.stdout.write(`${lines.join("\n")}\n`))
})

// Logs (if any) go to stderr, as in the product; stdout carries only the figures.
Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Logging.make("json", "warn")))).catch((e: unknown) => {
  process.stderr.write(`bench failed: ${String(e)}\n`)
  process.exitCode = 1
})
