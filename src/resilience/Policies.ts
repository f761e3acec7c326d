/**
 * The named retry and polling policies (DESIGN §6 "Retries"). Every schedule is jittered and bounded; what may be
 * retried is decided by the predicates next to them, never by the call sites.
 */
import { Duration, Schedule } from "effect"

/** HTTP calls to LM Studio that failed transiently (connection refused, 5xx): 100 ms, 200 ms, jittered; 2 retries. */
export const httpTransientRetry = Schedule.exponential(Duration.millis(100), 2).pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(2))
)

/** Model loads: exponential from 1 s, factor 2, 3 retries (1 s, 2 s, 4 s), jittered. */
export const modelLoadRetry = Schedule.exponential(Duration.seconds(1), 2).pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(3))
)

/** Is an LM Studio error worth retrying? Only what can succeed on a second try: unreachable and 5xx. */
export const isTransientLmStudioError = (e: { readonly _tag: string; readonly status?: number }): boolean =>
  e._tag === "LmStudioUnreachable" || (e._tag === "LmStudioHttpError" && (e.status ?? 0) >= 500)
