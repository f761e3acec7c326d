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
import { Clock, Duration, Effect, Random } from "effect"
import { AppConfig } from "../Config.js"
import { type BridgeOverloaded, ContextOverflow, isExplained, type LmStudioError } from "../domain/Errors.js"
import { AgentRunFailed, McpServerFailedToStart } from "../domain/McpErrors.js"
import type { ToolDefinition } from "../domain/Messages.js"
import { estimateTokens } from "../domain/Tokens.js"
import { Admission } from "../lmstudio/Admission.js"
import { LmStudioClient } from "../lmstudio/LmStudioClient.js"
import type { LifecycleError, LoadResult } from "../lmstudio/LoadResult.js"
import { ModelCatalog } from "../lmstudio/ModelCatalog.js"
import { ModelLifecycle } from "../lmstudio/ModelLifecycle.js"
import { record as recordMetric } from "../observability/Metrics.js"
import { tracingEnabled } from "../observability/Tracing.js"
import { approvals } from "./Approvals.js"
import {
  answerReserve,
  assistantEntry,
  type Entry,
  fit,
  type Fitted,
  INITIAL_SCALE,
  noteEntry,
  PER_MESSAGE,
  resultEntry,
  taskEntry
} from "./Budget.js"
import { ChildServers, type ChildTool, START_CONCURRENCY } from "./ChildServers.js"
import {
  type Approval,
  type LoopPorts,
  type LoopProgress,
  noProgress,
  type RequestedCall,
  runLoop,
  type Turn
} from "./Loop.js"
import type { ChildServerConfig } from "./McpConfig.js"
import type { RunResult } from "./RunReport.js"
import { observeRun, observeToolCall, roundSpan } from "./RunTelemetry.js"
import {
  fenceResult,
  namespace,
  type NamespacedTool,
  parseTextToolCalls,
  toFunctionTool,
  UNTRUSTED_NOTE
} from "./ToolCalls.js"
import {
  byScore,
  chooseTools,
  definitionTokens,
  FIND_TOOLS,
  findToolsAnswer,
  findToolsDefinition,
  type Offer
} from "./ToolChoice.js"
import { type Approver, decide, type Decision, NO_RULES, type PolicyRules } from "./ToolPolicy.js"
import { type Ranker, ToolRanking } from "./ToolRanking.js"
import { chatMessageOf, responseItemsOf } from "./TranscriptWire.js"

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
  /** The call's tool policy (`allowed_tools`, `denied_tools`, `allow_writes`); mcp.json and AGENT_TOOL_POLICY follow. */
  readonly policy?: PolicyRules | undefined
  /** Asks the user about a call that needs approval; without it such calls are refused to the model. */
  readonly approve?: Approver | undefined
}

const SYSTEM =
  "You are an autonomous assistant. Use the tools when they help with the task; call several at once when they are " +
  "independent. When you have what you need, answer the task directly and completely, without calling more tools. " +
  UNTRUSTED_NOTE

const SYSTEM_TOKENS = estimateTokens(SYSTEM) + PER_MESSAGE

/** Characters of the task, and of the model's newest words, that the tool ranking reads. */
const QUERY_CHARS = 2000

/** Sends one LLM request of a run to the model's current instance (see `HeldModel.request`). */
type Ask = <A>(
  send: (instance: LoadResult) => Effect.Effect<A, LmStudioError>
) => Effect.Effect<A, LifecycleError | BridgeOverloaded>

/** One round's request, fitted: what to send and the tools to offer. */
interface Prepared {
  readonly fitted: Fitted
  readonly tools: ReadonlyArray<ToolDefinition>
}

export class AgentLoop extends Effect.Service<AgentLoop>()("lmstudio-bridge/AgentLoop", {
  dependencies: [
    Admission.Default,
    ChildServers.Default,
    LmStudioClient.Default,
    ModelCatalog.Default,
    ModelLifecycle.Default,
    ToolRanking.Default
  ],
  effect: Effect.gen(function*() {
    const config = yield* AppConfig
    const tracing = tracingEnabled(config)
    const client = yield* LmStudioClient
    const admission = yield* Admission
    const catalog = yield* ModelCatalog
    const lifecycle = yield* ModelLifecycle
    const children = yield* ChildServers
    const ranking = yield* ToolRanking
    // A child tool's definition as offered, and its tokens, computed once while its server's connection lives.
    const definitionCache = new WeakMap<ChildTool, Map<string, { definition: ToolDefinition; tokens: number }>>()
    const offeredAs = (t: NamespacedTool) => {
      const byName = definitionCache.get(t.tool) ?? new Map<string, { definition: ToolDefinition; tokens: number }>()
      definitionCache.set(t.tool, byName)
      const hit = byName.get(t.name)
      if (hit !== undefined) return hit
      const definition = toFunctionTool(t)
      const made = { definition, tokens: definitionTokens(definition) }
      byName.set(t.name, made)
      return made
    }

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
        const failed: Array<{ server: string; reason: string }> = []
        for (const { cfg, r } of toolsets) {
          configOf.set(cfg.name, cfg)
          if (r._tag === "Right") all.push(...r.right)
          else {
            failed.push({ server: cfg.name, reason: `${r.left._tag}: ${r.left.message}` })
            warnings.push(`partial toolset: MCP server ${cfg.name} is not available (${failed.at(-1)!.reason})`)
          }
        }
        // Servers were named and none started: nothing for the model to work with, and nothing is sent.
        if (req.servers.length > 0 && failed.length === req.servers.length) {
          return yield* new McpServerFailedToStart({ servers: failed })
        }
        // The tool policy, decided once per tool: denied tools are never offered; others run or ask when called.
        const policy = {
          call: req.policy ?? NO_RULES,
          entries: new Map(req.servers.map((cfg) => [cfg.name, cfg.policy])),
          config: config.agentToolPolicy
        }
        const decisionOf = new Map<string, Decision>()
        const everyTool = namespace(all)
        for (const t of everyTool) {
          decisionOf.set(
            t.name,
            decide(policy, { server: t.tool.server, tool: t.tool.name, offeredAs: t.name, readOnly: t.tool.readOnly })
          )
        }
        const denied = everyTool.filter((t) => decisionOf.get(t.name)?._tag === "Deny")
        const named = everyTool.filter((t) => decisionOf.get(t.name)?._tag !== "Deny")
        const byName = new Map<string, NamespacedTool>(named.map((t) => [t.name, t]))
        const deniedByName = new Map(denied.map((t) => [t.name, t]))
        const offered = named.map(offeredAs)
        const definitions: ReadonlyArray<ToolDefinition> = offered.map((o) => o.definition)
        const definitionOf = new Map(definitions.map((d) => [d.name, d]))
        const names = definitions.map((d) => d.name)
        const tokensOf = offered.map((o) => o.tokens)
        const toolTokens = tokensOf.reduce((a, b) => a + b, 0)
        const known = new Set([...byName.keys(), ...deniedByName.keys(), FIND_TOOLS])
        // Fences tool results as data; the nonce keeps text inside from closing the fence.
        const nonce = (yield* Random.nextInt).toString(36).replace("-", "").padStart(6, "0").slice(-6)
        // Calls that need approval ask the user within what is left of the run's budget.
        const gate = yield* approvals({
          approve: req.approve,
          deadline: t0 + Duration.toMillis(
            req.timeoutSeconds !== undefined ? Duration.seconds(req.timeoutSeconds) : config.agentBudget
          ),
          warnings,
          lastWords: () => entries.filter((e) => e._tag === "Assistant").at(-1)?.text.trim() ?? ""
        })
        const api = config.agentApi !== "auto" ? config.agentApi : (yield* client.apis).responses ? "responses" : "chat"

        // What the budget and the tool choice keep across rounds.
        const entries: Array<Entry> = [taskEntry(req.task)]
        const kept = new Set<string>()
        const offeredEver: Array<string> = []
        const foundByModel: Array<string> = []
        const compactedIds = new Set<string>()
        let scale = INITIAL_SCALE
        let servedContext: number | undefined
        let largest = 0
        let droppedMost = 0
        const chosen: { by: "all" | "bm25" | "embeddings" } = { by: "all" }
        let contextSeen: { readonly length: number; readonly source: "instance" | "default" } | undefined
        let ranker: Ranker | undefined
        let order: ReadonlyArray<number> | undefined
        let rankedFor: string | undefined
        let round = 0

        const rankerNow = Effect.suspend(() =>
          ranker !== undefined ? Effect.succeed(ranker) : Effect.tap(ranking.ranker(definitions), (r) => {
            ranker = r
          })
        )

        /** Scores of every tool for a query; a fallback from embeddings to BM25 is said once in the warnings. */
        const scoresFor = (query: string) =>
          Effect.flatMap(rankerNow, (r) => r.scores(query)).pipe(
            Effect.tap((s) =>
              Effect.sync(() => {
                if (s.problem !== undefined && !warnings.some((w) => w.startsWith("tool ranking"))) {
                  warnings.push(`tool ranking fell back to BM25: the embedding model failed (${s.problem})`)
                }
              })
            )
          )

        /** The ranking of the tools for this round (task and the newest assistant text), when a choice is needed. */
        const rankFor = (context: number) =>
          Effect.gen(function*() {
            if (toolTokens <= config.agentToolsBudgetShare * context) return
            // A task that cannot fit even with find_tools alone fails in `prepare`; nothing goes out for it.
            const alone = fit({
              context,
              reserve: answerReserve(context, req.maxTokens),
              fixed: SYSTEM_TOKENS + definitionTokens(findToolsDefinition),
              entries: entries.filter((e) => e._tag === "Task"),
              scale
            })
            if ("_tag" in alone) return
            const said = entries.filter((e) => e._tag === "Assistant").map((e) => e.text).filter((t) => t !== "")
            const query = `${req.task.slice(0, QUERY_CHARS)}\n${said[said.length - 1]?.slice(0, QUERY_CHARS) ?? ""}`
              .trim()
            // The same query as the round before ranks the same.
            if (query === rankedFor && order !== undefined) return
            const scored = yield* scoresFor(query)
            order = byScore(scored.scores)
            rankedFor = query
            chosen.by = scored.via
          })

        const contextOf = (m: LoadResult) => {
          const seen = m.contextLength !== undefined
            ? { length: m.contextLength, source: "instance" as const }
            : { length: config.contextDefaultTokens, source: "default" as const }
          contextSeen ??= seen
          // LM Studio may give a request less than the loaded context (parallel slots): what its refusal said counts.
          return Math.min(seen.length, servedContext ?? Number.POSITIVE_INFINITY)
        }

        /** The tools to offer within `limit` tokens of definitions. */
        const offerWithin = (limit: number): Offer =>
          chooseTools({ names, tokens: tokensOf, order: order ?? names.map((_, i) => i), kept, limit })

        /** Fits this round's request to the context; a task that cannot fit even with the fewest tools overflows. */
        const prepare = (m: LoadResult, toolsOn: boolean): Effect.Effect<Prepared, ContextOverflow> =>
          Effect.suspend(() => {
            const context = contextOf(m)
            const reserve = answerReserve(context, req.maxTokens)
            const attempt = (offer: Offer | undefined) =>
              fit({ context, reserve, fixed: SYSTEM_TOKENS + (offer?.tokens ?? 0), entries, scale })
            const usable = toolsOn && definitions.length > 0
            let offer = usable ? offerWithin(Math.floor(config.agentToolsBudgetShare * context)) : undefined
            let fitted = attempt(offer)
            // A long task leaves little room: offer only find_tools and the tools already used before giving up.
            if ("_tag" in fitted && offer !== undefined && !offer.all) {
              offer = offerWithin(0)
              fitted = attempt(offer)
            }
            if ("_tag" in fitted) {
              return Effect.zipRight(
                recordMetric((r) => r.update("contextOverflows", 1, ["bridge"])),
                Effect.fail(
                  new ContextOverflow({
                    model: m.identifier,
                    tokensNeeded: fitted.needed,
                    tokensAvailable: fitted.available,
                    detail: `counted before sending: the system prompt, the task${
                      offer !== undefined ? ` and ${offer.names.length} tool definitions` : ""
                    } with ${reserve} tokens kept for the answer need about ${fitted.needed} tokens against ${
                      contextSeen?.source === "default"
                        ? `CONTEXT_DEFAULT_TOKENS (${context}; LM Studio did not report the instance's context)`
                        : `the loaded context of ${context}`
                    }; nothing was sent to LM Studio`
                  })
                )
              )
            }
            const result = fitted
            largest = Math.max(largest, Math.ceil(result.tokens * scale))
            droppedMost = Math.max(droppedMost, result.dropped)
            if (!result.unchanged) {
              const before = new Map(entries.flatMap((e) => (e._tag === "Result" ? [[e.call.id, e.text]] : [])))
              for (const e of result.entries) {
                if (e._tag === "Result" && before.get(e.call.id) !== e.text) compactedIds.add(e.call.id)
              }
            }
            const tools = offer === undefined
              ? []
              : offer.all
              ? definitions
              : offer.names.map((n) => (n === FIND_TOOLS ? findToolsDefinition : definitionOf.get(n)!))
            if (offer !== undefined && !offer.all && chosen.by === "all") chosen.by = "bm25"
            for (const t of tools) if (!offeredEver.includes(t.name)) offeredEver.push(t.name)
            return Effect.as(
              result.unchanged ? Effect.void : recordMetric((r) => {
                if (result.compacted > 0) r.update("contextCompactions", 1, ["shorten"])
                if (result.dropped > 0) r.update("contextCompactions", 1, ["drop"])
              }),
              { fitted: result, tools }
            )
          })

        /**
         * Sends a fitted request; when LM Studio still counts more than the context (its tokenizer counts above the
         * estimate, or slots share the context), the estimate is scaled up to LM Studio's count and the round is fitted
         * and sent once more.
         */
        const sendFitted = <A>(
          m: LoadResult,
          toolsOn: boolean,
          send: (p: Prepared) => Effect.Effect<A, LmStudioError>
        ): Effect.Effect<A, LmStudioError> =>
          Effect.flatMap(prepare(m, toolsOn), (p) =>
            send(p).pipe(
              Effect.catchTag("ContextOverflow", (e) => {
                const before = contextOf(m)
                if (e.tokensAvailable > 0 && e.tokensAvailable < before) servedContext = e.tokensAvailable
                scale = Math.max(scale * 1.1, (e.tokensNeeded / Math.max(1, p.fitted.tokens)) * 1.05)
                warnings.push(
                  `LM Studio counted ${e.tokensNeeded} prompt tokens against a context of ${e.tokensAvailable} where the ` +
                    `bridge estimated ${p.fitted.tokens} against ${before}; the round was fitted again ` +
                    `to ${contextOf(m)} tokens with estimates scaled by ${scale.toFixed(2)}`
                )
                return Effect.flatMap(prepare(m, toolsOn), send)
              })
            ))

        /** Records a round's results and note in the transcript before its request. */
        const record = (
          results: ReadonlyArray<{ readonly call: RequestedCall; readonly output: string }>,
          note: string | undefined
        ) => {
          for (const r of results) {
            const target = byName.get(r.call.name)
            const from = target === undefined ? r.call.name : `${target.tool.server}/${target.tool.name}`
            entries.push(resultEntry(round, r.call, fenceResult(nonce, from, r.output)))
            if (byName.has(r.call.name)) kept.add(r.call.name)
          }
          if (note !== undefined) entries.push(noteEntry(note))
          round++
        }

        const findTools = (call: RequestedCall, args: Record<string, unknown>) =>
          Effect.gen(function*() {
            const query = typeof args.query === "string" ? args.query.trim().slice(0, QUERY_CHARS) : ""
            if (query === "") {
              return {
                ok: false,
                server: "bridge",
                tool: FIND_TOOLS,
                text: "find_tools needs a `query`: what the tool should do."
              }
            }
            const limit = typeof args.limit === "number" && Number.isInteger(args.limit)
              ? Math.min(20, Math.max(1, args.limit))
              : 8
            const scored = yield* scoresFor(query)
            const matches = byScore(scored.scores).filter((i) => scored.scores[i]! > 0).slice(0, limit)
            const offeredNow = new Set(offeredEver)
            for (const i of matches) {
              const name = names[i]!
              kept.add(name)
              if (!foundByModel.includes(name)) foundByModel.push(name)
            }
            return {
              ok: true,
              server: "bridge",
              tool: call.name,
              text: findToolsAnswer(matches.map((i) => definitions[i]!), offeredNow)
            }
          })

        const execute: LoopPorts<never>["execute"] = (call) =>
          observeToolCall(tracing, call.name)(executeUnobserved(call))
        const executeUnobserved: LoopPorts<never>["execute"] = (call) => {
          let args: unknown
          try {
            args = call.arguments.trim() === "" ? {} : (JSON.parse(call.arguments) as unknown)
          } catch (e) {
            args = e instanceof Error ? e : new Error(String(e))
          }
          const target = byName.get(call.name)
          const refused = deniedByName.get(call.name)
          if (refused !== undefined) {
            const by = decisionOf.get(call.name)?.by ?? "denied"
            return Effect.succeed({
              ok: false,
              server: refused.tool.server,
              tool: refused.tool.name,
              approval: "denied" as const,
              text: `${call.name} is not allowed in this run (${by}). Do the task without it, or say what you ` +
                `would need it for in your answer.`
            })
          }
          if (target === undefined && call.name !== FIND_TOOLS) {
            return Effect.succeed({
              ok: false,
              server: "",
              tool: call.name,
              text: `Unknown tool ${JSON.stringify(call.name)}. ${
                definitions.length > offeredEver.length
                  ? `Search the tools with ${FIND_TOOLS}, or use one of: ${offeredEver.join(", ")}.`
                  : `Available tools: ${[...known].filter((n) => n !== FIND_TOOLS).join(", ") || "none"}.`
              }`
            })
          }
          const server = target?.tool.server ?? "bridge"
          const name = target?.tool.name ?? FIND_TOOLS
          if (args instanceof Error) {
            return Effect.succeed({
              ok: false,
              server,
              tool: name,
              text: `The arguments are not valid JSON (${args.message}); call ${call.name} again with a JSON object.`
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
          const object = args as Record<string, unknown>
          if (target === undefined) return findTools(call, object)
          const callChild = (approval: Approval) =>
            children.callTool(configOf.get(server)!, name, object).pipe(
              Effect.map((o) => ({ ok: o.ok, server, tool: name, text: o.text, approval })),
              Effect.catchAll((e) =>
                Effect.succeed({ ok: false, server, tool: name, approval, text: `${e._tag}: ${e.message}. ${e.hint}` })
              )
            )
          const decision = decisionOf.get(call.name)
          if (decision === undefined || decision._tag === "Run") {
            return callChild(decision?.via ?? "policy")
          }
          return Effect.flatMap(
            gate(call, target, object, decision.by),
            (answer) =>
              answer.run ? callChild("user") : Effect.succeed({ ok: false, server, tool: name, ...answer.refusal })
          )
        }

        const result = yield* lifecycle.withModel({ model: found.instance?.id ?? found.model.key }, (held) => {
          // Each LLM request goes to the instance that serves the model now (re-ensured once if LM Studio dropped it
          // between rounds) and waits for one of its permits (DESIGN §6 "Concurrency").
          const ask: Ask = (send) => held.request((m) => admission.run(m.identifier, m.parallel, send(m)))
          const current = () => contextOf(held.current())
          const turn = api === "responses" ? responsesPorts(ask, current) : chatPorts(ask, current)
          return runLoop(
            { turn, execute, known, round: roundSpan(tracing) },
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
        if (error !== undefined) {
          const explained = isExplained(error) ? error : undefined
          const tag = explained?._tag ?? "Error"
          const reason = explained?.message ?? String(error)
          // No answer: the run failed, and says what it did.
          if (rest.answer === "") {
            return yield* new AgentRunFailed({
              error: tag,
              reason,
              causeHint: explained?.hint ?? "The bridge's log on stderr has details.",
              rounds: rest.rounds,
              toolCalls: rest.toolCalls.map((c) => ({ round: c.round, server: c.server, tool: c.tool, ok: c.ok }))
            })
          }
          warnings.push(`the run stopped on an error: ${tag}: ${reason}`)
        }
        const seen = contextSeen ?? { length: config.contextDefaultTokens, source: "default" as const }
        const context = { ...seen, length: Math.min(seen.length, servedContext ?? Number.POSITIVE_INFINITY) }
        return {
          ...rest,
          model: result.model || found.instance?.id || found.model.key,
          api,
          warnings,
          context: {
            ...context,
            reservedForAnswer: answerReserve(context.length, req.maxTokens),
            largestPrompt: largest,
            compacted: compactedIds.size,
            droppedRounds: droppedMost
          },
          tools: {
            total: definitions.length,
            offered: offeredEver,
            ranking: chosen.by,
            embeddingModel: chosen.by === "embeddings" ? ranker?.model : undefined,
            found: foundByModel,
            denied: denied.map((t) => t.name),
            approvalNeeded: named.filter((t) => decisionOf.get(t.name)?._tag === "Ask").map((t) => t.name)
          },
          durationMs: (yield* Clock.currentTimeMillis) - t0
        } satisfies RunResult

        /**
         * A turn from an answer: its calls (native first, else the ones it wrote as text), recorded in the transcript.
         */
        function answered(
          answer: {
            readonly native: ReadonlyArray<RequestedCall>
            readonly text: string
            readonly reasoning: string | undefined
            readonly model: string
            readonly usage: Turn["usage"]
          },
          toolsOn: boolean,
          next: () => string
        ): Turn {
          const calls: ReadonlyArray<RequestedCall> = !toolsOn
            ? []
            : answer.native.length > 0
            ? answer.native
            : parseTextToolCalls(answer.text, known).map((c) => ({ id: next(), ...c }))
          entries.push(assistantEntry(round, answer.text, calls))
          return { text: answer.text, reasoning: answer.reasoning, calls, model: answer.model, usage: answer.usage }
        }

        /** Chat completions with the whole (fitted) history every round. */
        function chatPorts(ask: Ask, current: () => number): LoopPorts<LifecycleError | BridgeOverloaded>["turn"] {
          let textCalls = 0
          return ({ results, note, toolsOn }) =>
            Effect.gen(function*() {
              record(results, note)
              if (toolsOn) yield* rankFor(current())
              const res = yield* ask((m) =>
                sendFitted(m, toolsOn, (p) =>
                  client.chat({
                    model: m.identifier,
                    messages: [{ role: "system", content: SYSTEM }, ...p.fitted.entries.map(chatMessageOf)],
                    ...(p.tools.length > 0 ? { tools: p.tools, toolChoice: "auto" as const } : {}),
                    ...(req.maxTokens !== undefined ? { maxTokens: req.maxTokens } : {})
                  }))
              )
              return answered(
                {
                  native: res.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments })),
                  text: res.content,
                  reasoning: res.reasoning,
                  model: res.model,
                  usage: res.usage
                },
                toolsOn,
                () => `text_call_${++textCalls}`
              )
            })
        }

        /**
         * The Responses API, chained with previous_response_id while the history is sent as it is; once the budget has
         * had to shorten it, the fitted history is sent whole instead (LM Studio's stored chain would be the long one).
         */
        function responsesPorts(ask: Ask, current: () => number): LoopPorts<LifecycleError | BridgeOverloaded>["turn"] {
          let previous: string | undefined
          // Entries LM Studio holds in the chain of `previous` (its own output included).
          let chained = 0
          let textCalls = 0
          return ({ results, note, toolsOn }) =>
            Effect.gen(function*() {
              record(results, note)
              if (toolsOn) yield* rankFor(current())
              let whole = true
              const res = yield* ask((m) =>
                sendFitted(m, toolsOn, (p) => {
                  whole = p.fitted.unchanged
                  const settings = {
                    model: m.identifier,
                    instructions: SYSTEM,
                    ...(p.tools.length > 0 ? { tools: p.tools, toolChoice: "auto" as const } : {}),
                    ...(req.maxTokens !== undefined ? { maxOutputTokens: req.maxTokens } : {})
                  }
                  const replay = () => client.respond({ ...settings, input: p.fitted.entries.flatMap(responseItemsOf) })
                  const chain = previous
                  if (chain === undefined || !p.fitted.unchanged) return replay()
                  return client.respond({
                    ...settings,
                    input: entries.slice(chained).flatMap(responseItemsOf),
                    previousResponseId: chain
                  }).pipe(
                    Effect.catchTag(
                      "PreviousResponseNotFound",
                      () =>
                        Effect.logWarning("LM Studio lost the previous response; replaying the transcript").pipe(
                          Effect.zipRight(replay())
                        )
                    )
                  )
                })
              )
              const turn = answered(
                {
                  native: res.functionCalls.map((c) => ({ id: c.callId, name: c.name, arguments: c.arguments })),
                  text: res.outputText,
                  reasoning: res.reasoning,
                  model: res.model,
                  usage: res.usage
                },
                toolsOn,
                () => `text_call_${++textCalls}`
              )
              // The chain holds everything up to this answer only when it was sent unshortened.
              previous = whole ? res.id : undefined
              chained = entries.length
              return turn
            })
        }
      }).pipe(observeRun(tracing, req.model))

    return { run } as const
  })
}) {}
