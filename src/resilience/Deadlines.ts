/**
 * Pays for itself: `Effect.timeoutFail` per call (two forked fibers and a timer) cost 120–200 µs, the largest single
 * cost of the client's hot path (docs/benchmarks.md, "LmStudioClient overhead").
 *
 * Deadlines: the timeouts of many in-flight calls watched by one Clock-driven fiber. A call registers its deadline;
 * the work registers how to abort itself (for an HTTP request: destroy it) through the `onAbort` it is given. One watcher
 * fiber wakes every `tickMs` while anything is registered, runs the abort of every call whose deadline has passed,
 * and that call fails with its own timeout error. The watcher stops after a second with nothing to watch and is
 * restarted by the next call, so an idle process keeps no timer. Time comes only from `Clock` and `Effect.sleep`:
 * `TestClock` drives it in tests.
 *
 * Precision is one tick (100 ms by default); the timeouts it serves are seconds long.
 * Contract: the work must end soon after its abort runs (an HTTP request that is destroyed fails at once).
 */
import { Clock, Effect } from "effect"
import type { Scope } from "effect"

/** Registers how to abort the work; called at once when the deadline has already passed. */
export type OnAbort = (abort: () => void) => void

export interface Deadlines {
  /**
   * Runs `work(onAbort)`. If `ms` pass before it ends, the abort the work registered runs and the call fails with
   * `onTimeout()` (whatever error the work ended with because of the abort is replaced). Interrupting the caller
   * interrupts the work as usual (its own finalizers abort it); the abort callback is for deadlines only.
   */
  readonly within: <A, E, R, E2>(
    ms: number,
    onTimeout: () => E2,
    work: (onAbort: OnAbort) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | E2, R>
}

interface Watched {
  readonly at: number
  abort: (() => void) | undefined
  fired: boolean
}

/** Ticks with nothing registered before the watcher stops. */
const idleTicksBeforeStop = 10

const fire = (w: Watched) => {
  w.fired = true
  const abort = w.abort
  w.abort = undefined
  abort?.()
}

export const make = (tickMs = 100): Effect.Effect<Deadlines, never, Scope.Scope> =>
  Effect.gen(function*() {
    const owner = yield* Effect.scope
    // Plain mutable state is safe here: JavaScript runs one fiber step at a time and no step below yields mid-update.
    const watched = new Set<Watched>()
    let watching = false

    const expire = (now: number) =>
      Effect.sync(() => {
        for (const w of watched) {
          if (w.at <= now) {
            watched.delete(w)
            fire(w)
          }
        }
      })

    const watcher = Effect.gen(function*() {
      let idle = 0
      while (idle < idleTicksBeforeStop) {
        yield* Effect.sleep(tickMs)
        yield* expire(yield* Clock.currentTimeMillis)
        idle = watched.size === 0 ? idle + 1 : 0
      }
    }).pipe(Effect.ensuring(Effect.sync(() => (watching = false))))

    const within: Deadlines["within"] = (ms, onTimeout, work) =>
      Effect.clockWith((clock) =>
        Effect.suspend(() => {
          const entry: Watched = { at: clock.unsafeCurrentTimeMillis() + ms, abort: undefined, fired: false }
          watched.add(entry)
          const onAbort: OnAbort = (abort) => {
            if (entry.fired) abort()
            else entry.abort = abort
          }
          const run = work(onAbort).pipe(
            Effect.ensuring(
              Effect.sync(() => {
                watched.delete(entry)
                entry.abort = undefined
              })
            ),
            Effect.mapError((e) => (entry.fired ? onTimeout() : e))
          )
          if (watching) return run
          watching = true
          return Effect.zipRight(Effect.forkIn(watcher, owner), run)
        })
      )

    return { within } satisfies Deadlines
  })
