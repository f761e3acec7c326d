/**
 * What an agent run records (docs/observability.md), on the GenAI agent conventions: `gen_ai.invoke_agent.duration`
 * by stop reason, rounds and tool calls per run, `gen_ai.execute_tool.duration` by server, tool and outcome, a
 * `run_id` on every log line of the run, and — when traces are exported — the spans `invoke_agent lmstudio-bridge`,
 * `agent.round` (a turn and its tool calls) and `execute_tool <tool>` (the child's `tools/call` span inside it).
 */
import { Effect, Exit } from "effect"
import { newLogId, withLogContext } from "../observability/Logging.js"
import { errorTypeOfExit, timed } from "../observability/Metrics.js"
import { spanIf } from "../observability/Tracing.js"
import type { Approval } from "./Loop.js"
import type { RunResult } from "./RunReport.js"

export const AGENT_NAME = "lmstudio-bridge"

/** How a tool call ended for the model: ran (`ok`, `tool_error`), or refused before it ran (the approval's word). */
const outcomeOf = (out: ExecutedCall): string =>
  out.approval === "denied" || out.approval === "declined" || out.approval === "needs_approval" ||
    out.approval === "no_answer"
    ? out.approval
    : out.ok
    ? "ok"
    : "tool_error"

export interface ExecutedCall {
  readonly ok: boolean
  readonly server: string
  readonly tool: string
  readonly approval?: Approval | undefined
}

/** Observes one run: its duration and shape (metrics), its span, and `run_id` on its log lines. */
export const observeRun =
  (tracing: boolean, model: string | undefined) =>
  <A extends Pick<RunResult, "stopReason" | "rounds" | "toolCalls">, E, R>(
    self: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E, R> => {
    const measured = timed(self, (r, seconds, exit) => {
      const stop = Exit.isSuccess(exit)
        ? exit.value.stopReason
        : errorTypeOfExit(exit) === "cancelled"
        ? "cancelled"
        : "error"
      r.update("agentDuration", seconds, [AGENT_NAME, stop, errorTypeOfExit(exit)])
      if (Exit.isSuccess(exit)) {
        r.update("agentRounds", exit.value.rounds, [stop])
        r.update("agentToolCalls", exit.value.toolCalls.length, [stop])
      }
    })
    const traced = spanIf(tracing, `invoke_agent ${AGENT_NAME}`, {
      "gen_ai.operation.name": "invoke_agent",
      "gen_ai.agent.name": AGENT_NAME,
      ...(model !== undefined ? { "gen_ai.request.model": model } : {})
    })(measured)
    return Effect.suspend(() => withLogContext({ run_id: newLogId() })(traced))
  }

/** Observes one tool call of the model: `gen_ai.execute_tool.duration` and its span. */
export const observeToolCall =
  (tracing: boolean, name: string) =>
  <A extends ExecutedCall, R>(self: Effect.Effect<A, never, R>): Effect.Effect<A, never, R> =>
    spanIf(tracing, `execute_tool ${name}`, { "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name })(
      timed(self, (r, seconds, exit) => {
        if (!Exit.isSuccess(exit)) {
          r.update("executeTool", seconds, ["_OTHER", undefined, undefined, errorTypeOfExit(exit)])
          return
        }
        const out = exit.value
        const outcome = outcomeOf(out)
        // An unknown name (the model's invention) has no server: not a label value.
        const unknown = out.server === ""
        r.update("executeTool", seconds, [
          unknown ? "_OTHER" : out.tool,
          unknown ? "_OTHER" : out.server,
          outcome,
          outcome === "ok" ? undefined : outcome
        ])
      })
    )

/** A round in its span. */
export const roundSpan = (tracing: boolean) => <A, E>(round: number, self: Effect.Effect<A, E>) =>
  spanIf(tracing, "agent.round", { "lmstudio_bridge.agent.round": round })(self)
