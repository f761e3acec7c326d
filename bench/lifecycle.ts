/**
 * Model lifecycle benchmark (`npm run bench`): cached model validation per call, the per-request lease (`withModel`,
 * no I/O), warm ensureLoaded of a verified model (one fresh listing, by design), cold ensureLoaded overhead beyond
 * the simulator's load time, and 1,000 concurrent ensureLoaded of one model.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Clock, Context, Effect, Layer, Option } from "effect"
import { AppConfig } from "../src/Config.js"
import { ModelCatalog } from "../src/lmstudio/ModelCatalog.js"
import { ModelLifecycle } from "../src/lmstudio/ModelLifecycle.js"
import * as NodeTransport from "../src/lmstudio/transport/NodeTransport.js"
import * as Logging from "../src/observability/Logging.js"
import { modelFromKey } from "../src/simulator/Catalog.js"
import { start } from "../src/simulator/Simulator.js"

const services = (baseUrl: string) =>
  Layer.build(
    Layer.mergeAll(ModelLifecycle.Default, ModelCatalog.Default).pipe(
      Layer.provide(
        Layer.mergeAll(NodeTransport.layer, NodeContext.layer).pipe(
          Layer.provideMerge(AppConfig.layerFrom({ baseUrl, lifecycle: "jit", lmsCliPath: Option.none() }))
        )
      )
    )
  ).pipe(
    Effect.map((ctx) => ({ catalog: Context.get(ctx, ModelCatalog), lifecycle: Context.get(ctx, ModelLifecycle) }))
  )

const nowNs = Effect.map(Clock.currentTimeNanos, (n) => Number(n))

/** Mean µs per call over `n` sequential calls (after a warm-up). */
const perCall = <A, E>(n: number, effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    yield* Effect.repeatN(effect, Math.min(1000, n) - 1)
    const t0 = yield* nowNs
    yield* Effect.repeatN(effect, n - 1)
    return ((yield* nowNs) - t0) / n / 1000
  })

const percentile = (xs: ReadonlyArray<number>, p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!

const program = Effect.gen(function*() {
  const COLD = 30
  const keys = Array.from({ length: COLD }, (_, i) => `bench/cold-model-${i}`)
  const sim = yield* start({
    loaded: ["qwen/qwen3-4b"],
    models: [modelFromKey("qwen/qwen3-4b"), ...keys.map(modelFromKey)]
  })
  const { catalog, lifecycle } = yield* services(sim.baseUrl)

  // 1. Cached validation: name checks + catalog lookup on a warm cache.
  yield* catalog.find("qwen/qwen3-4b")
  const validationUs = yield* perCall(200_000, catalog.find("qwen/qwen3-4b"))
  const harnessUs = yield* perCall(200_000, Effect.void)

  // 2. What every inference call pays: the model's lease held around a request (cached listing, no I/O).
  const held = lifecycle.withModel({ model: "qwen/qwen3-4b" }, (h) => h.request((m) => Effect.succeed(m.identifier)))
  yield* held
  const withModelUs = yield* perCall(200_000, held)

  // 3. Warm ensureLoaded of a verified model: it confirms against a fresh listing (one GET /api/v1/models), so it
  // costs about one listing request; the raw listing request is measured next to it.
  yield* lifecycle.ensureLoaded({ model: "qwen/qwen3-4b" })
  const warmUs = yield* perCall(5_000, lifecycle.ensureLoaded({ model: "qwen/qwen3-4b" }))
  const listingUs = yield* perCall(
    5_000,
    Effect.promise(() => fetch(`${sim.baseUrl}/api/v1/models`).then((r) => r.text()))
  )

  // 4. Cold ensureLoaded: each model loaded once (JIT), against the raw time of the same load request.
  const coldMs: Array<number> = []
  const rawMs: Array<number> = []
  for (const [i, key] of keys.entries()) {
    const t0 = yield* nowNs
    if (i % 2 === 0) {
      yield* lifecycle.ensureLoaded({ model: key })
      coldMs.push(((yield* nowNs) - t0) / 1e6)
    } else {
      yield* Effect.promise(() =>
        fetch(`${sim.baseUrl}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: key, messages: [{ role: "user", content: "." }], max_tokens: 1, ttl: 300 })
        }).then((r) => r.text())
      )
      rawMs.push(((yield* nowNs) - t0) / 1e6)
    }
  }

  // 5. 1,000 concurrent ensureLoaded of one model not yet loaded.
  const loadsBefore = (yield* sim.state.get).counters.byPath["/v1/chat/completions"] ?? 0
  const c0 = yield* nowNs
  yield* Effect.all(
    Array.from({ length: 1000 }, () => lifecycle.ensureLoaded({ model: "qwen/qwen3-4b", ttlSeconds: 900 })),
    { concurrency: "unbounded", discard: true }
  )
  const concurrentMs = ((yield* nowNs) - c0) / 1e6
  yield* sim.state.unload("qwen/qwen3-4b")
  const stormKey = keys[0]!
  yield* sim.state.unload(stormKey)
  const s0 = yield* nowNs
  yield* Effect.all(
    Array.from({ length: 1000 }, () => lifecycle.ensureLoaded({ model: stormKey, ttlSeconds: 1200 })),
    { concurrency: "unbounded", discard: true }
  )
  const stormMs = ((yield* nowNs) - s0) / 1e6
  const loads = ((yield* sim.state.get).counters.byPath["/v1/chat/completions"] ?? 0) - loadsBefore

  const cold50 = percentile(coldMs, 50)
  const raw50 = percentile(rawMs, 50)
  const lines = [
    `Model lifecycle — zero-latency simulator, JIT backend, node ${process.version}`,
    "",
    "| measure | result | target |",
    "|---|---|---|",
    `| cached validation (catalog.find, warm cache) | ${
      validationUs.toFixed(2)
    } µs per call (of which the measuring loop ${harnessUs.toFixed(2)} µs) | <= 2 µs |`,
    `| the lease around one request (withModel, warm, no I/O) | ${withModelUs.toFixed(2)} µs per call | — |`,
    `| warm ensureLoaded of a verified model (confirms with one fresh listing) | ${
      warmUs.toFixed(1)
    } µs per call; the listing request alone (fetch) ${listingUs.toFixed(1)} µs | <= 1 ms |`,
    `| cold ensureLoaded (p50 of ${coldMs.length}) | ${cold50.toFixed(2)} ms; the load request alone ${
      raw50.toFixed(2)
    } ms; overhead ${(cold50 - raw50).toFixed(2)} ms | overhead <= 50 ms |`,
    `| 1,000 concurrent ensureLoaded, model loaded | ${concurrentMs.toFixed(1)} ms in all | — |`,
    `| 1,000 concurrent ensureLoaded, model not loaded | ${
      stormMs.toFixed(1)
    } ms in all, ${loads} load request(s) | one load |`
  ]
  yield* Effect.sync(() => process.stdout.write(`${lines.join("\n")}\n`))
})

// Logs (if any) go to stderr, as in the product; stdout carries only the figures.
Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Logging.make("json", "warn")))).catch((e: unknown) => {
  process.stderr.write(`bench failed: ${String(e)}\n`)
  process.exitCode = 1
})
