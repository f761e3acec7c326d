/**
 * ModelCatalog against the simulator (real HTTP) and the lms shim: sources in order, validation before I/O, the
 * cache, one refresh on a miss, one refresh in flight for many callers, default resolution.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Option } from "effect"
import { AppConfig, type AppConfigShape } from "../../src/Config.js"
import { ModelCatalog } from "../../src/lmstudio/ModelCatalog.js"
import * as NodeTransport from "../../src/lmstudio/transport/NodeTransport.js"
import { modelFromKey } from "../../src/simulator/Catalog.js"
import { type SimulatorOptions, start } from "../../src/simulator/Simulator.js"
import { lmsShimPath } from "../helpers.js"

const catalogFor = (config: Partial<AppConfigShape> & Pick<AppConfigShape, "baseUrl">) =>
  Layer.build(
    ModelCatalog.Default.pipe(
      Layer.provide(
        Layer.mergeAll(NodeTransport.layer, NodeContext.layer).pipe(Layer.provideMerge(AppConfig.layerFrom(config)))
      )
    )
  ).pipe(Effect.map(Context.get(ModelCatalog)))

const setup = (options: SimulatorOptions = {}, config: Partial<AppConfigShape> = {}) =>
  Effect.gen(function*() {
    const sim = yield* start(options)
    const catalog = yield* catalogFor({ baseUrl: sim.baseUrl, lmsCliPath: Option.none(), ...config })
    // Model listings fetched by the catalog: the client's one-time API detection probes both list routes once.
    const listings = Effect.map(sim.state.get, (d) =>
      Math.max(0, (d.counters.byPath["/api/v1/models"] ?? 0) + (d.counters.byPath["/api/v0/models"] ?? 0) - 2))
    return { sim, catalog, listings }
  })

const failure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") {
    throw new Error(`expected a typed failure, got ${String(exit)}`)
  }
  return exit.cause.error
}

describe("ModelCatalog", () => {
  it.scopedLive("finds models by key, instance identifier, variant and key without publisher", () =>
    Effect.gen(function*() {
      const { sim, catalog } = yield* setup({ loaded: ["qwen/qwen3-4b"] })
      yield* sim.state.load({ model: "qwen/qwen3-4b" })
      yield* catalog.invalidate
      assert.strictEqual((yield* catalog.find("qwen/qwen3-4b")).model.key, "qwen/qwen3-4b")
      const second = yield* catalog.find("qwen/qwen3-4b:2")
      assert.strictEqual(second.instance?.id, "qwen/qwen3-4b:2")
      assert.strictEqual((yield* catalog.find("google/gemma-3-1b@q4_k_m")).model.key, "google/gemma-3-1b")
      assert.strictEqual((yield* catalog.find("gemma-3-1b")).model.key, "google/gemma-3-1b")
      assert.strictEqual((yield* catalog.snapshot).source, "v1")
    }))

  it.scopedLive("a bad name is rejected before any request", () =>
    Effect.gen(function*() {
      const { sim, catalog } = yield* setup()
      for (const name of ["../../etc/passwd", "--help", "", "x".repeat(10_000), "   "]) {
        assert.strictEqual(failure(yield* Effect.exit(catalog.find(name)))._tag, "InvalidModelName")
      }
      assert.strictEqual((yield* sim.state.get).counters.requests, 0)
    }))

  it.scopedLive("an unknown model is ModelNotFound with the list and the closest names, after one refresh", () =>
    Effect.gen(function*() {
      const { catalog, listings } = yield* setup()
      yield* catalog.snapshot
      assert.strictEqual(yield* listings, 1)
      const e = failure(yield* Effect.exit(catalog.find("qwen/qwen3-4")))
      assert.strictEqual(e._tag, "ModelNotFound")
      if (e._tag === "ModelNotFound") {
        assert.include(e.available, "google/gemma-3-1b")
        assert.strictEqual(e.suggestions[0], "qwen/qwen3-4b")
      }
      assert.strictEqual(yield* listings, 2)
    }))

  it.scopedLive("serves hits from the cache and finds a just-downloaded model by refreshing on the miss", () =>
    Effect.gen(function*() {
      const { sim, catalog, listings } = yield* setup()
      for (let i = 0; i < 20; i++) yield* catalog.find("qwen/qwen3-4b")
      assert.strictEqual(yield* listings, 1)
      yield* sim.state.update((d) => ({ ...d, models: [...d.models, modelFromKey("acme/new-model-7b")] }))
      assert.strictEqual((yield* catalog.find("acme/new-model-7b")).model.key, "acme/new-model-7b")
      assert.strictEqual(yield* listings, 2)
    }))

  it.scopedLive("many concurrent misses share one refresh", () =>
    Effect.gen(function*() {
      const { catalog, listings } = yield* setup()
      const exits = yield* Effect.all(
        Array.from({ length: 50 }, () => Effect.exit(catalog.find("nope/unknown"))),
        { concurrency: "unbounded" }
      )
      assert.isTrue(exits.every((e) => Exit.isFailure(e)))
      assert.strictEqual(yield* listings, 1)
    }))

  it.scopedLive("with a zero cache TTL every lookup lists again", () =>
    Effect.gen(function*() {
      const { catalog, listings } = yield* setup({}, { modelCacheTtlSeconds: 0 })
      yield* catalog.find("qwen/qwen3-4b")
      yield* catalog.find("qwen/qwen3-4b")
      assert.strictEqual(yield* listings, 2)
    }))

  it.scopedLive("falls back to v0, then to lms ls/ps, then to the OpenAI id list", () =>
    Effect.gen(function*() {
      const v0 = yield* setup({ settings: { v1: false } })
      assert.strictEqual((yield* v0.catalog.snapshot).source, "v0")
      const viaLms = yield* setup({ settings: { v1: false, v0: false } }, { lmsCliPath: Option.some(lmsShimPath) })
      const snapshot = yield* viaLms.catalog.snapshot
      assert.strictEqual(snapshot.source, "lms")
      assert.deepStrictEqual(snapshot.models.find((m) => m.key === "qwen/qwen3-4b")?.loaded.map((i) => i.id), [
        "qwen/qwen3-4b"
      ])
      const bare = yield* setup({ settings: { v1: false, v0: false } })
      const ids = yield* bare.catalog.snapshot
      assert.strictEqual(ids.source, "openai")
      assert.include(ids.models.map((m) => m.key), "openai/gpt-oss-20b")
    }))

  it.scopedLive("resolves 'default' and absent to DEFAULT_MODEL, else the loaded LLM, else NoModelLoaded", () =>
    Effect.gen(function*() {
      const withDefault = yield* setup({}, { defaultModel: Option.some("google/gemma-3-1b") })
      assert.strictEqual((yield* withDefault.catalog.resolve("default")).model.key, "google/gemma-3-1b")
      assert.strictEqual((yield* withDefault.catalog.resolve(undefined)).model.key, "google/gemma-3-1b")
      const loaded = yield* setup({ loaded: ["text-embedding-nomic-embed-text-v1.5", "openai/gpt-oss-20b"] })
      const found = yield* loaded.catalog.resolve(undefined)
      assert.strictEqual(found.instance?.id, "openai/gpt-oss-20b")
      const empty = yield* setup({ loaded: [] })
      assert.strictEqual(failure(yield* Effect.exit(empty.catalog.resolve(undefined)))._tag, "NoModelLoaded")
      const named = failure(yield* Effect.exit(empty.catalog.resolve("--ttl")))
      assert.strictEqual(named._tag, "InvalidModelName")
    }))
})
