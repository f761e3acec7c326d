/**
 * The lease table under TestClock: shared acquisition, idle release after exactly the TTL, nothing released while
 * held, failures not cached, abandoned acquisitions stopped, invalidation, and everything released when it closes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, FastCheck as fc, Fiber, Scope, TestClock } from "effect"
import * as Leases from "../../src/resilience/Leases.js"

interface Log {
  readonly acquired: Array<string>
  readonly released: Array<string>
  readonly interrupted: Array<string>
}

/** A table of named resources that records what it acquires and releases; `acquire` can be replaced per test. */
const table = (ttlMs: number, acquire?: (key: string) => Effect.Effect<string, string>) =>
  Effect.gen(function*() {
    const log: Log = { acquired: [], released: [], interrupted: [] }
    let n = 0
    const leases = yield* Leases.make<string, string, string>({
      id: (key) => key,
      acquire: (key) =>
        (acquire ?? ((k: string) => Effect.succeed(k)))(key).pipe(
          Effect.map((v) => `${v}#${++n}`),
          Effect.tap((v) => Effect.sync(() => log.acquired.push(v))),
          Effect.onInterrupt(() => Effect.sync(() => log.interrupted.push(key)))
        ),
      release: (_key, resource) => Effect.sync(() => log.released.push(resource)),
      idleTimeToLiveMs: () => ttlMs
    })
    return { leases, log }
  })

describe("Leases", () => {
  it.scoped.prop(
    "an idle resource is released exactly its TTL after its last user left, however many uses came before",
    {
      ttl: fc.integer({ min: 1, max: 100_000 }),
      uses: fc.array(fc.integer({ min: 0, max: 5_000 }), { minLength: 1, maxLength: 8 })
    },
    ({ ttl, uses }) =>
      Effect.gen(function*() {
        const { leases, log } = yield* table(ttl)
        for (const work of uses) {
          yield* leases.withLease("m", () => Effect.sleep(Duration.millis(work))).pipe(
            Effect.fork,
            Effect.tap(() => TestClock.adjust(Duration.millis(work))),
            Effect.flatMap(Fiber.join)
          )
          // Each use leaves before the TTL of the previous one ran out: still the one resource.
          assert.deepStrictEqual(log.released, [])
          yield* TestClock.adjust(Duration.millis(ttl - 1))
          assert.deepStrictEqual(log.released, [])
        }
        assert.deepStrictEqual(log.acquired, ["m#1"])
        yield* TestClock.adjust(Duration.millis(1))
        assert.deepStrictEqual(log.released, ["m#1"])
        // The next use acquires afresh.
        assert.strictEqual(yield* leases.get("m"), "m#2")
      }),
    { fastCheck: { numRuns: 30 } }
  )

  it.scoped.prop(
    "random overlapping uses: nothing is released while held, and after the last TTL every acquisition is released once",
    {
      ttl: fc.integer({ min: 1, max: 50 }),
      uses: fc.array(
        fc.record({
          at: fc.integer({ min: 0, max: 200 }),
          work: fc.integer({ min: 0, max: 60 }),
          key: fc.constantFrom("a", "b")
        }),
        {
          minLength: 1,
          maxLength: 20
        }
      )
    },
    ({ ttl, uses }) =>
      Effect.gen(function*() {
        const { leases, log } = yield* table(ttl)
        const held = new Map<string, number>()
        const violations: Array<string> = []
        const fibers = yield* Effect.forEach(uses, (u) =>
          Effect.fork(
            Effect.sleep(Duration.millis(u.at)).pipe(
              Effect.zipRight(
                leases.withLease(u.key, (resource) =>
                  Effect.acquireUseRelease(
                    Effect.sync(() => held.set(resource, (held.get(resource) ?? 0) + 1)),
                    () => Effect.sleep(Duration.millis(u.work)),
                    () =>
                      Effect.sync(() => {
                        if (log.released.includes(resource)) violations.push(`${resource} released while held`)
                        held.set(resource, held.get(resource)! - 1)
                      })
                  ))
              )
            )
          ))
        yield* TestClock.adjust(Duration.millis(200 + 60 + ttl + 1))
        yield* Effect.forEach(fibers, Fiber.join)
        assert.deepStrictEqual(violations, [])
        assert.deepStrictEqual([...log.released].sort(), [...log.acquired].sort())
        assert.strictEqual(yield* leases.size, 0)
      }),
    { fastCheck: { numRuns: 30 } }
  )

  it.scoped("concurrent users of one key share one acquisition; another key is acquired on its own", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { leases, log } = yield* table(1000, (k) => Effect.as(Deferred.await(gate), k))
      const users = yield* Effect.forEach(Array.from({ length: 50 }, () => leases.get("m")), Effect.fork)
      const other = yield* Effect.fork(leases.get("n"))
      yield* Effect.yieldNow()
      yield* Deferred.succeed(gate, undefined)
      const got = yield* Effect.forEach(users, Fiber.join)
      assert.isTrue(got.every((r) => r === got[0]))
      yield* Fiber.join(other)
      assert.strictEqual(log.acquired.length, 2)
    }))

  it.scoped("a failed acquisition reaches every waiter and is not kept: the next use tries again", () =>
    Effect.gen(function*() {
      let attempts = 0
      const { leases, log } = yield* table(
        1000,
        (k) => (++attempts === 1 ? Effect.fail(`load of ${k} failed`) : Effect.succeed(k))
      )
      const first = yield* Effect.all([Effect.exit(leases.get("m")), Effect.exit(leases.get("m"))], {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(first, [Exit.fail("load of m failed"), Exit.fail("load of m failed")])
      assert.strictEqual(yield* leases.size, 0)
      assert.strictEqual(yield* leases.get("m"), "m#1")
      assert.deepStrictEqual(log.released, [])
    }))

  it.scoped("when the last waiter gives up, the acquisition is stopped; while one still waits it goes on", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { leases, log } = yield* table(1000, (k) => Effect.as(Deferred.await(gate), k))
      const a = yield* Effect.fork(leases.get("m"))
      const b = yield* Effect.fork(leases.get("m"))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(a)
      assert.deepStrictEqual(log.interrupted, [])
      yield* Fiber.interrupt(b)
      assert.deepStrictEqual(log.interrupted, ["m"])
      assert.strictEqual(yield* leases.size, 0)
      // A stuck acquisition abandoned by everyone does not block the next user.
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* leases.get("m"), "m#1")
    }))

  it.scoped("a use longer than the TTL keeps its resource; the idle clock starts when it leaves", () =>
    Effect.gen(function*() {
      const { leases, log } = yield* table(10_000)
      const long = yield* Effect.fork(leases.withLease("m", () => Effect.sleep(Duration.hours(3))))
      yield* TestClock.adjust(Duration.hours(3))
      yield* Fiber.join(long)
      assert.deepStrictEqual(log.released, [])
      yield* TestClock.adjust(Duration.millis(9_999))
      assert.deepStrictEqual(log.released, [])
      yield* TestClock.adjust(Duration.millis(1))
      assert.deepStrictEqual(log.released, ["m#1"])
    }))

  it.scoped("invalidate releases an idle resource at once and a held one when its user leaves", () =>
    Effect.gen(function*() {
      const { leases, log } = yield* table(60_000)
      yield* leases.get("m")
      yield* leases.invalidate("m")
      assert.deepStrictEqual(log.released, ["m#1"])
      const release = yield* Deferred.make<void>()
      const user = yield* Effect.fork(leases.withLease("m", () => Deferred.await(release)))
      yield* Effect.yieldNow()
      yield* leases.invalidate("m")
      assert.deepStrictEqual(log.released, ["m#1"])
      // A new user while the invalidated one is still held gets a fresh resource.
      assert.strictEqual(yield* leases.get("m"), "m#3")
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(user)
      assert.deepStrictEqual(log.released, ["m#1", "m#2"])
      // The idle one is released after its TTL, not earlier, and only once.
      yield* TestClock.adjust(Duration.minutes(2))
      assert.deepStrictEqual(log.released, ["m#1", "m#2", "m#3"])
    }))

  it.effect("closing the table releases what it holds, stops acquisitions and refuses new users", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const started = yield* Deferred.make<void>()
      const { leases, log } = yield* Scope.extend(
        table(
          60_000,
          (
            k
          ) => (k === "stuck" ? Effect.zipRight(Deferred.succeed(started, undefined), Effect.never) : Effect.succeed(k))
        ),
        scope
      )
      yield* leases.get("a")
      yield* leases.get("b")
      const stuck = yield* Effect.fork(leases.get("stuck"))
      yield* Deferred.await(started)
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual([...log.released].sort(), ["a#1", "b#2"])
      assert.deepStrictEqual(log.interrupted, ["stuck"])
      assert.isTrue(Exit.isInterrupted(yield* Fiber.await(stuck)))
      assert.isTrue(Exit.isInterrupted(yield* Effect.exit(leases.get("a"))))
    }))
})
