/**
 * The agent loop itself, over two small ports — one LLM turn, one tool execution — so its logic is unit-tested with
 * scripted turns and `TestClock` (the AgentLoop service wires the ports to LM Studio and the child servers).
 *
 * - Stops: `completed`, `max_rounds` (honoured exactly), `repeated_call` (the same call with the same arguments
 *   a third time), `budget` (wall clock), `error` (an LLM request failed after the run started; what was done is
 *   kept). A limit triggers one last round with tools off so the user still gets an answer.
 * - Think blocks are stripped from the answer and kept as reasoning. `require_tool_first` reminds a model that
 *   answers without having used any tool, once.
 */
import { Clock, Duration, Effect, Option, Schema } from "effect"
import type { Usage } from "../domain/Messages.js"
import { joinReasoning, splitThink } from "../domain/Think.js"
import { capResult } from "./ToolCalls.js"

export type StopReason = "completed" | "max_rounds" | "repeated_call" | "budget" | "cancelled" | "error"

/** A call the model asked for, with a stable id for its result. */
export interface RequestedCall {
  readonly id: string
  readonly name: string
  readonly arguments: string
}

/** What one LLM turn gave. */
export interface Turn {
  readonly text: string
  readonly reasoning: string | undefined
  readonly calls: ReadonlyArray<RequestedCall>
  readonly model: string
  readonly usage: Usage | undefined
}

/**
 * How a call got to run or not under the tool policy: `read_only` (its server's annotation), `policy` (a list or
 * flag allowed it), `user` (approved when asked), or why it did not: `denied` (a deny rule), `declined` (the user
 * said no), `needs_approval` (no way to ask the user), `no_answer` (the user did not answer within the budget).
 */
export const Approval = Schema.Literal(
  "read_only",
  "policy",
  "user",
  "denied",
  "declined",
  "needs_approval",
  "no_answer"
)
export type Approval = typeof Approval.Type

export interface ToolCallRecord {
  readonly round: number
  readonly name: string
  readonly server: string
  readonly tool: string
  readonly ok: boolean
  readonly ms: number
  readonly detail?: string | undefined
  /** Set for calls of child tools (not for the bridge's own find_tools or unknown names). */
  readonly approval?: Approval | undefined
}

/** The ports the loop runs on. */
export interface LoopPorts<E> {
  /** One LLM turn: the results of the previous round's calls (none on the first), tools on or off. */
  readonly turn: (
    input: {
      readonly results: ReadonlyArray<{ readonly call: RequestedCall; readonly output: string }>
      readonly note: string | undefined
      readonly toolsOn: boolean
    }
  ) => Effect.Effect<Turn, E>
  /** Runs one tool call; never fails (a failure is an outcome the model reads). */
  readonly execute: (
    call: RequestedCall
  ) => Effect.Effect<
    {
      readonly ok: boolean
      readonly text: string
      readonly server: string
      readonly tool: string
      readonly approval?: Approval | undefined
    }
  >
  readonly known: ReadonlySet<string>
  /** Wraps each round (its turn and its tool calls), e.g. in a span; the round as it is. */
  readonly round?: <A, E2>(round: number, self: Effect.Effect<A, E2>) => Effect.Effect<A, E2>
}

export interface LoopLimits {
  readonly maxRounds: number
  readonly budget: Duration.Duration
  readonly concurrency: number
  readonly resultChars: number
  readonly requireToolFirst: boolean
}

export interface LoopProgress {
  readonly round: (round: number, maxRounds: number) => Effect.Effect<void>
  readonly toolCall: (round: number, record: ToolCallRecord) => Effect.Effect<void>
}

/** What the loop gives back; the service adds the api, timing and warnings. */
export interface LoopOutcome<E = unknown> {
  readonly answer: string
  readonly reasoning: string | undefined
  readonly stopReason: StopReason
  readonly rounds: number
  readonly toolCalls: ReadonlyArray<ToolCallRecord>
  readonly model: string
  readonly usage: Usage
  /** When the run stopped on an LLM error after it started: that error. */
  readonly error?: E | undefined
}

export const noProgress: LoopProgress = { round: () => Effect.void, toolCall: () => Effect.void }

const addUsage = (a: Usage, b: Usage | undefined): Usage =>
  b === undefined
    ? a
    : {
      promptTokens: a.promptTokens + b.promptTokens,
      completionTokens: a.completionTokens + b.completionTokens,
      totalTokens: a.totalTokens + b.totalTokens
    }

const FINAL_NOTE = "Stop using tools now. Answer the task with what you have found so far."
const TOOL_FIRST_NOTE = "Use the available tools to work on the task before you answer."

/** The loop, over its ports. Fails only when the very first LLM turn fails (nothing was done yet). */
export const runLoop = <E>(
  ports: LoopPorts<E>,
  limits: LoopLimits,
  progress: LoopProgress = noProgress
): Effect.Effect<LoopOutcome<E>, E> =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const deadline = start + Duration.toMillis(limits.budget)
    const records: Array<ToolCallRecord> = []
    const seen = new Map<string, number>()
    let usage: Usage = { promptTokens: 0, completionTokens: 0, totalTokens: 0 }
    let model = ""
    let results: ReadonlyArray<{ readonly call: RequestedCall; readonly output: string }> = []
    let note: string | undefined
    let failure: E | undefined
    let reminded = false
    let stop: StopReason | undefined
    let last: Turn | undefined
    let rounds = 0

    /** One LLM turn within the budget: None when the budget ran out first. */
    const turnWithin = (toolsOn: boolean, extraMs = 0) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.timeoutOption(
          ports.turn({ results, note, toolsOn }),
          Duration.millis(Math.max(0, deadline + extraMs - now))
        ))

    /**
     * One round: the model's turn and the tool calls it asked for. Answers whether the loop goes on, stopped (`stop`
     * says why), or is done with an outcome.
     */
    type Step = "next" | "stopped" | { readonly done: LoopOutcome<E> }
    const oneRound: Effect.Effect<Step, E> = Effect.gen(function*() {
      const attempt = yield* Effect.either(turnWithin(true))
      if (attempt._tag === "Left") {
        if (rounds === 1) {
          return yield* Effect.fail(attempt.left)
        }
        stop = "error"
        rounds--
        failure = attempt.left
        return "stopped" as Step
      }
      if (Option.isNone(attempt.right)) {
        stop = "budget"
        return "stopped"
      }
      const turn = attempt.right.value
      last = turn
      model = turn.model
      usage = addUsage(usage, turn.usage)
      note = undefined
      if (turn.calls.length === 0) {
        if (limits.requireToolFirst && records.length === 0 && !reminded && rounds < limits.maxRounds) {
          reminded = true
          note = TOOL_FIRST_NOTE
          results = []
          return "next"
        }
        return { done: outcome(turn, "completed") }
      }
      // The same call with the same arguments a third time: the model is going round in circles.
      let repeated = false
      for (const c of turn.calls) {
        const sig = `${c.name}\u0000${normaliseArgs(c.arguments)}`
        const n = (seen.get(sig) ?? 0) + 1
        seen.set(sig, n)
        if (n >= 3) repeated = true
      }
      if (repeated) {
        stop = "repeated_call"
        return "stopped"
      }
      const round = rounds
      results = yield* Effect.forEach(
        turn.calls,
        (call) =>
          Effect.gen(function*() {
            const t0 = yield* Clock.currentTimeMillis
            const out = yield* ports.execute(call)
            const record: ToolCallRecord = {
              round,
              name: call.name,
              server: out.server,
              tool: out.tool,
              ok: out.ok,
              ms: (yield* Clock.currentTimeMillis) - t0,
              ...(out.ok ? {} : { detail: out.text.slice(0, 300) }),
              ...(out.approval !== undefined ? { approval: out.approval } : {})
            }
            records.push(record)
            yield* progress.toolCall(round, record)
            return { call, output: capResult(out.text, limits.resultChars) }
          }),
        { concurrency: limits.concurrency }
      )
      if (rounds >= limits.maxRounds) stop = "max_rounds"
      return stop === undefined ? "next" : "stopped"
    })

    while (stop === undefined) {
      if ((yield* Clock.currentTimeMillis) >= deadline) {
        stop = "budget"
        break
      }
      rounds++
      yield* progress.round(rounds, limits.maxRounds)
      const step = yield* (ports.round ? ports.round(rounds, oneRound) : oneRound)
      if (typeof step === "object") return step.done
    }

    // An LLM request failed mid-run: keep what was done, no further requests.
    if (stop === "error") return { ...outcome(last, stop), error: failure }
    // A limit was hit: one last round without tools, so the user still gets an answer. It gets its own small
    // allowance past the budget (a tenth of it, at least 30 s).
    note = FINAL_NOTE
    const grace = Math.max(30_000, Duration.toMillis(limits.budget) / 10)
    const final = yield* Effect.either(turnWithin(false, grace))
    const finalTurn = final._tag === "Right" && Option.isSome(final.right) ? final.right.value : undefined
    if (finalTurn !== undefined) {
      model = finalTurn.model
      usage = addUsage(usage, finalTurn.usage)
    }
    return outcome(finalTurn ?? last, stop)

    /** The outcome with the answer (think blocks out) and reasoning of `answered`, if any turn answered. */
    function outcome(answered: Turn | undefined, stopReason: StopReason): LoopOutcome<E> {
      return {
        answer: answered === undefined ? "" : splitThink(answered.text).answer.trim(),
        reasoning: answered === undefined ? undefined : reasoningOf(answered),
        stopReason,
        rounds,
        toolCalls: records,
        model,
        usage
      }
    }
  })

const reasoningOf = (t: Turn): string | undefined => joinReasoning(t.reasoning, splitThink(t.text).reasoning)

const normaliseArgs = (args: string): string => {
  try {
    return JSON.stringify(JSON.parse(args))
  } catch {
    return args.trim()
  }
}
