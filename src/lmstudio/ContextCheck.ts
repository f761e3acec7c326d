/**
 * Does a prompt fit the context of the instance that will serve it? Checked before sending, so an over-long prompt
 * fails at once with the numbers and the fix instead of costing a round trip and LM Studio's raw 400 (protocol
 * §12.3). The context is the instance's as LM Studio loaded it, else CONTEXT_DEFAULT_TOKENS.
 */
import { Effect } from "effect"
import { ContextOverflow } from "../domain/Errors.js"
import { estimateTokens, leastTokens } from "../domain/Tokens.js"
import { record } from "../observability/Metrics.js"

export interface ContextOf {
  readonly identifier: string
  readonly contextLength: number | undefined
}

/** Fails with ContextOverflow when even the lowest count of the prompt reaches the context; sends nothing then. */
export const requireRoom = (
  instance: ContextOf,
  prompt: string,
  contextDefault: number
): Effect.Effect<void, ContextOverflow> => {
  const available = instance.contextLength ?? contextDefault
  const least = leastTokens(prompt)
  return least < available
    ? Effect.void
    : Effect.zipRight(
      record((r) => r.update("contextOverflows", 1, ["bridge"])),
      Effect.fail(
        new ContextOverflow({
          model: instance.identifier,
          tokensNeeded: least,
          tokensAvailable: available,
          detail: `counted before sending: at least ${least} tokens (estimate ${estimateTokens(prompt)}) against ${
            instance.contextLength === undefined
              ? `CONTEXT_DEFAULT_TOKENS (${available}; LM Studio did not report the instance's context)`
              : `the loaded context of ${available}`
          }; nothing was sent to LM Studio`
        })
      )
    )
}
