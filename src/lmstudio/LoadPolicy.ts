/**
 * The load policy of the model lifecycle (DESIGN §6 "Model lifecycle"), as pure functions: the TTL of a load (always
 * explicit and finite) and the order of the load backends (cli, jit, rest) with the reason for each.
 */
import { Effect } from "effect"
import type { AppConfigShape, LifecycleMode } from "../Config.js"
import { InvalidTtl } from "../domain/Errors.js"

// ---------------------------------------------------------------------------------------------------------------
// TTL policy
// ---------------------------------------------------------------------------------------------------------------

/** Above this a TTL is taken for a mistake (milliseconds given as seconds, say) rather than capped. */
export const ABSURD_TTL_SECONDS = 366 * 86_400

export interface TtlChoice {
  readonly ttlSeconds: number
  readonly note: string | undefined
}

/** The TTL of a load: explicit (validated, capped), else keep-loaded, else temporary. Never infinite. */
export const ttlFor = (
  request: { readonly ttlSeconds?: number | undefined; readonly keepLoaded?: boolean | undefined },
  config: Pick<AppConfigShape, "modelTtlSeconds" | "tempModelTtlSeconds" | "maxModelTtlSeconds">
): Effect.Effect<TtlChoice, InvalidTtl> => {
  const t = request.ttlSeconds
  if (t === undefined) {
    return Effect.succeed({
      ttlSeconds: request.keepLoaded === true ? config.modelTtlSeconds : config.tempModelTtlSeconds,
      note: undefined
    })
  }
  const value = String(t)
  if (!Number.isFinite(t)) {
    return Effect.fail(new InvalidTtl({ value, reason: "it is not a finite number; infinite TTLs are not allowed" }))
  }
  if (!Number.isInteger(t)) return Effect.fail(new InvalidTtl({ value, reason: "it is not a whole number of seconds" }))
  if (t <= 0) {
    return Effect.fail(new InvalidTtl({ value, reason: "it must be at least 1 second (0 would mean 'never unload')" }))
  }
  if (t > ABSURD_TTL_SECONDS) {
    return Effect.fail(new InvalidTtl({ value, reason: `it is more than a year; was it meant in milliseconds?` }))
  }
  if (t > config.maxModelTtlSeconds) {
    return Effect.succeed({
      ttlSeconds: config.maxModelTtlSeconds,
      note: `ttl_seconds ${t} was capped to the maximum of ${config.maxModelTtlSeconds} s (MAX_MODEL_TTL_SECONDS)`
    })
  }
  return Effect.succeed({ ttlSeconds: t, note: undefined })
}

// ---------------------------------------------------------------------------------------------------------------
// Backend choice
// ---------------------------------------------------------------------------------------------------------------

export type Backend = "cli" | "jit" | "rest"

export interface BackendChoice {
  readonly via: Backend
  readonly reason: string
}

/** Which way models are loaded: forced by LMSTUDIO_LIFECYCLE, else the first of cli, jit, rest that can work. */
export const chooseBackend = (
  mode: LifecycleMode,
  lmsAvailable: boolean,
  v1: boolean
): ReadonlyArray<BackendChoice> => {
  const cli: BackendChoice = { via: "cli", reason: "`lms load --ttl`: LM Studio holds the TTL" }
  const jit: BackendChoice = {
    via: "jit",
    reason: "a JIT load carrying `ttl`: LM Studio holds the TTL (auto-evict may unload other JIT-loaded models)"
  }
  const rest: BackendChoice = {
    via: "rest",
    reason:
      "REST v1 load: LM Studio holds no idle TTL for it (unless `lms ps` shows one), so the bridge enforces the TTL while it runs"
  }
  switch (mode) {
    case "cli":
      return [{ ...cli, reason: `forced by LMSTUDIO_LIFECYCLE=cli; ${cli.reason}` }]
    case "jit":
      return [{ ...jit, reason: `forced by LMSTUDIO_LIFECYCLE=jit; ${jit.reason}` }]
    case "rest":
      return [{ ...rest, reason: `forced by LMSTUDIO_LIFECYCLE=rest; ${rest.reason}` }]
    case "auto":
      return [
        ...(lmsAvailable ? [{ ...cli, reason: `the lms CLI is installed; ${cli.reason}` }] : []),
        {
          ...jit,
          reason: `${lmsAvailable ? "after the lms CLI failed" : "the lms CLI is not installed"}; ${jit.reason}`
        },
        ...(v1 ? [{ ...rest, reason: `JIT loading failed; ${rest.reason}` }] : [])
      ]
  }
}
