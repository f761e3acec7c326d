/**
 * Admission control (DESIGN §6 "Concurrency"): per-model permits (LM Studio's `parallel` when known, else
 * LLM_PARALLEL_DEFAULT), a FIFO per model, one bounded queue across models (BridgeOverloaded past it), and
 * interruption that leaves the queue without taking or leaking a permit. Work is gated by Deferreds: no sleeps.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, FastCheck as fc, Fiber, Layer } from "effect"
import { AppConfig } from "../../src/Config.js"
import { Admission } from "../../src/lmstudio/Admission.js"

const admissionWith = (llmParallelDefault: number, llmQueueLimit: number) =>
  Effect.provide(
    Admission,
    Admission.Default.pipe(
      Layer.provide(AppConfig.layerFrom({ baseUrl: "http://127.0.0.1:1", llmParallelDefault, llmQueueLimit }))
    )
  )

/** Work that records how many run at once and finishes when its gate opens. */
const gatedWork = () =>
  Effect.gen(function*() {
    let running = 0
    let peak = 0
    const order: Array<number> = []
    const gates = new Map<number, Deferred.Deferred<void>>()
    const work = (id: number) =>
      Effect.gen(function*() {
        const gate = yield* Deferred.make<void>()
        gates.set(id, gate)
        running++
        peak = Math.max(peak, running)
        order.push(id)
        yield* Deferred.await(gate).pipe(Effect.ensuring(Effect.sync(() => running--)))
        return id
      })
    const open = (id: number) =>
      Effect.suspend(
        () => (gates.has(id) ? Deferred.succeed(gates.get(id)!, undefined) : Effect.fail("not started" as const))
      )
    return { work, open, started: () => [...order], peak: () => peak, running: () => running }
  })

/** Lets forked fibers run until they block. */
const settle = Effect.repeatN(Effect.yieldNow(), 50)

describe("Admission (per-model permits, bounded queue)", () => {
  it.effect("runs at most `parallel` requests of a model at once, the rest in arrival order; other models are independent", () =>
    Effect.gen(function*() {
      const admission = yield* admissionWith(4, 100)
      const g = yield* gatedWork()
      const fibers = yield* Effect.forEach([1, 2, 3, 4, 5], (id) => Effect.fork(admission.run("m", 2, g.work(id))))
      const other = yield* Effect.fork(admission.run("other", 2, g.work(9)))
      yield* settle
      assert.deepStrictEqual(g.started(), [1, 2, 9])
      assert.deepStrictEqual((yield* admission.stats).queued, 3)
      assert.deepStrictEqual((yield* admission.stats).inFlight, { m: 2, other: 1 })
      for (const id of [1, 2, 3, 4, 5]) {
        yield* g.open(id)
        yield* settle
      }
      yield* g.open(9)
      assert.deepStrictEqual(yield* Fiber.join(Fiber.all(fibers)), [1, 2, 3, 4, 5])
      assert.strictEqual(yield* Fiber.join(other), 9)
      assert.deepStrictEqual(g.started(), [1, 2, 9, 3, 4, 5])
      assert.strictEqual(g.peak(), 3)
      assert.deepStrictEqual(yield* admission.stats, { queued: 0, inFlight: {}, queueLimit: 100 })
    }))

  it.effect("without a known `parallel` the configured default applies", () =>
    Effect.gen(function*() {
      const admission = yield* admissionWith(3, 100)
      const g = yield* gatedWork()
      const fibers = yield* Effect.forEach([1, 2, 3, 4], (id) => Effect.fork(admission.run("m", undefined, g.work(id))))
      yield* settle
      assert.deepStrictEqual(g.started(), [1, 2, 3])
      for (const id of [1, 2, 3, 4]) yield* Effect.zipRight(g.open(id), settle)
      assert.deepStrictEqual(yield* Fiber.join(Fiber.all(fibers)), [1, 2, 3, 4])
    }))

  it.effect("past the queue limit a request fails at once with BridgeOverloaded, naming the queue and a retry hint", () =>
    Effect.gen(function*() {
      const admission = yield* admissionWith(1, 2)
      const g = yield* gatedWork()
      const fibers = yield* Effect.forEach([1, 2, 3], (id) => Effect.fork(admission.run("m", undefined, g.work(id))))
      yield* settle
      // A model with a free permit is still served; one that would have to wait is refused.
      assert.strictEqual(yield* admission.run("another-model", undefined, Effect.succeed("served")), "served")
      const refused = yield* Effect.flip(admission.run("m", undefined, g.work(4)))
      assert.strictEqual(refused._tag, "BridgeOverloaded")
      if (refused._tag === "BridgeOverloaded") {
        assert.strictEqual(refused.queued, 2)
        assert.strictEqual(refused.limit, 2)
        assert.isAtLeast(refused.retryAfterSeconds, 1)
        assert.include(refused.message, "2 requests are queued (limit 2)")
        assert.include(refused.hint, "Retry in about")
      }
      assert.notInclude(g.started(), 4)
      for (const id of [1, 2, 3]) yield* Effect.zipRight(g.open(id), settle)
      assert.deepStrictEqual(yield* Fiber.join(Fiber.all(fibers)), [1, 2, 3])
    }))

  it.effect("a waiter interrupted in the queue leaves it and takes no permit; a holder interrupted frees its permit", () =>
    Effect.gen(function*() {
      const admission = yield* admissionWith(1, 10)
      const g = yield* gatedWork()
      const first = yield* Effect.fork(admission.run("m", undefined, g.work(1)))
      const second = yield* Effect.fork(admission.run("m", undefined, g.work(2)))
      const third = yield* Effect.fork(admission.run("m", undefined, g.work(3)))
      yield* settle
      assert.strictEqual((yield* admission.stats).queued, 2)
      yield* Fiber.interrupt(second)
      assert.strictEqual((yield* admission.stats).queued, 1)
      // The holder is interrupted: its permit goes to the next live waiter (3), never to the interrupted one (2).
      yield* Fiber.interrupt(first)
      yield* settle
      assert.deepStrictEqual(g.started(), [1, 3])
      yield* g.open(3)
      assert.strictEqual(yield* Fiber.join(third), 3)
      assert.deepStrictEqual(yield* admission.stats, { queued: 0, inFlight: {}, queueLimit: 10 })
      // Nothing leaked: the single permit is free again.
      assert.strictEqual(yield* admission.run("m", undefined, Effect.succeed("free")), "free")
    }))

  it.effect.prop(
    "any mix of arrivals, completions and interruptions: never more than the permits at once, nothing leaked",
    [
      fc.integer({ min: 1, max: 3 }),
      fc.array(fc.tuple(fc.constantFrom("arrive", "finish", "interrupt"), fc.nat(20)), { minLength: 1, maxLength: 40 })
    ],
    ([permits, steps]) =>
      Effect.gen(function*() {
        const admission = yield* admissionWith(permits, 1000)
        const g = yield* gatedWork()
        const fibers: Array<Fiber.RuntimeFiber<number, unknown>> = []
        for (const [what, n] of steps) {
          if (what === "arrive") fibers.push(yield* Effect.fork(admission.run("m", undefined, g.work(fibers.length))))
          else if (fibers.length > 0) {
            const i = n % fibers.length
            if (what === "finish") yield* Effect.ignore(g.open(i))
            else yield* Fiber.interrupt(fibers[i]!)
          }
          yield* settle
          assert.isAtMost(g.running(), permits)
          assert.strictEqual(g.running(), Object.values((yield* admission.stats).inFlight).reduce((a, b) => a + b, 0))
        }
        // Finish everything still running or waiting.
        for (let round = 0; round < fibers.length; round++) {
          for (let i = 0; i < fibers.length; i++) yield* Effect.ignore(g.open(i))
          yield* settle
        }
        for (const f of fibers) {
          const exit = yield* Fiber.await(f)
          assert.isTrue(Exit.isSuccess(exit) || Exit.isInterrupted(exit))
        }
        assert.deepStrictEqual(yield* admission.stats, { queued: 0, inFlight: {}, queueLimit: 1000 })
        assert.isAtMost(g.peak(), permits)
      }),
    { fastCheck: { numRuns: 60 } }
  )
})
