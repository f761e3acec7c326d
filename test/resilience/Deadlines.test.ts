/**
 * Deadlines (one watcher fiber for many timeouts) and retryLazily (Effect.retry without the up-front cost), with
 * time driven by TestClock.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, FastCheck as fc, Fiber, Option, Ref, Schedule, Scope, TestClock } from "effect"
import * as Deadlines from "../../src/resilience/Deadlines.js"
import { retryLazily } from "../../src/resilience/Policies.js"

class Aborted {
  readonly _tag = "Aborted"
}
class TimedOut {
  readonly _tag = "TimedOut"
}

/** Work that, like an HTTP request bound to its scope, ends with `Aborted` when the scope closes, else never. */
const abortable = (closed: Ref.Ref<number>) =>
  Effect.flatMap(Effect.scope, (scope) =>
    Effect.flatMap(Deferred.make<never, Aborted>(), (gate) =>
      Scope.addFinalizer(scope, Effect.zipRight(Ref.update(closed, (n) => n + 1), Deferred.fail(gate, new Aborted()))).pipe(
        Effect.zipRight(Deferred.await(gate))
      )
    )
  )

const pending = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) => Effect.map(Fiber.poll(fiber), Option.isNone)

describe("Deadlines", () => {
  it.scoped("a call still running at its deadline has its scope closed and fails with its own timeout error", () =>
    Effect.gen(function* () {
      const deadlines = yield* Deadlines.make(100)
      const closed = yield* Ref.make(0)
      const fiber = yield* Effect.fork(Effect.exit(deadlines.within(5_000, () => new TimedOut(), abortable(closed))))
      yield* TestClock.adjust(Duration.millis(4_900))
      assert.isTrue(yield* pending(fiber))
      assert.strictEqual(yield* Ref.get(closed), 0)
      yield* TestClock.adjust(Duration.millis(200))
      const exit = yield* Fiber.join(fiber)
      assert.deepStrictEqual(exit, Exit.fail(new TimedOut()))
      assert.strictEqual(yield* Ref.get(closed), 1)
    })
  )

  it.scoped("a call that ends in time keeps its result, its error, and is never aborted", () =>
    Effect.gen(function* () {
      const deadlines = yield* Deadlines.make(100)
      const closed = yield* Ref.make(0)
      const ok = deadlines.within(1_000, () => new TimedOut(), Effect.as(Effect.sleep(Duration.millis(300)), "done"))
      const okFiber = yield* Effect.fork(ok)
      yield* TestClock.adjust(Duration.millis(400))
      assert.strictEqual(yield* Fiber.join(okFiber), "done")
      const failed = yield* Effect.exit(deadlines.within(1_000, () => new TimedOut(), Effect.fail(new Aborted())))
      assert.deepStrictEqual(failed, Exit.fail(new Aborted()))
      yield* TestClock.adjust(Duration.seconds(5))
      assert.strictEqual(yield* Ref.get(closed), 0)
    })
  )

  it.scoped("interrupting the caller closes the scope (aborts the work) at once", () =>
    Effect.gen(function* () {
      const deadlines = yield* Deadlines.make(100)
      const closed = yield* Ref.make(0)
      const fiber = yield* Effect.fork(deadlines.within(60_000, () => new TimedOut(), abortable(closed)))
      yield* TestClock.adjust(Duration.millis(10))
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* Ref.get(closed), 1)
    })
  )

  it.scoped.prop(
    "many overlapping calls: each times out exactly when its own deadline passes (to one tick)",
    { timeouts: fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 8 }) },
    ({ timeouts }) =>
      Effect.gen(function* () {
        const deadlines = yield* Deadlines.make(100)
        const closed = yield* Ref.make(0)
        const fibers = yield* Effect.forEach(timeouts, (t) =>
          Effect.fork(Effect.exit(deadlines.within(t * 100, () => new TimedOut(), abortable(closed))))
        )
        for (let step = 1; step <= 21; step++) {
          yield* TestClock.adjust(Duration.millis(100))
          for (const [i, t] of timeouts.entries()) {
            const stillRunning = yield* pending(fibers[i]!)
            assert.strictEqual(stillRunning, step < t, `call ${i} (timeout ${t * 100} ms) at ${step * 100} ms`)
          }
        }
        assert.strictEqual(yield* Ref.get(closed), timeouts.length)
      }),
    { fastCheck: { numRuns: 10 } }
  )

  it.scoped("the watcher stops when idle and starts again for the next call", () =>
    Effect.gen(function* () {
      const deadlines = yield* Deadlines.make(100)
      const closed = yield* Ref.make(0)
      yield* deadlines.within(1_000, () => new TimedOut(), Effect.void)
      yield* TestClock.adjust(Duration.seconds(10))
      const fiber = yield* Effect.fork(Effect.exit(deadlines.within(1_000, () => new TimedOut(), abortable(closed))))
      yield* TestClock.adjust(Duration.millis(1_100))
      assert.deepStrictEqual(yield* Fiber.join(fiber), Exit.fail(new TimedOut()))
    })
  )
})

describe("retryLazily", () => {
  it.effect.prop(
    "runs the effect as often as Effect.retry would, with the same result",
    { failuresBeforeSuccess: fc.integer({ min: 0, max: 6 }), retries: fc.integer({ min: 0, max: 4 }), retryable: fc.boolean() },
    ({ failuresBeforeSuccess, retries, retryable }) =>
      Effect.gen(function* () {
        const run = (retry: (e: Effect.Effect<string, string>) => Effect.Effect<string, string>) =>
          Effect.gen(function* () {
            const calls = yield* Ref.make(0)
            const effect = Effect.flatMap(Ref.updateAndGet(calls, (n) => n + 1), (n) =>
              n > failuresBeforeSuccess ? Effect.succeed(`ok after ${n}`) : Effect.fail(`failure ${n}`)
            )
            const exit = yield* Effect.exit(retry(effect))
            return { exit, calls: yield* Ref.get(calls) }
          })
        const schedule = Schedule.recurs(retries)
        const lazy = yield* run((e) => retryLazily(e, schedule, () => retryable))
        const eager = yield* run((e) => Effect.retry(e, { schedule, while: () => retryable }))
        assert.deepStrictEqual(lazy, eager)
      })
  )
})
