/**
 * Deadlines: the timeouts of many in-flight calls watched by one Clock-driven fiber.
 *
 * `Effect.timeoutFail` races the work against a sleep, forking two fibers per call; on the hot path of the LM Studio
 * client that race was the largest single cost (docs/benchmarks.md). Here a call registers its deadline and the
 * scope its work is bound to; one watcher fiber wakes every `tickMs` while anything is registered, closes the scope
 * of every call whose deadline has passed (for an HTTP request bound to that scope this aborts the request) and the
 * call fails with its own timeout error. The watcher stops after a second with nothing to watch and is restarted by
 * the next call, so an idle process keeps no timer. Time comes only from `Clock` and `Effect.sleep`: `TestClock`
 * drives it in tests.
 *
 * Precision is one tick (100 ms by default); the timeouts it serves are seconds long.
 * Contract: the work must end when its scope closes — true of both `@effect/platform` Node HTTP clients when the
 * request is bound to the scope with `HttpClient.withScope` (closing the scope aborts the request).
 */
import { Clock, Effect, Exit, Scope } from "effect"

export interface Deadlines {
  /**
   * Runs `work` with a fresh *abort scope*. If `ms` pass before it ends, the scope is closed and the call fails
   * with `onTimeout()` (whatever error the work ended with because of the close is replaced). The scope is also
   * closed when the work fails or is interrupted. When the work succeeds the scope is dropped without closing: it
   * holds nothing but "abort this", and aborting a finished HTTP request costs ~0.1 ms, more than the rest of the
   * client's own work per call (docs/benchmarks.md). Put only abort actions in it.
   */
  readonly within: <A, E, R, E2>(
    ms: number,
    onTimeout: () => E2,
    work: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | E2, Exclude<R, Scope.Scope>>
}

interface Watched {
  readonly at: number
  readonly scope: Scope.CloseableScope
  fired: boolean
}

/** Ticks with nothing registered before the watcher stops. */
const idleTicksBeforeStop = 10

export const make = (tickMs = 100): Effect.Effect<Deadlines, never, Scope.Scope> =>
  Effect.gen(function* () {
    const owner = yield* Effect.scope
    // Plain mutable state is safe here: JavaScript runs one fiber step at a time and no step below yields mid-update.
    const watched = new Set<Watched>()
    let watching = false

    const expire = (now: number) =>
      Effect.forEach(
        [...watched].filter((w) => w.at <= now),
        (w) => {
          watched.delete(w)
          w.fired = true
          return Scope.close(w.scope, Exit.void)
        },
        { discard: true }
      )

    const watcher = Effect.gen(function* () {
      let idle = 0
      while (idle < idleTicksBeforeStop) {
        yield* Effect.sleep(tickMs)
        yield* expire(yield* Clock.currentTimeMillis)
        idle = watched.size === 0 ? idle + 1 : 0
      }
    }).pipe(Effect.ensuring(Effect.sync(() => (watching = false))))

    const within: Deadlines["within"] = (ms, onTimeout, work) =>
      Effect.flatMap(Scope.make(), (scope) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const entry: Watched = { at: now + ms, scope, fired: false }
          watched.add(entry)
          const start = watching ? Effect.void : Effect.asVoid(Effect.forkIn(watcher, owner))
          watching = true
          return start.pipe(
            Effect.zipRight(Scope.extend(work, scope)),
            Effect.onExit((exit) => {
              watched.delete(entry)
              return Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit)
            }),
            Effect.mapError((e) => (entry.fired ? onTimeout() : e))
          )
        })
      )

    return { within } satisfies Deadlines
  })
