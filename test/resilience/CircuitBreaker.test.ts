/**
 * The breaker against a small reference model, for any sequence of call outcomes and clock moves (TestClock), plus
 * the named behaviours one by one.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, FastCheck as fc, Fiber, TestClock } from "effect"
import * as CircuitBreaker from "../../src/resilience/CircuitBreaker.js"

/** The reference: written from the spec in plain mutable code, independent of the implementation's transitions. */
class Reference {
  private failures = 0
  private openedAt: number | null = null
  private halfOpen = false
  /** How long the breaker stays open the next (or current) time. */
  private openFor: number
  constructor(
    private readonly threshold: number,
    private readonly firstOpenMs: number,
    private readonly maxOpenMs: number
  ) {
    this.openFor = firstOpenMs
  }
  /** Returns whether the call was let through, and applies its outcome. */
  call(now: number, outcome: "success" | "failure" | "ignored"): boolean {
    if (this.openedAt !== null) {
      if (now < this.openedAt + this.openFor) return false
      this.openedAt = null
      this.halfOpen = true
    }
    if (this.halfOpen) {
      this.halfOpen = false
      if (outcome === "failure") {
        this.openedAt = now
        this.openFor = Math.min(this.maxOpenMs, this.openFor * 2)
      } else {
        this.failures = 0
        this.openFor = this.firstOpenMs
      }
      return true
    }
    if (outcome === "failure") {
      this.failures++
      if (this.failures >= this.threshold) {
        this.openedAt = now
        this.failures = 0
        this.openFor = this.firstOpenMs
      }
    } else this.failures = 0
    return true
  }
}

class Boom {
  readonly _tag = "Boom"
}
class Benign {
  readonly _tag = "Benign"
}

const failWith = (e: Boom | Benign): Effect.Effect<never, Boom | Benign> => Effect.fail(e)

const Step = fc.oneof(
  fc.record({
    kind: fc.constant("call" as const),
    outcome: fc.constantFrom("success" as const, "failure" as const, "ignored" as const)
  }),
  fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 90_000 }) }),
  fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 6_000 }) })
)

describe("CircuitBreaker", () => {
  it.effect.prop(
    "matches the reference model for any sequence of outcomes and clock moves",
    { steps: fc.array(Step, { maxLength: 60 }) },
    ({ steps }) =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make("dep", { failureThreshold: 5, openMs: 5_000, maxOpenMs: 60_000 })
        const reference = new Reference(5, 5_000, 60_000)
        let now = 0
        for (const step of steps) {
          if (step.kind === "advance") {
            now += step.ms
            yield* TestClock.adjust(Duration.millis(step.ms))
            continue
          }
          let ran = false
          const effect = Effect.suspend(() => {
            ran = true
            return step.outcome === "success"
              ? Effect.void
              : Effect.fail(step.outcome === "failure" ? new Boom() : new Benign())
          })
          const exit = yield* Effect.exit(breaker.protect(effect, (e) => e._tag === "Boom"))
          const expected = reference.call(now, step.outcome)
          assert.strictEqual(ran, expected)
          if (!expected) {
            assert.isTrue(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag === "CircuitOpen")
          }
        }
      }),
    { fastCheck: { numRuns: 150 } }
  )

  it.effect("opens after 5 consecutive failures for 5 s, then doubles the open time on every failed probe up to 60 s", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make("LM Studio")
      for (let i = 0; i < 5; i++) yield* Effect.exit(breaker.protect(Effect.fail(new Boom())))
      const open = yield* Effect.flip(breaker.protect(Effect.succeed(1)))
      assert.strictEqual(open._tag, "CircuitOpen")
      if (open._tag === "CircuitOpen") {
        assert.strictEqual(open.dependency, "LM Studio")
        assert.strictEqual(open.retryAfterSeconds, 5)
      }
      assert.deepStrictEqual(yield* breaker.snapshot, {
        dependency: "LM Studio",
        state: "open",
        consecutiveFailures: 5,
        retryAfterSeconds: 5,
        openSeconds: 5
      })
      // Every failed probe doubles the wait: 10, 20, 40, then 60 s at most.
      for (const wait of [10, 20, 40, 60, 60]) {
        yield* TestClock.adjust(Duration.seconds((yield* breaker.snapshot).retryAfterSeconds))
        yield* Effect.exit(breaker.protect(Effect.fail(new Boom())))
        const s = yield* breaker.snapshot
        assert.deepStrictEqual([s.state, s.retryAfterSeconds, s.openSeconds], ["open", wait, wait])
      }
      yield* TestClock.adjust(Duration.seconds(45))
      const later = yield* Effect.flip(breaker.protect(Effect.succeed(1)))
      assert.strictEqual(later._tag === "CircuitOpen" ? later.retryAfterSeconds : 0, 15)
      yield* TestClock.adjust(Duration.seconds(15))
      assert.strictEqual(yield* breaker.protect(Effect.succeed(42)), 42)
      assert.strictEqual((yield* breaker.snapshot).state, "closed")
      // Closed again: the next trip starts from 5 s, not from where it was.
      for (let i = 0; i < 5; i++) yield* Effect.exit(breaker.protect(Effect.fail(new Boom())))
      assert.strictEqual((yield* breaker.snapshot).retryAfterSeconds, 5)
    }))

  it.effect("lets exactly one probe through while half-open; a failed probe opens it again", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make("lms CLI", { failureThreshold: 1, openMs: 1000 })
      yield* Effect.exit(breaker.protect(Effect.fail(new Boom())))
      yield* TestClock.adjust(Duration.seconds(1))
      const probe = yield* Effect.fork(
        breaker.protect(Effect.flatMap(Effect.sleep(Duration.seconds(5)), () => Effect.fail(new Boom())))
      )
      yield* TestClock.adjust(Duration.millis(10))
      assert.strictEqual((yield* breaker.snapshot).state, "half_open")
      const second = yield* Effect.flip(breaker.protect(Effect.succeed(1)))
      assert.strictEqual(second._tag, "CircuitOpen")
      yield* TestClock.adjust(Duration.seconds(5))
      yield* Fiber.await(probe)
      assert.strictEqual((yield* breaker.snapshot).state, "open")
    }))

  it.effect("an interrupted probe frees the half-open slot; errors that prove the dependency alive do not count", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make("dep", { failureThreshold: 2, openMs: 1000 })
      for (let i = 0; i < 10; i++) yield* Effect.exit(breaker.protect(failWith(new Benign()), (e) => e._tag === "Boom"))
      assert.strictEqual((yield* breaker.snapshot).state, "closed")
      yield* Effect.exit(breaker.protect(Effect.fail(new Boom())))
      yield* Effect.exit(breaker.protect(Effect.fail(new Boom())))
      yield* TestClock.adjust(Duration.seconds(1))
      const probe = yield* Effect.fork(breaker.protect(Effect.never))
      yield* TestClock.adjust(Duration.millis(1))
      yield* Fiber.interrupt(probe)
      assert.strictEqual(yield* breaker.protect(Effect.succeed("next probe")), "next probe")
      assert.strictEqual((yield* breaker.snapshot).state, "closed")
    }))
})
