/**
 * LmStudioBreaker: the one circuit breaker of the LM Studio server (DESIGN §6 "Circuit breaker"). The HTTP client and
 * the `lms` commands that talk to the same server (ls, ps, load, unload) both go through it, so a failing LM Studio
 * opens it whichever path saw the failures; the `lms` executable itself (hanging, missing) has its own breaker in
 * LmsCli.
 */
import { Effect } from "effect"
import * as CircuitBreaker from "../resilience/CircuitBreaker.js"

export class LmStudioBreaker extends Effect.Service<LmStudioBreaker>()("lmstudio-bridge/LmStudioBreaker", {
  effect: CircuitBreaker.make("LM Studio")
}) {}
