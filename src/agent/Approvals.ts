/**
 * The questions of one agent run (DESIGN §6 "Tool policy"): a call the policy says needs approval is put to the user
 * (the run's Approver: the MCP client's elicitation), one question at a time, within what is left of the run's
 * budget. "Allow for the rest of this run" is remembered per tool, so a call waiting behind the question that allowed
 * it runs without asking. Without an Approver, or when no answer comes, the call is refused with a text for the model
 * (how to lift it) and a warning for the run's result.
 */
import { Clock, Duration, Effect, Option } from "effect"
import type { Approval, RequestedCall } from "./Loop.js"
import type { NamespacedTool } from "./ToolCalls.js"
import { type Approver, summariseArguments } from "./ToolPolicy.js"

/** Whether the call may run, or what the model and the report are told instead. */
export type GateAnswer =
  | { readonly run: true }
  | { readonly run: false; readonly refusal: { readonly approval: Approval; readonly text: string } }

/** Asks about one call that needs approval (`rule`: why it needs it). */
export type Gate = (
  call: RequestedCall,
  target: NamespacedTool,
  args: Readonly<Record<string, unknown>>,
  rule: string
) => Effect.Effect<GateAnswer>

/** The gate of one run. */
export const approvals = (options: {
  readonly approve: Approver | undefined
  /** When the run's budget ends (ms, the Clock's). */
  readonly deadline: number
  /** The run's warnings; each refusal adds one. */
  readonly warnings: Array<string>
  /** What the model said last (its reason for the call), or "". */
  readonly lastWords: () => string
}): Effect.Effect<Gate> =>
  Effect.map(Effect.makeSemaphore(1), (askOne) => {
    const approvedForRun = new Set<string>()
    const refuse = (approval: Approval, text: string, warning: string): GateAnswer => {
      options.warnings.push(warning)
      return { run: false, refusal: { approval, text } }
    }

    const ask: Gate = (call, target, args, rule) =>
      Effect.gen(function*() {
        const where = `${target.tool.server}/${target.tool.name}`
        const lift = `re-run with allow_writes: true, or allow it with allowed_tools in the call or ` +
          `"allowedTools": ["${target.tool.name}"] in ${target.tool.server}'s mcp.json entry`
        if (options.approve === undefined) {
          return refuse(
            "needs_approval",
            `${call.name} needs the user's approval (${rule}) and the user cannot be asked here, so it did not ` +
              `run. Continue without it, or say in your answer that it needs approval: ${lift}.`,
            `${where} needs approval and was refused: the MCP client cannot ask the user (no elicitation); ${lift}`
          )
        }
        const said = options.lastWords()
        const remaining = options.deadline - (yield* Clock.currentTimeMillis)
        const answer = yield* Effect.timeoutOption(
          options.approve({
            server: target.tool.server,
            tool: target.tool.name,
            offeredAs: call.name,
            arguments: summariseArguments(args),
            why: said === "" ? "(the model gave no reason)" : said.slice(0, 500),
            rule
          }),
          Duration.millis(Math.max(0, remaining))
        )
        if (Option.isNone(answer)) {
          return refuse(
            "no_answer",
            `${call.name} needs the user's approval and no answer came within the run's budget, so it did not run.`,
            `${where} was not approved: no answer within the run's budget`
          )
        }
        switch (answer.value._tag) {
          case "Run":
            approvedForRun.add(call.name)
            return { run: true }
          case "Once":
            return { run: true }
          case "Decline":
            return refuse(
              "declined",
              `The user declined ${call.name}: it did not run. Do not call it again; continue without it.`,
              `${where} was declined by the user`
            )
          case "Failed":
            return refuse(
              "needs_approval",
              `${call.name} needs the user's approval and asking failed, so it did not run.`,
              `${where} was not approved: asking the user failed (${answer.value.reason})`
            )
        }
      })

    // One question at a time: a call waiting behind another of the same tool may find it allowed for the run.
    return (call, target, args, rule) =>
      askOne.withPermits(1)(
        Effect.suspend(() =>
          approvedForRun.has(call.name) ? Effect.succeed<GateAnswer>({ run: true }) : ask(call, target, args, rule)
        )
      )
  })
