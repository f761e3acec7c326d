/**
 * `lmstudio-bridge mcps list` and `lmstudio-bridge agent run`: the autonomous agent from the command line, over the
 * same services as the MCP tools. On a TTY the rounds and tool calls are shown live on stderr.
 */
import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Effect, Option } from "effect"
import { AgentLoop } from "../agent/AgentLoop.js"
import { McpConfig, selectServers } from "../agent/McpConfig.js"
import { budgetLine, RunReport, runReport } from "../agent/RunReport.js"
import { callRules } from "../agent/ToolPolicy.js"
import { redactUrl } from "../domain/Redact.js"
import { isToolGlob, TOOL_GLOB_RULE } from "../domain/ToolRules.js"
import {
  type AppLayerFactory,
  baseUrl,
  json,
  model,
  note,
  optionalInteger,
  printEncoded,
  printJson,
  printLine,
  withApp
} from "./Shared.js"

const mcpsList = (appLayer: AppLayerFactory) =>
  Command.make("list", { baseUrl, json }, (flags) =>
    Effect.gen(function*() {
      const loaded = yield* (yield* McpConfig).load
      if (flags.json) {
        return yield* printJson({
          config_file: loaded.file,
          reason: loaded.reason,
          servers: loaded.servers.map((s) => ({
            name: s.name,
            transport: s.transport,
            enabled: s.enabled,
            note: s.disabledReason ?? null
          }))
        })
      }
      yield* printLine(`${loaded.file} (${loaded.reason})`)
      for (const s of loaded.servers) {
        yield* printLine(
          `${s.enabled ? "  " : "x "}${s.name} [${s.transport}] ${
            s.transport === "stdio" ? [s.command, ...s.args].join(" ") : redactUrl(s.url)
          }${s.disabledReason ? ` — ${s.disabledReason}` : ""}`
        )
      }
    })).pipe(
      Command.withDescription("List the MCP servers of mcp.json an agent can use (and which file, and why)"),
      withApp(appLayer)
    )

const mcp = Options.text("mcp").pipe(
  Options.withDescription("An MCP server from mcp.json (repeat for several)"),
  Options.repeated
)
const all = Options.boolean("all").pipe(Options.withDescription("Use every enabled server of mcp.json"))
const toolGlob = (name: string, description: string) =>
  Options.text(name).pipe(
    Options.withDescription(description),
    Options.repeated,
    Options.mapEffect((globs) => {
      const bad = globs.find((g) => !isToolGlob(g))
      return bad === undefined
        ? Effect.succeed(globs)
        : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--${name} ${JSON.stringify(bad)}: ${TOOL_GLOB_RULE}`)))
    })
  )
const allow = toolGlob(
  "allow",
  "A tool that may run without asking: server__tool or tool, * for any characters (repeat for several)"
)
const deny = toolGlob("deny", "A tool the model must not see or use, same forms as --allow (repeat for several)")
const allowWrites = Options.boolean("allow-writes").pipe(
  Options.withDescription(
    "Let tools that are not annotated read-only run (without it they are refused: the CLI cannot ask)"
  )
)
const task = Args.text({ name: "task" }).pipe(Args.withDescription("What the local model should do"))

const agentRun = (appLayer: AppLayerFactory) =>
  Command.make(
    "run",
    {
      mcp,
      all,
      model,
      maxRounds: optionalInteger("max-rounds", "Most LLM rounds (default 25)"),
      timeout: optionalInteger("timeout", "Budget of the run in seconds (default 600)"),
      allow,
      deny,
      allowWrites,
      baseUrl,
      json,
      task
    },
    (flags) =>
      Effect.gen(function*() {
        const loaded = yield* (yield* McpConfig).load
        const servers = yield* selectServers(loaded, flags.all || flags.mcp.length === 0 ? undefined : flags.mcp)
        const live = process.stderr.isTTY && !flags.json
        const result = yield* (yield* AgentLoop).run(
          {
            servers,
            task: flags.task,
            model: Option.getOrUndefined(flags.model),
            maxRounds: Option.getOrUndefined(flags.maxRounds),
            timeoutSeconds: Option.getOrUndefined(flags.timeout),
            policy: callRules({
              allowedTools: flags.allow,
              deniedTools: flags.deny,
              allowWrites: flags.allowWrites ? true : undefined
            })
          },
          {
            round: (round, max) => (live ? note(`round ${round}/${max}`) : Effect.void),
            toolCall: (
              _,
              c
            ) =>
              live
                ? note(
                  `  ${c.server}/${c.tool} ${c.ok ? "ok" : "error"} (${c.ms} ms)${
                    c.approval !== undefined && !["read_only", "policy"].includes(c.approval) ? ` [${c.approval}]` : ""
                  }`
                )
                : Effect.void
          }
        )
        if (flags.json) return yield* printEncoded(RunReport, runReport(result, servers.map((s) => s.name)))
        yield* printLine(result.answer)
        yield* note(
          `${result.stopReason} after ${result.rounds} round(s), ${result.toolCalls.length} tool call(s); model ${result.model}; ${result.durationMs} ms`
        )
        yield* note(budgetLine(result).trim())
        for (const w of result.warnings) yield* note(`warning: ${w}`)
      })
  ).pipe(
    Command.withDescription(
      "Hand a task to a local model that works through the tools of MCP servers from mcp.json (--mcp NAME…, or --all)"
    ),
    withApp(appLayer)
  )

export const mcpsCommand = (appLayer: AppLayerFactory) =>
  Command.make("mcps").pipe(
    Command.withDescription("The MCP servers an agent can use"),
    Command.withSubcommands([mcpsList(appLayer)])
  )

export const agentCommand = (appLayer: AppLayerFactory) =>
  Command.make("agent").pipe(
    Command.withDescription("Autonomous runs of a local model over MCP servers"),
    Command.withSubcommands([agentRun(appLayer)])
  )
