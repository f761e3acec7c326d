/**
 * Deadlines (one watcher fiber for many timeouts) and retryLazily (Effect.retry without the up-front cost), with
 * time driven by TestClock.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, FastCheck as fc, Fiber, Option, Ref, Schedule, TestClock } from "effect"
import * as Deadlines from "../../src/resilience/Deadlines.js"
import { retryLazily } from "../../src/resilience/Policies.js"

class Aborted {
  readonly _tag = "Aborted"
}
class TimedOut {
  readonly _tag = "TimedOut"
}

/** Work that, like an HTTP request, fails with `Aborted` when its registered abort runs; else it never ends. */
const abortable = (aborted: Ref.Ref<number>) => (onAbort: Deadlines.OnAbort) =>
  Effect.flatMap(Deferred.make<never, Aborted>(), (gate) =>
    Effect.zipRight(
      Effect.sync(() =>
        onAbort(() => {
          Effect.runSync(Ref.update(aborted, (n) => n + 1))
          Deferred.unsafeDone(gate, Exit.fail(new Aborted()))
        })
      ),
      Deferred.await(gate)
    ))

const pending = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) => Effect.map(Fiber.poll(fiber), Option.isNone)

describe("Deadlines", () => {
  it.scoped("a call still running at its deadline is aborted and fails with its own timeout error", () =>
    Effect.gen(function*() {
      const deadlines = yield* Deadlines.make(100)
      const aborted = yield* Ref.make(0)
      const fiber = yield* Effect.fork(Effect.exit(deadlines.within(5_000, () => new TimedOut(), abortable(aborted))))
      yield* TestClock.adjust(Duration.millis(4_900))
      assert.isTrue(yield* pending(fiber))
      assert.strictEqual(yield* Ref.get(aborted), 0)
      yield* TestClock.adjust(Duration.millis(200))
      const exit = yield* Fiber.join(fiber)
      assert.deepStrictEqual(exit, Exit.fail(new TimedOut()))
      assert.strictEqual(yield* Ref.get(aborted), 1)
    }))

  it.scoped("a call that ends in time keeps its result, its error, and is never aborted", () =>
    Effect.gen(function*() {
      const deadlines = yield* Deadlines.make(100)
      const aborted = yield* Ref.make(0)
      const count = () => Effect.runSync(Ref.update(aborted, (n) => n + 1))
      const ok = deadlines.within(1_000, () => new TimedOut(), (onAbort) => {
        onAbort(count)
        return Effect.as(Effect.sleep(Duration.millis(300)), "done")
      })
      const okFiber = yield* Effect.fork(ok)
      yield* TestClock.adjust(Duration.millis(400))
      assert.strictEqual(yield* Fiber.join(okFiber), "done")
      const failed = yield* Effect.exit(
        deadlines.within(1_000, () => new TimedOut(), (onAbort) => {
          onAbort(count)
          return Effect.fail(new Aborted())
        })
      )
      assert.deepStrictEqual(failed, Exit.fail(new Aborted()))
      yield* TestClock.adjust(Duration.seconds(5))
      assert.strictEqual(yield* Ref.get(aborted), 0)
    }))

  it.scoped("an abort registered after the deadline passed runs at once", () =>
    Effect.gen(function*() {
      const deadlines = yield* Deadlines.make(100)
      const aborted = yield* Ref.make(0)
      // The work registers its abort only after 2 s; its deadline was 1 s.
      const late = (onAbort: Deadlines.OnAbort) =>
        Effect.zipRight(Effect.sleep(Duration.seconds(2)), abortable(aborted)(onAbort))
      const fiber = yield* Effect.fork(Effect.exit(deadlines.within(1_000, () => new TimedOut(), late)))
      yield* TestClock.adjust(Duration.millis(2_100))
      assert.deepStrictEqual(yield* Fiber.join(fiber), Exit.fail(new TimedOut()))
      assert.strictEqual(yield* Ref.get(aborted), 1)
    }))

  it.scoped("interrupting the caller interrupts the work at once; its deadline never fires afterwards", () =>
    Effect.gen(function*() {
      const deadlines = yield* Deadlines.make(100)
      const aborted = yield* Ref.make(0)
      const finalized = yield* Ref.make(false)
      const work = (onAbort: Deadlines.OnAbort) =>
        abortable(aborted)(onAbort).pipe(Effect.onInterrupt(() => Ref.set(finalized, true)))
      const fiber = yield* Effect.fork(deadlines.within(1_000, () => new TimedOut(), work))
      yield* TestClock.adjust(Duration.millis(10))
      yield* Fiber.interrupt(fiber)
      assert.isTrue(yield* Ref.get(finalized))
      yield* TestClock.adjust(Duration.seconds(5))
      assert.strictEqual(yield* Ref.get(aborted), 0)
    }))

  it.scoped.prop(
    "many overlapping calls: each times out exactly when its own deadline passes (to one tick)",
    { timeouts: fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 8 }) },
    ({ timeouts }) =>
      Effect.gen(function*() {
        const deadlines = yield* Deadlines.make(100)
        const aborted = yield* Ref.make(0)
        const fibers = yield* Effect.forEach(timeouts, (t) =>
          Effect.fork(Effect.exit(deadlines.within(t * 100, () => new TimedOut(), abortable(aborted)))))
        for (let step = 1; step <= 21; step++) {
          yield* TestClock.adjust(Duration.millis(100))
          for (const [i, t] of timeouts.entries()) {
            const stillRunning = yield* pending(fibers[i]!)
            assert.strictEqual(stillRunning, step < t, `call ${i} (timeout ${t * 100} ms) at ${step * 100} ms`)
          }
        }
        assert.strictEqual(yield* Ref.get(aborted), timeouts.length)
      }),
    { fastCheck: { numRuns: 10 } }
  )

  it.scoped("the watcher stops when idle and starts again for the next call", () =>
    Effect.gen(function*() {
      const deadlines = yield* Deadlines.make(100)
      const aborted = yield* Ref.make(0)
      yield* deadlines.within(1_000, () => new TimedOut(), () => Effect.void)
      yield* TestClock.adjust(Duration.seconds(10))
      const fiber = yield* Effect.fork(Effect.exit(deadlines.within(1_000, () => new TimedOut(), abortable(aborted))))
      yield* TestClock.adjust(Duration.millis(1_100))
      assert.deepStrictEqual(yield* Fiber.join(fiber), Exit.fail(new TimedOut()))
    }))
})

describe("retryLazily", () => {
  it.effect.prop(
    "runs the effect as often as Effect.retry would, with the same result",
    {
      failuresBeforeSuccess: fc.integer({ min: 0, max: 6 }),
      retries: fc.integer({ min: 0, max: 4 }),
      retryable: fc.boolean()
    },
    ({ failuresBeforeSuccess, retries, retryable }) =>
      Effect.gen(function*() {
        const run = (retry: (e: Effect.Effect<string, string>) => Effect.Effect<string, string>) =>
          Effect.gen(function*() {
            const calls = yield* Ref.make(0)
            const effect = Effect.flatMap(Ref.updateAndGet(calls, (n) => n + 1), (n) =>
              n > failuresBeforeSuccess ? Effect.succeed(`ok after ${n}`) : Effect.fail(`failure ${n}`))
            const exit = yield* Effect.exit(retry(effect))
            return { exit, calls: yield* Ref.get(calls) }
          })
        const schedule = Schedule.recurs(retries)
        const lazy = yield* run((e) =>
          retryLazily(e, schedule, () => retryable)
        )
        const eager = yield* run((e) => Effect.retry(e, { schedule, while: () => retryable }))
        assert.deepStrictEqual(lazy, eager)
      })
  )
})
