/**
 * The named retry and polling policies (DESIGN §6 "Retries"). Every schedule is jittered and bounded; what may be
 * retried is decided by the predicates next to them, never by the call sites.
 */
import { Duration, Effect, Schedule } from "effect"

/** HTTP calls to LM Studio that failed transiently (connection refused, 5xx): 100 ms, 200 ms, jittered; 2 retries. */
export const httpTransientRetry = Schedule.exponential(Duration.millis(100), 2).pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(2))
)

/** Model loads: exponential from `base` (1 s), factor 2, 3 retries (1 s, 2 s, 4 s), jittered. */
export const modelLoadRetry = (base: Duration.Duration = Duration.seconds(1)) =>
  Schedule.exponential(base, 2).pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(3)))

/** Verification after a load: look at the loaded list now, then every `interval`, at most `attempts` times in all. */
export const verificationPoll = (interval: Duration.Duration, attempts: number) =>
  Schedule.spaced(interval).pipe(Schedule.intersect(Schedule.recurs(Math.max(0, attempts - 1))))

/** Errors a model load may recover from on another try. Never a bad name, a missing model or a refused request. */
export const isRetryableLoadError = (e: { readonly _tag: string; readonly status?: number }): boolean =>
  isTransientLmStudioError(e) ||
  e._tag === "LmStudioTimeout" ||
  e._tag === "LmStudioConnectionLost" ||
  e._tag === "ModelVerificationFailed" ||
  e._tag === "LmsCliTimeout"

/** Is an LM Studio error worth retrying? Only what can succeed on a second try: unreachable and 5xx. */
export const isTransientLmStudioError = (e: { readonly _tag: string; readonly status?: number }): boolean =>
  e._tag === "LmStudioUnreachable" || (e._tag === "LmStudioHttpError" && (e.status ?? 0) >= 500)

/**
 * `Effect.retry(effect, { schedule, while })` that costs nothing until the first failure (pays for itself: a schedule
 * driver per call cost ≈ 6 µs, docs/benchmarks.md). The driver is only made when a retryable error arrives, so the
 * common, successful call pays for one `catchIf`. Same semantics as `Effect.retry`: the first failure is the
 * schedule's first input.
 */
export const retryLazily = <A, E, R, X, R2>(
  effect: Effect.Effect<A, E, R>,
  schedule: Schedule.Schedule<X, E, R2>,
  retryable: (e: E) => boolean,
  /** Runs before each retry the schedule allows (not for the failure it gives up on). */
  onRetry: (e: E) => Effect.Effect<void> = () => Effect.void
): Effect.Effect<A, E, R | R2> =>
  Effect.catchIf(effect, retryable, (first) =>
    Effect.flatMap(Schedule.driver(schedule), (driver) => {
      const again = (e: E): Effect.Effect<A, E, R | R2> =>
        Effect.matchEffect(driver.next(e), {
          onFailure: () => Effect.fail(e),
          onSuccess: () => Effect.zipRight(onRetry(e), Effect.catchIf(effect, retryable, again))
        })
      return again(first)
    }))
