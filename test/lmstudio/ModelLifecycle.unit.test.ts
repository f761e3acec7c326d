/**
 * Leases under TestClock, with in-memory stand-ins for the catalog, the HTTP client and the lms CLI (a unit test:
 * the integration tests of ModelLifecycle run against the simulator). Property: for any TTL, a lease idle for the
 * TTL unloads a model the bridge loaded, and never a model someone else loaded; before the TTL nothing happens.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, Exit, FastCheck as fc, Fiber, Layer, Option } from "effect"
import { TestClock } from "effect"
import { AppConfig } from "../../src/Config.js"
import { ModelNotFound } from "../../src/domain/Errors.js"
import { modelInfoFromId } from "../../src/lmstudio/client/Mapping.js"
import type { LoadedInstance, ModelInfo } from "../../src/lmstudio/client/Shapes.js"
import { LmsCli } from "../../src/lmstudio/LmsCli.js"
import { LmStudioClient } from "../../src/lmstudio/LmStudioClient.js"
import { ModelCatalog } from "../../src/lmstudio/ModelCatalog.js"
import { ModelLifecycle } from "../../src/lmstudio/ModelLifecycle.js"

/**
 * A stand-in service from the methods a test needs; any other member dies loudly when used (the partial-test-double
 * pattern of Effect's examples).
 */
const partial = <S extends object>(impl: Partial<S>): S =>
  new Proxy(impl, {
    get: (
      target,
      prop
    ) => (prop in target ? target[prop as keyof typeof target] : Effect.die(`stub: ${String(prop)} is not implemented`))
  }) as S

const info = (key: string, loaded: ReadonlyArray<LoadedInstance>): ModelInfo => ({
  ...modelInfoFromId(key),
  type: "llm",
  maxContextLength: 8192,
  toolUse: true,
  vision: false,
  loaded,
  source: "v1"
})

/** A tiny LM Studio in memory: downloaded keys and loaded identifiers; loads go through REST v1 (`stuck` never finish). */
const world = (
  downloaded: ReadonlyArray<string>,
  preloaded: ReadonlyArray<string>,
  stuck: ReadonlyArray<string> = []
) => {
  const loaded = new Set(preloaded)
  const unloads: Array<string> = []
  const models = () =>
    downloaded.map((k) => info(k, loaded.has(k) ? [{ id: k, contextLength: 4096, parallel: 1 }] : []))
  const find = (name: string) => {
    const model = models().find((m) => m.key === name)
    return model
      ? Effect.succeed({ model, instance: model.loaded[0], seenAt: 0 })
      : Effect.fail(new ModelNotFound({ model: name, available: downloaded, suggestions: [] }))
  }
  let generation = 0
  const listed = () => models().flatMap((model) => model.loaded.map((instance) => ({ model, instance })))
  const catalog = ModelCatalog.make({
    snapshot: Effect.sync(() => ({ models: models(), source: "v1" as const, fetchedAt: 0 })),
    find,
    resolve: (name) => find(name ?? downloaded[0]!),
    invalidate: Effect.void,
    // Every listing is a new generation, as in the real catalog.
    loadedNow: Effect.sync(() => {
      generation++
      return listed()
    }),
    currentGeneration: Effect.sync(() => generation),
    loadedSince: () =>
      Effect.sync(() => {
        generation++
        return { instances: listed(), seenAt: 0 }
      })
  })
  type Client = Parameters<typeof LmStudioClient.make>[0]
  const client = LmStudioClient.make(
    partial<Client>({
      apis: Effect.succeed({ openai: true, v0: true, v1: true, responses: true }),
      loadModel: (req) =>
        stuck.includes(req.model)
          ? Effect.never
          : Effect.sync(() => {
            loaded.add(req.model)
            return { instanceId: req.model, type: "llm", loadTimeSeconds: 0, status: "loaded" }
          }),
      unloadModel: (id) =>
        Effect.sync(() => {
          unloads.push(id)
          loaded.delete(id)
          return id
        })
    })
  )
  return { catalog, client, loaded, unloads }
}

/** The lifecycle over the in-memory world, living as long as the test's scope (its leases with it). */
const lifecycleWith = (w: ReturnType<typeof world>) =>
  Layer.build(
    ModelLifecycle.DefaultWithoutDependencies.pipe(
      Layer.provide(
        Layer.mergeAll(
          Layer.succeed(ModelCatalog, w.catalog),
          Layer.succeed(LmStudioClient, w.client),
          Layer.succeed(
            LmsCli,
            LmsCli.make(partial<Parameters<typeof LmsCli.make>[0]>({ available: false, path: Option.none() }))
          ),
          AppConfig.layerFrom({
            baseUrl: "http://memory",
            lifecycle: "rest",
            verifyInterval: Duration.millis(1),
            verifyAttempts: 2
          })
        )
      )
    )
  ).pipe(Effect.map(Context.get(ModelLifecycle)))

describe("ModelLifecycle leases (TestClock)", () => {
  it.scoped.prop(
    "an idle lease unloads an owned model after exactly its TTL, and never a foreign one",
    { ttl: fc.integer({ min: 1, max: 3600 }) },
    ({ ttl }) =>
      Effect.gen(function*() {
        const w = world(["mine/model", "their/model"], ["their/model"])
        const lifecycle = yield* lifecycleWith(w)
        const mine = yield* lifecycle.ensureLoaded({ model: "mine/model", ttlSeconds: ttl })
        const theirs = yield* lifecycle.ensureLoaded({ model: "their/model", ttlSeconds: ttl })
        assert.isFalse(mine.alreadyLoaded)
        assert.isTrue(theirs.alreadyLoaded)
        yield* TestClock.adjust(Duration.millis(ttl * 1000 - 1))
        assert.deepStrictEqual(w.unloads, [])
        yield* TestClock.adjust(Duration.millis(2))
        assert.deepStrictEqual(w.unloads, ["mine/model"])
        assert.isTrue(w.loaded.has("their/model"))
      }),
    { fastCheck: { numRuns: 40 } }
  )

  it.scoped("a lease in use is never released, however long the work runs", () =>
    Effect.gen(function*() {
      const w = world(["mine/model"], [])
      const lifecycle = yield* lifecycleWith(w)
      const fiber = yield* Effect.fork(
        lifecycle.withModel({ model: "mine/model", ttlSeconds: 10 }, () => Effect.sleep(Duration.hours(3)))
      )
      yield* TestClock.adjust(Duration.hours(2))
      assert.deepStrictEqual(w.unloads, [])
      yield* TestClock.adjust(Duration.hours(1))
      const exit = yield* fiber.await
      assert.isTrue(Exit.isSuccess(exit))
      yield* TestClock.adjust(Duration.seconds(10))
      assert.deepStrictEqual(w.unloads, ["mine/model"])
    }))

  it.scoped("a load that hangs for one model does not block another model, and can be cancelled", () =>
    Effect.gen(function*() {
      const w = world(["slow/model", "fast/model"], [], ["slow/model"])
      const lifecycle = yield* lifecycleWith(w)
      const slow = yield* Effect.fork(lifecycle.ensureLoaded({ model: "slow/model" }))
      const fast = yield* lifecycle.ensureLoaded({ model: "fast/model" })
      assert.strictEqual(fast.identifier, "fast/model")
      assert.isNull(yield* slow.poll.pipe(Effect.map(Option.getOrNull)))
      // And the stuck one can be cancelled: interruption reaches the load.
      const exit = yield* Fiber.interrupt(slow)
      assert.isTrue(Exit.isInterrupted(exit))
    }))
})
