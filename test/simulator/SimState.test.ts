/** The simulator's state machine: idle TTL driven by TestClock, identifiers, resolution order. */
import { assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, FastCheck as fc, Layer, TestClock } from "effect"
import { defaultCatalog } from "../../src/simulator/Catalog.js"
import { initialData, load, nextIdentifier, resolve, SimState } from "../../src/simulator/SimState.js"

const state = (options: Parameters<typeof SimState.layer>[0]) =>
  Effect.map(Layer.build(SimState.layer(options)), Context.get(SimState))

describe("SimState", () => {
  it.scoped("unloads an idle instance once its TTL has passed, and never one that is working", () =>
    Effect.gen(function*() {
      const sim = yield* state({ loaded: [] })
      yield* sim.load({ model: "google/gemma-3-1b", ttlMs: 60_000 })
      yield* sim.load({ model: "qwen/qwen3-4b", ttlMs: 60_000 })
      yield* sim.acquireInstance("qwen/qwen3-4b")
      yield* TestClock.adjust(Duration.seconds(59))
      assert.strictEqual((yield* sim.get).instances.length, 2)
      yield* TestClock.adjust(Duration.seconds(2))
      assert.deepStrictEqual((yield* sim.get).instances.map((i) => i.identifier), ["qwen/qwen3-4b"])
      // Released now: its idle time starts from this use.
      yield* sim.releaseInstance("qwen/qwen3-4b")
      yield* TestClock.adjust(Duration.seconds(30))
      assert.strictEqual((yield* sim.get).instances.length, 1)
      yield* TestClock.adjust(Duration.seconds(31))
      assert.strictEqual((yield* sim.get).instances.length, 0)
    }))

  it.scoped("a model loaded without TTL stays loaded", () =>
    Effect.gen(function*() {
      const sim = yield* state({})
      yield* TestClock.adjust(Duration.minutes(10))
      assert.deepStrictEqual((yield* sim.get).instances.map((i) => i.identifier), ["qwen/qwen3-4b"])
    }))

  it.effect.prop(
    "identifiers are unique: loading one key n times gives key, key:2 … key:n",
    { n: fc.integer({ min: 1, max: 12 }) },
    ({ n }) =>
      Effect.sync(() => {
        let data = initialData({ loaded: [] }, 0)
        for (let i = 0; i < n; i++) data = load(data, { model: "google/gemma-3-1b" }, 0)[1]
        const ids = data.instances.map((i) => i.identifier)
        return new Set(ids).size === n && ids[0] === "google/gemma-3-1b" &&
          (n === 1 || ids[n - 1] === `google/gemma-3-1b:${n}`)
      })
  )

  it("an identifier already in use is refused", () => {
    const data = initialData({ loaded: ["qwen/qwen3-4b"] }, 0)
    assert.strictEqual(nextIdentifier(data.instances, "qwen/qwen3-4b", "qwen/qwen3-4b"), null)
    assert.strictEqual(
      load(data, { model: "google/gemma-3-1b", identifier: "qwen/qwen3-4b" }, 0)[0]._tag,
      "IdentifierTaken"
    )
  })

  it("resolution order: exact identifier, then key, then JIT, then the single-loaded fallback", () => {
    const base = initialData({ loaded: ["qwen/qwen3-4b"] }, 0)
    const [exact] = resolve(base, "qwen/qwen3-4b", undefined, 0)
    assert.strictEqual(exact._tag === "Instance" && exact.instance.identifier, "qwen/qwen3-4b")
    const [jit, afterJit] = resolve(base, "gemma-3-1b", 30, 0)
    assert.isTrue(jit._tag === "Instance" && jit.jitLoaded && jit.instance.ttlMs === 30_000)
    assert.strictEqual(afterJit.instances.length, 2)
    const [fallback] = resolve(base, "unknown/model", undefined, 0)
    assert.strictEqual(fallback._tag === "Instance" && fallback.instance.identifier, "qwen/qwen3-4b")
    assert.strictEqual(defaultCatalog.length, 5)
  })
})
