/**
 * Autonomous agents (DESIGN §5): list_available_mcps, autonomous_with_mcp, autonomous_with_multiple_mcps,
 * autonomous_discover_and_execute. The local model runs a tool loop over child MCP servers from mcp.json; progress
 * goes out per round and per tool call, and cancelling the call stops the loop, the LLM request and the tool calls.
 */
import { Effect, Schema } from "effect"
import { AgentLoop } from "../../agent/AgentLoop.js"
import { McpConfig, selectServers } from "../../agent/McpConfig.js"
import { budgetLine, RunReport, runReport } from "../../agent/RunReport.js"
import { type ApprovalAnswer, type ApprovalRequest, callRules } from "../../agent/ToolPolicy.js"
import { redactUrl } from "../../domain/Redact.js"
import { ToolGlob } from "../../domain/ToolRules.js"
import { NoInput, tool, type ToolContext } from "../Server.js"

const runAnnotations = { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true }

const RunOptions = {
  task: Schema.String.pipe(Schema.minLength(1)).annotations({
    description: "What the local model should do, in plain words"
  }),
  model: Schema.optional(
    Schema.String.annotations({
      description: "Model key or instance identifier; omit or \"default\" for the configured default"
    })
  ),
  max_rounds: Schema.optional(
    Schema.Int.pipe(Schema.between(1, 1000)).annotations({
      description: "Most LLM rounds (default 25, capped by AGENT_MAX_ROUNDS_CAP)"
    })
  ),
  max_tokens: Schema.optional(
    Schema.Int.pipe(Schema.positive()).annotations({ description: "Most tokens per LLM answer" })
  ),
  timeout_seconds: Schema.optional(
    Schema.Int.pipe(Schema.between(1, 86_400)).annotations({
      description: "Wall-clock budget of the run (default 600)"
    })
  ),
  require_tool_first: Schema.optional(
    Schema.Boolean.annotations({ description: "Remind the model once to use a tool if it answers without any" })
  ),
  allowed_tools: Schema.optional(
    Schema.Array(ToolGlob).annotations({
      description: "Tools that may run without asking, as `server__tool` or `tool`, `*` for any characters " +
        "(e.g. [\"fs__write_file\", \"memory__*\"]); wins over mcp.json and AGENT_TOOL_POLICY"
    })
  ),
  denied_tools: Schema.optional(
    Schema.Array(ToolGlob).annotations({
      description: "Tools the model must not see or use, same forms as allowed_tools; a deny beats an allow"
    })
  ),
  allow_writes: Schema.optional(
    Schema.Boolean.annotations({
      description: "Let tools that are not annotated read-only run without asking (default: they need the user's " +
        "approval, asked through the client when it supports elicitation, else refused)"
    })
  )
}

const render = (o: RunReport): string =>
  [
    o.answer,
    "",
    `— ${o.stopReason} after ${o.rounds} round(s), ${o.toolCalls.length} tool call(s) on ${
      o.servers.join(", ") || "no servers"
    }; model ${o.model}; ${o.durationMs} ms`,
    ...o.toolCalls.map((c) =>
      `  round ${c.round}: ${c.server}/${c.tool} ${c.ok ? "ok" : "error"} (${c.ms} ms)${
        c.approval !== undefined && c.approval !== "read_only" ? ` [${c.approval.replace("_", " ")}]` : ""
      }`
    ),
    budgetLine(o),
    ...o.warnings.map((w) => `warning: ${w}`)
  ].join("\n")

const RunInput = Schema.Struct(RunOptions)

/** A call that needs approval, asked as a form: what would run and why, and three answers. */
const askTheUser = (elicit: NonNullable<ToolContext["elicit"]>) => (r: ApprovalRequest) =>
  Effect.map(
    elicit({
      message: [
        `The local model wants to run ${r.tool} on the MCP server ${r.server}.`,
        `Arguments: ${r.arguments}`,
        `Its reason: ${r.why}`,
        `Why approval is needed: ${r.rule}.`
      ].join("\n"),
      requestedSchema: {
        type: "object",
        properties: {
          decision: {
            type: "string",
            title: `Run ${r.server}/${r.tool}?`,
            oneOf: [
              { const: "once", title: "Allow once" },
              { const: "run", title: "Allow for the rest of this run" },
              { const: "decline", title: "Decline" }
            ],
            default: "once"
          }
        },
        required: ["decision"]
      }
    }),
    (answer): ApprovalAnswer => {
      if (answer.action === "failed") return { _tag: "Failed", reason: answer.reason }
      if (answer.action !== "accept") return { _tag: "Decline" }
      const decision = answer.content?.decision
      return decision === "run" ? { _tag: "Run" } : decision === "decline" ? { _tag: "Decline" } : { _tag: "Once" }
    }
  )

/** Runs the loop on the named servers (all enabled ones when `names` is undefined). */
const runOn = (names: ReadonlyArray<string> | undefined, input: typeof RunInput.Type, ctx: ToolContext) =>
  Effect.gen(function*() {
    const loaded = yield* Effect.flatMap(McpConfig, (c) => c.load)
    const servers = yield* selectServers(loaded, names)
    const agent = yield* AgentLoop
    // MCP requires the progress value to increase with every notification: count events, not rounds.
    let events = 0
    const result = yield* agent.run(
      {
        servers,
        task: input.task,
        model: input.model,
        maxRounds: input.max_rounds,
        maxTokens: input.max_tokens,
        timeoutSeconds: input.timeout_seconds,
        requireToolFirst: input.require_tool_first,
        policy: callRules({
          allowedTools: input.allowed_tools,
          deniedTools: input.denied_tools,
          allowWrites: input.allow_writes
        }),
        approve: ctx.elicit === undefined ? undefined : askTheUser(ctx.elicit)
      },
      {
        round: (round, max) => ctx.progress(++events, `round ${round} of at most ${max}`),
        toolCall: (round, c) =>
          ctx.progress(++events, `round ${round}: ${c.server}/${c.tool} ${c.ok ? "ok" : "error"} (${c.ms} ms)`)
      }
    )
    return runReport(result, servers.map((s) => s.name))
  })

const listAvailableMcps = tool({
  name: "list_available_mcps",
  title: "List the MCP servers an agent can use",
  description:
    "List the MCP servers in the bridge's mcp.json that autonomous_with_mcp, autonomous_with_multiple_mcps and " +
    "autonomous_discover_and_execute can hand to the local model: which file was used and why, each server's name, transport and whether it is enabled.",
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  input: NoInput,
  output: Schema.Struct({
    config_file: Schema.String,
    reason: Schema.String,
    servers: Schema.Array(
      Schema.Struct({
        name: Schema.String,
        transport: Schema.Literal("stdio", "http"),
        enabled: Schema.Boolean,
        note: Schema.NullOr(Schema.String),
        target: Schema.String
      })
    )
  }),
  handler: () =>
    Effect.map(
      Effect.flatMap(McpConfig, (c) => c.load),
      (loaded) => ({
        config_file: loaded.file,
        reason: loaded.reason,
        servers: loaded.servers.map((s) => ({
          name: s.name,
          transport: s.transport,
          enabled: s.enabled,
          note: s.disabledReason ?? null,
          target: s.transport === "stdio" ? [s.command, ...s.args].join(" ") : redactUrl(s.url)
        }))
      })
    ),
  render: (o) =>
    [
      `${o.config_file} (${o.reason})`,
      ...o.servers.map((s) =>
        `${s.enabled ? "  " : "x "}${s.name} [${s.transport}] ${s.target}${s.note ? ` — ${s.note}` : ""}`
      )
    ].join("\n")
})

const autonomousWithMcp = tool({
  name: "autonomous_with_mcp",
  title: "Hand a task to a local model with one MCP server's tools",
  description:
    "Give a task to a local model in LM Studio, which works on it autonomously with the tools of one MCP server from mcp.json " +
    "(see list_available_mcps) and returns its answer. Use it to delegate tool-heavy work (reading files, searching, fetching) to a " +
    "local model. Tools their server annotates read-only run freely; any other tool needs the user's approval (asked through " +
    "the client when it supports elicitation, else refused to the model) unless allow_writes or allowed_tools lift it. Returns the answer, why it stopped, the rounds, every tool call (server, tool, ok, ms), the model, usage and warnings.",
  annotations: runAnnotations,
  input: Schema.Struct({
    mcp_name: Schema.String.annotations({ description: "The server's name in mcp.json" }),
    ...RunOptions
  }),
  output: RunReport,
  handler: (input, ctx) => runOn([input.mcp_name], input, ctx),
  render
})

const autonomousWithMultipleMcps = tool({
  name: "autonomous_with_multiple_mcps",
  title: "Hand a task to a local model with several MCP servers' tools",
  description:
    "Like autonomous_with_mcp, with the tools of several MCP servers at once (named `server__tool` for the model). A server that fails to " +
    "start leaves a warning and the others are still used.",
  annotations: runAnnotations,
  input: Schema.Struct({
    mcp_names: Schema.Array(Schema.String).pipe(Schema.minItems(1)).annotations({
      description: "Server names from mcp.json"
    }),
    ...RunOptions
  }),
  output: RunReport,
  handler: (input, ctx) => runOn(input.mcp_names, input, ctx),
  render
})

const autonomousDiscoverAndExecute = tool({
  name: "autonomous_discover_and_execute",
  title: "Hand a task to a local model with every MCP server's tools",
  description:
    "Like autonomous_with_mcp, with the tools of every enabled MCP server in mcp.json (never the bridge itself). Use it when you do " +
    "not know which server the task needs.",
  annotations: runAnnotations,
  input: RunInput,
  output: RunReport,
  handler: (input, ctx) => runOn(undefined, input, ctx),
  render
})

export const autonomousTools = [
  listAvailableMcps,
  autonomousWithMcp,
  autonomousWithMultipleMcps,
  autonomousDiscoverAndExecute
] as const
