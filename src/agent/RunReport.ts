/**
 * What an agent run reports, as both faces give it (the MCP tools' structured result and `agent run --json`): the
 * answer and how the run ended, every tool call and how the tool policy let it run, the context it was budgeted
 * against and the tools it offered. The encoded form is that JSON.
 */
import { Schema } from "effect"
import { nullable, optionalAsNull, wireKey } from "../domain/JsonShape.js"
import { UsageCounts } from "../domain/Messages.js"
import { Approval, type LoopOutcome } from "./Loop.js"

/** The context a run was budgeted against, and what the budget did. */
export const ContextReport = Schema.Struct({
  length: Schema.Number,
  /** `instance`: LM Studio reported the loaded context; `default`: it did not, CONTEXT_DEFAULT_TOKENS was assumed. */
  source: Schema.Literal("instance", "default"),
  reservedForAnswer: wireKey("reserved_for_answer", Schema.Number),
  /** The bridge's estimate of its largest request, in tokens. */
  largestPrompt: wireKey("largest_prompt", Schema.Number),
  /** Tool results shortened or collapsed to fit. */
  compacted: Schema.Number,
  /** Earliest rounds left out whole to fit (at most, in one request). */
  droppedRounds: wireKey("dropped_rounds", Schema.Number)
})

/** The tools a run had and offered, and how they were chosen. */
export const ToolsReport = Schema.Struct({
  total: Schema.Number,
  /** Every tool offered in some round, in the order first offered. */
  offered: Schema.Array(Schema.String),
  /** `all`: every tool fitted its share of the context; else the ranking that chose them. */
  ranking: Schema.Literal("all", "bm25", "embeddings"),
  embeddingModel: optionalAsNull("embedding_model", Schema.String),
  /** Tools the model found with find_tools. */
  found: Schema.Array(Schema.String),
  /** Tools the policy kept from the model (a deny rule, or writes denied). */
  denied: Schema.Array(Schema.String),
  /** Tools offered that run only when the user approves them. */
  approvalNeeded: wireKey("approval_needed", Schema.Array(Schema.String))
})

/**
 * A run as both faces report it (the MCP tools' structured result and `agent run --json`): the run and the servers it
 * had. The encoded form is that JSON.
 */
export const RunReport = Schema.Struct({
  answer: Schema.String,
  reasoning: nullable(Schema.String),
  stopReason: wireKey(
    "stop_reason",
    Schema.Literal("completed", "max_rounds", "repeated_call", "budget", "cancelled", "error")
  ),
  rounds: Schema.Number,
  toolCalls: wireKey(
    "tool_calls",
    Schema.Array(
      Schema.Struct({
        round: Schema.Number,
        server: Schema.String,
        tool: Schema.String,
        ok: Schema.Boolean,
        ms: Schema.Number,
        detail: optionalAsNull("detail", Schema.String),
        /** How the tool policy let it run, or why it did not (Loop.ts `Approval`). */
        approval: optionalAsNull("approval", Approval)
      })
    )
  ),
  model: Schema.String,
  api: Schema.Literal("responses", "chat"),
  usage: UsageCounts,
  durationMs: wireKey("duration_ms", Schema.Number),
  context: ContextReport,
  tools: ToolsReport,
  servers: Schema.Array(Schema.String),
  warnings: Schema.Array(Schema.String)
})
export type RunReport = typeof RunReport.Type

/** A run as the service reports it: the loop's outcome (its error folded into the warnings), the API, timing, budget. */
export interface RunResult extends Omit<LoopOutcome, "error"> {
  readonly api: "responses" | "chat"
  readonly durationMs: number
  readonly context: typeof ContextReport.Type
  readonly tools: typeof ToolsReport.Type
  readonly warnings: ReadonlyArray<string>
}

export const runReport = (r: RunResult, servers: ReadonlyArray<string>): RunReport => ({ ...r, servers })

/** What the budget did: the context, the tools offered and how they were chosen, what was shortened. */
export const budgetLine = (o: Pick<RunReport, "context" | "tools">): string =>
  `  context ${o.context.length} tokens (${
    o.context.source === "instance" ? "loaded" : "assumed: CONTEXT_DEFAULT_TOKENS"
  }), ` +
  `largest request ~${o.context.largestPrompt}; tools offered ${o.tools.offered.length} of ${o.tools.total}` +
  (o.tools.ranking === "all"
    ? ""
    : ` (by ${o.tools.ranking}${o.tools.embeddingModel ? ` on ${o.tools.embeddingModel}` : ""})`) +
  (o.context.compacted > 0 ? `; ${o.context.compacted} result(s) shortened to fit` : "") +
  (o.context.droppedRounds > 0 ? `; up to ${o.context.droppedRounds} early round(s) left out` : "")
