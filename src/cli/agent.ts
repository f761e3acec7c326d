/**
 * `lmstudio-bridge mcps list` and `lmstudio-bridge agent run`: the autonomous agent from the command line, over the
 * same services as the MCP tools. On a TTY the rounds and tool calls are shown live on stderr.
 */
import { Args, Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { AgentLoop, budgetLine, RunReport, runReport } from "../agent/AgentLoop.js"
import { McpConfig, selectServers } from "../agent/McpConfig.js"
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
            s.transport === "stdio" ? [s.command, ...s.args].join(" ") : s.url
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
            timeoutSeconds: Option.getOrUndefined(flags.timeout)
          },
          {
            round: (round, max) => (live ? note(`round ${round}/${max}`) : Effect.void),
            toolCall: (
              _,
              c
            ) => (live ? note(`  ${c.server}/${c.tool} ${c.ok ? "ok" : "error"} (${c.ms} ms)`) : Effect.void)
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
