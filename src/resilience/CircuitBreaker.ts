/**
 * CircuitBreaker (DESIGN §6): closed → open after N consecutive failed *calls* → half-open once the open time has
 * passed, letting exactly one probe through → closed on its success, open again on its failure. The open time starts
 * short and doubles with every failed probe, up to a maximum (5 s, 10 s, 20 s, 40 s, 60 s by default), so a
 * dependency that recovers within a second is used again within seconds, and one that stays down is asked rarely.
 *
 * State lives in a `Ref` (every transition is one atomic `modify`), time comes from `Clock` (so `TestClock` drives
 * it). The transitions are pure functions, exported for tests. What counts as a failure is the caller's choice: an
 * answer that proves the dependency alive (a 4xx, "model not found") is not a failure of the dependency. Callers put
 * the breaker *outside* their retries, so one call with its retries counts once.
 */
import { Cause, Clock, Effect, Exit, Option, Ref } from "effect"
import { CircuitOpen } from "../domain/Errors.js"
import { record } from "../observability/Metrics.js"

export type BreakerState =
  | { readonly _tag: "Closed"; readonly failures: number }
  | { readonly _tag: "Open"; readonly openedAt: number; readonly openMs: number }
  | { readonly _tag: "HalfOpen"; readonly probing: boolean; readonly openMs: number }

export interface BreakerPolicy {
  readonly failureThreshold: number
  /** How long the breaker stays open the first time. */
  readonly openMs: number
  /** The open time doubles with every failed probe, up to this. */
  readonly maxOpenMs: number
}

const defaultPolicy: BreakerPolicy = { failureThreshold: 5, openMs: 5_000, maxOpenMs: 60_000 }

export type Admission =
  | { readonly _tag: "Allowed"; readonly probe: boolean }
  | { readonly _tag: "Rejected"; readonly retryAfterMs: number }

/** May a call go through now? A due open breaker turns half-open and admits this call as its single probe. */
const admit = (s: BreakerState, now: number): [Admission, BreakerState] => {
  switch (s._tag) {
    case "Closed":
      return [{ _tag: "Allowed", probe: false }, s]
    case "Open": {
      const due = s.openedAt + s.openMs
      if (now >= due) return [{ _tag: "Allowed", probe: true }, { _tag: "HalfOpen", probing: true, openMs: s.openMs }]
      return [{ _tag: "Rejected", retryAfterMs: due - now }, s]
    }
    case "HalfOpen":
      return s.probing
        ? [{ _tag: "Rejected", retryAfterMs: 1000 }, s]
        : [{ _tag: "Allowed", probe: true }, { _tag: "HalfOpen", probing: true, openMs: s.openMs }]
  }
}

export type Outcome = "success" | "failure" | "interrupted"

/** The state after a call that was admitted ended with the given outcome. */
export const settle = (
  s: BreakerState,
  probe: boolean,
  outcome: Outcome,
  now: number,
  p: BreakerPolicy
): BreakerState => {
  if (probe) {
    if (outcome === "success") return { _tag: "Closed", failures: 0 }
    const openMs = s._tag === "Closed" ? p.openMs : s.openMs
    if (outcome === "failure") return { _tag: "Open", openedAt: now, openMs: Math.min(p.maxOpenMs, openMs * 2) }
    // An interrupted probe proved nothing: let the next call probe.
    return s._tag === "HalfOpen" ? { _tag: "HalfOpen", probing: false, openMs: s.openMs } : s
  }
  if (s._tag !== "Closed" || outcome === "interrupted") return s
  if (outcome === "success") return { _tag: "Closed", failures: 0 }
  const failures = s.failures + 1
  return failures >= p.failureThreshold
    ? { _tag: "Open", openedAt: now, openMs: Math.min(p.maxOpenMs, p.openMs) }
    : { _tag: "Closed", failures }
}

export interface BreakerSnapshot {
  readonly dependency: string
  readonly state: "closed" | "open" | "half_open"
  readonly consecutiveFailures: number
  /** Seconds until an open breaker lets a probe through (0 when not open). */
  readonly retryAfterSeconds: number
  /** How long the breaker stays open this time (0 when closed). */
  readonly openSeconds: number
}

export interface CircuitBreaker {
  readonly dependency: string
  /**
   * Runs `effect` behind the breaker. `isFailure` says which errors count against the dependency (default: all).
   * When the breaker is open the effect does not run and `CircuitOpen` is returned.
   */
  readonly protect: <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    isFailure?: (e: E) => boolean
  ) => Effect.Effect<A, E | CircuitOpen, R>
  readonly snapshot: Effect.Effect<BreakerSnapshot>
}

/** A state as snapshots, diagnose and the metrics name it. */
const STATE_NAME: Record<BreakerState["_tag"], BreakerSnapshot["state"]> = {
  Closed: "closed",
  HalfOpen: "half_open",
  Open: "open"
}

const toSnapshot = (dependency: string, s: BreakerState, now: number, p: BreakerPolicy): BreakerSnapshot => ({
  dependency,
  state: STATE_NAME[s._tag],
  consecutiveFailures: s._tag === "Closed" ? s.failures : p.failureThreshold,
  retryAfterSeconds: s._tag === "Open" ? Math.max(0, Math.ceil((s.openedAt + s.openMs - now) / 1000)) : 0,
  openSeconds: s._tag === "Closed" ? 0 : Math.round(s.openMs / 1000)
})

/** The policy in words (README, diagnose). */
export const describePolicy = (p: BreakerPolicy = defaultPolicy): string =>
  `opens after ${p.failureThreshold} consecutive failed calls (a call's retries count once), stays open ${
    p.openMs / 1000
  } s, ` +
  `then lets one probe through; each failed probe doubles the open time up to ${
    p.maxOpenMs / 1000
  } s; a successful probe closes it`

/** The `lmstudio_bridge.breaker.state` gauge's value: 0 closed, 1 half-open, 2 open. */
const GAUGE: Record<BreakerState["_tag"], number> = { Closed: 0, HalfOpen: 1, Open: 2 }

export const make = (dependency: string, policy: Partial<BreakerPolicy> = {}): Effect.Effect<CircuitBreaker> =>
  Effect.gen(function*() {
    const p: BreakerPolicy = { ...defaultPolicy, ...policy }
    const ref = yield* Ref.make<BreakerState>({ _tag: "Closed", failures: 0 })
    yield* record((r) => r.update("breakerState", GAUGE.Closed, [dependency]))
    /** Records a change of state (not a change of the failure count). */
    const moved = (before: BreakerState, after: BreakerState) =>
      before._tag === after._tag ? Effect.void : record((r) => {
        r.update("breakerState", GAUGE[after._tag], [dependency])
        r.update("breakerTransitions", 1, [dependency, STATE_NAME[after._tag]])
      })

    const protect = <A, E, R>(effect: Effect.Effect<A, E, R>, isFailure: (e: E) => boolean = () => true) =>
      Effect.clockWith((clock) =>
        Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(
            Ref.modify(ref, (s) => {
              const [admission, next] = admit(s, clock.unsafeCurrentTimeMillis())
              return [{ admission, before: s, next }, next]
            }),
            ({ admission, before, next }): Effect.Effect<A, E | CircuitOpen, R> => {
              if (admission._tag === "Rejected") {
                return Effect.fail(
                  new CircuitOpen({
                    dependency,
                    retryAfterSeconds: Math.max(1, Math.ceil(admission.retryAfterMs / 1000))
                  })
                )
              }
              return Effect.zipRight(
                moved(before, next),
                Effect.onExit(restore(effect), (exit) => {
                  const outcome: Outcome = Exit.isSuccess(exit)
                    ? "success"
                    : Cause.isInterruptedOnly(exit.cause)
                    ? "interrupted"
                    : Option.match(Cause.failureOption(exit.cause), {
                      onNone: (): Outcome => "failure",
                      onSome: (e): Outcome => (isFailure(e) ? "failure" : "success")
                    })
                  return Effect.flatMap(
                    Ref.modify(ref, (s) => {
                      const after = settle(s, admission.probe, outcome, clock.unsafeCurrentTimeMillis(), p)
                      return [[s, after] as const, after]
                    }),
                    ([s, after]) => moved(s, after)
                  )
                })
              )
            }
          )
        )
      )

    const snapshot = Effect.flatMap(
      Clock.currentTimeMillis,
      (now) => Ref.get(ref).pipe(Effect.map((s) => toSnapshot(dependency, s, now, p)))
    )

    return { dependency, protect, snapshot } satisfies CircuitBreaker
  })
