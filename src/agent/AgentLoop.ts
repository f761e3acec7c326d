/**
 * AgentLoop: a local model works through the tools of child MCP servers until it answers (DESIGN §6). The loop itself
 * is `runLoop` (Loop.ts); this service wires its two ports to LM Studio and the child servers:
 *
 * - API: the Responses API with `previous_response_id` and `function_call_output` items when the server has it,
 *   else chat completions with the full history (AGENT_API forces one). `previous_response_not_found` replays the
 *   local transcript without the id.
 * - The model is validated before anything starts and leased for the whole run, so it cannot be TTL-unloaded
 *   mid-run; every LLM request of a run names that run's model.
 * - Tool calls: native first; the text fallback parser only when no native call came. Unknown tools, invalid
 *   arguments and tool errors go back to the model as results so it can recover. Results are capped in size.
 *   One round's calls run with bounded concurrency, each with its own timeout.
 * - Stops: `completed`, `max_rounds` (honoured exactly), `repeated_call` (the same call with the same arguments
 *   a third time), `budget` (wall clock), `error` (an LLM request failed after the run started; what was done is
 *   kept). A limit triggers one last round with tools off so the user still gets an answer. Interruption
 *   (cancellation) stops the LLM request and the child calls; the caller reports it.
 * - Think blocks are stripped from the answer and kept as reasoning. `require_tool_first` reminds a model that
 *   answers without having used any tool, once.
 */
import { Clock, Duration, Effect, Schema } from "effect"
import { AppConfig } from "../Config.js"
import type { BridgeOverloaded, LmStudioError } from "../domain/Errors.js"
import { nullable, optionalAsNull, wireKey } from "../domain/JsonShape.js"
import { type ChatMessage, type ToolDefinition, UsageCounts } from "../domain/Messages.js"
import { Admission } from "../lmstudio/Admission.js"
import { LmStudioClient } from "../lmstudio/LmStudioClient.js"
import type { LifecycleError } from "../lmstudio/LoadResult.js"
import { ModelCatalog } from "../lmstudio/ModelCatalog.js"
import { ModelLifecycle } from "../lmstudio/ModelLifecycle.js"
import { ChildServers, type ChildTool, START_CONCURRENCY } from "./ChildServers.js"
import {
  type LoopPorts,
  type LoopProgress,
  noProgress,
  type RequestedCall,
  runLoop,
  type RunResult,
  type Turn
} from "./Loop.js"
import type { ChildServerConfig } from "./McpConfig.js"
import { namespace, type NamespacedTool, parseTextToolCalls, toFunctionTool } from "./ToolCalls.js"

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
        detail: optionalAsNull("detail", Schema.String)
      })
    )
  ),
  model: Schema.String,
  api: Schema.Literal("responses", "chat"),
  usage: UsageCounts,
  durationMs: wireKey("duration_ms", Schema.Number),
  servers: Schema.Array(Schema.String),
  warnings: Schema.Array(Schema.String)
})
export type RunReport = typeof RunReport.Type

export const runReport = (r: RunResult, servers: ReadonlyArray<string>): RunReport => ({ ...r, servers })

// ---------------------------------------------------------------------------------------------------------------
// The service: the loop wired to LM Studio and the child servers
// ---------------------------------------------------------------------------------------------------------------

export interface RunRequest {
  readonly servers: ReadonlyArray<ChildServerConfig>
  readonly task: string
  readonly model?: string | undefined
  readonly maxRounds?: number | undefined
  readonly maxTokens?: number | undefined
  readonly timeoutSeconds?: number | undefined
  readonly requireToolFirst?: boolean | undefined
}

const SYSTEM =
  "You are an autonomous assistant. Use the tools when they help with the task; call several at once when they are " +
  "independent. When you have what you need, answer the task directly and completely, without calling more tools."

/** Sends one LLM request of a run to the model's current instance (see `HeldModel.request`). */
type Ask = <A>(
  send: (identifier: string) => Effect.Effect<A, LmStudioError>
) => Effect.Effect<A, LifecycleError | BridgeOverloaded>

export class AgentLoop extends Effect.Service<AgentLoop>()("lmstudio-bridge/AgentLoop", {
  dependencies: [
    Admission.Default,
    ChildServers.Default,
    LmStudioClient.Default,
    ModelCatalog.Default,
    ModelLifecycle.Default
  ],
  effect: Effect.gen(function*() {
    const config = yield* AppConfig
    const client = yield* LmStudioClient
    const admission = yield* Admission
    const catalog = yield* ModelCatalog
    const lifecycle = yield* ModelLifecycle
    const children = yield* ChildServers

    const run = (req: RunRequest, progress: LoopProgress = noProgress) =>
      Effect.gen(function*() {
        const t0 = yield* Clock.currentTimeMillis
        // The model first: a bad name fails before any child server starts.
        const found = yield* catalog.resolve(req.model)
        const maxRounds = Math.min(req.maxRounds ?? config.agentMaxRounds, config.agentMaxRoundsCap)
        const warnings: Array<string> = []
        if (req.maxRounds !== undefined && req.maxRounds > config.agentMaxRoundsCap) {
          warnings.push(
            `max_rounds ${req.maxRounds} is above the cap; used ${config.agentMaxRoundsCap} (AGENT_MAX_ROUNDS_CAP)`
          )
        }
        // Tools of every server that starts; one that fails gives a warning, not a failed run.
        const toolsets = yield* Effect.forEach(
          req.servers,
          (cfg) => Effect.map(Effect.either(children.toolsOf(cfg)), (r) => ({ cfg, r })),
          { concurrency: START_CONCURRENCY }
        )
        const all: Array<ChildTool> = []
        const configOf = new Map<string, ChildServerConfig>()
        for (const { cfg, r } of toolsets) {
          configOf.set(cfg.name, cfg)
          if (r._tag === "Right") all.push(...r.right)
          else {warnings.push(
              `partial toolset: MCP server ${cfg.name} is not available (${r.left._tag}: ${r.left.message})`
            )}
        }
        const named = namespace(all)
        const byName = new Map<string, NamespacedTool>(named.map((t) => [t.name, t]))
        const tools: ReadonlyArray<ToolDefinition> = named.map(toFunctionTool)
        const known = new Set(byName.keys())
        const api = config.agentApi !== "auto" ? config.agentApi : (yield* client.apis).responses ? "responses" : "chat"

        const execute: LoopPorts<never>["execute"] = (call) => {
          const target = byName.get(call.name)
          if (target === undefined) {
            return Effect.succeed({
              ok: false,
              server: "",
              tool: call.name,
              text: `Unknown tool ${JSON.stringify(call.name)}. Available tools: ${[...known].join(", ") || "none"}.`
            })
          }
          const { server, name } = target.tool
          let args: unknown
          try {
            args = call.arguments.trim() === "" ? {} : (JSON.parse(call.arguments) as unknown)
          } catch (e) {
            return Effect.succeed({
              ok: false,
              server,
              tool: name,
              text: `The arguments are not valid JSON (${
                e instanceof Error ? e.message : String(e)
              }); call ${call.name} again with a JSON object.`
            })
          }
          if (typeof args !== "object" || args === null || Array.isArray(args)) {
            return Effect.succeed({
              ok: false,
              server,
              tool: name,
              text: `The arguments must be a JSON object; call ${call.name} again.`
            })
          }
          return children.callTool(configOf.get(server)!, name, args as Record<string, unknown>).pipe(
            Effect.map((o) => ({ ok: o.ok, server, tool: name, text: o.text })),
            Effect.catchAll((e) =>
              Effect.succeed({ ok: false, server, tool: name, text: `${e._tag}: ${e.message}. ${e.hint}` })
            )
          )
        }

        const result = yield* lifecycle.withModel({ model: found.instance?.id ?? found.model.key }, (held) => {
          // Each LLM request goes to the instance that serves the model now (re-ensured once if LM Studio dropped it
          // between rounds) and waits for one of its permits (DESIGN §6 "Concurrency").
          const ask = <A>(send: (identifier: string) => Effect.Effect<A, LmStudioError>) =>
            held.request((m) => admission.run(m.identifier, m.parallel, send(m.identifier)))
          const turn = api === "responses" ? responsesPorts(ask) : chatPorts(ask)
          return runLoop(
            { turn, execute, known },
            {
              maxRounds,
              budget: req.timeoutSeconds !== undefined ? Duration.seconds(req.timeoutSeconds) : config.agentBudget,
              concurrency: config.agentToolConcurrency,
              resultChars: config.agentToolResultChars,
              requireToolFirst: req.requireToolFirst === true
            },
            progress
          )
        })
        const { error, ...rest } = result
        if (error !== undefined) warnings.push(`the run stopped on an error: ${error}`)
        return {
          ...rest,
          model: result.model || found.instance?.id || found.model.key,
          api,
          warnings,
          durationMs: (yield* Clock.currentTimeMillis) - t0
        } satisfies RunResult

        /** Chat completions with the full history. */
        function chatPorts(ask: Ask): LoopPorts<LifecycleError | BridgeOverloaded>["turn"] {
          const messages: Array<ChatMessage> = [
            { role: "system", content: SYSTEM },
            { role: "user", content: req.task }
          ]
          let textCalls = 0
          return ({ results, note, toolsOn }) =>
            Effect.gen(function*() {
              for (const r of results) messages.push({ role: "tool", content: r.output, tool_call_id: r.call.id })
              if (note !== undefined) messages.push({ role: "user", content: note })
              const sent = [...messages]
              const res = yield* ask((model) =>
                client.chat({
                  model,
                  messages: sent,
                  ...(toolsOn && tools.length > 0 ? { tools, toolChoice: "auto" as const } : {}),
                  ...(req.maxTokens !== undefined ? { maxTokens: req.maxTokens } : {})
                })
              )
              let calls: ReadonlyArray<RequestedCall> = toolsOn
                ? res.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments }))
                : []
              if (toolsOn && calls.length === 0) {
                calls = parseTextToolCalls(res.content, known).map((c) => ({ id: `text_call_${++textCalls}`, ...c }))
              }
              messages.push({
                role: "assistant",
                content: res.content,
                ...(calls.length > 0
                  ? { tool_calls: calls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments })) }
                  : {})
              })
              return {
                text: res.content,
                reasoning: res.reasoning,
                calls,
                model: res.model,
                usage: res.usage
              } satisfies Turn
            })
        }

        /** The Responses API, chained with previous_response_id; the local transcript replays it when needed. */
        function responsesPorts(ask: Ask): LoopPorts<LifecycleError | BridgeOverloaded>["turn"] {
          const transcript: Array<unknown> = [{ role: "user", content: req.task }]
          let previous: string | undefined
          let textCalls = 0
          return ({ results, note, toolsOn }) =>
            Effect.gen(function*() {
              const items: Array<unknown> = []
              for (const r of results) {
                items.push(
                  r.call.id.startsWith("text_call_")
                    ? { role: "user", content: `Result of ${r.call.name}: ${r.output}` }
                    : { type: "function_call_output", call_id: r.call.id, output: r.output }
                )
              }
              if (note !== undefined) items.push({ role: "user", content: note })
              transcript.push(...items)
              const settings = {
                instructions: SYSTEM,
                ...(toolsOn && tools.length > 0 ? { tools, toolChoice: "auto" as const } : {}),
                ...(req.maxTokens !== undefined ? { maxOutputTokens: req.maxTokens } : {})
              }
              const replay = [...transcript]
              const chained = previous
              const res = yield* ask((model) =>
                (chained === undefined
                  ? client.respond({ ...settings, model, input: replay })
                  : client.respond({ ...settings, model, input: items, previousResponseId: chained })).pipe(
                    Effect.catchTag("PreviousResponseNotFound", () =>
                      Effect.logWarning("LM Studio lost the previous response; replaying the transcript").pipe(
                        Effect.zipRight(client.respond({ ...settings, model, input: replay }))
                      ))
                  )
              )
              previous = res.id
              let calls: ReadonlyArray<RequestedCall> = toolsOn
                ? res.functionCalls.map((c) => ({ id: c.callId, name: c.name, arguments: c.arguments }))
                : []
              if (toolsOn && calls.length === 0) {
                calls = parseTextToolCalls(res.outputText, known).map((c) => ({ id: `text_call_${++textCalls}`, ...c }))
              }
              if (res.outputText !== "") transcript.push({ role: "assistant", content: res.outputText })
              for (const c of calls) {
                if (!c.id.startsWith("text_call_")) {
                  transcript.push({ type: "function_call", call_id: c.id, name: c.name, arguments: c.arguments })
                }
              }
              return {
                text: res.outputText,
                reasoning: res.reasoning,
                calls,
                model: res.model,
                usage: res.usage
              } satisfies Turn
            })
        }
      }).pipe(Effect.withSpan("AgentLoop.run", {
        captureStackTrace: false,
        attributes: { servers: req.servers.map((s) => s.name).join(","), model: req.model ?? "(default)" }
      }))

    return { run } as const
  })
}) {}
