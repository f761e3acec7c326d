/**
 * Context benchmark (`npm run bench`, issue 13): a four-round secret hunt (list the folder, read a long notes file,
 * read the secret, answer) over 1, 3 and 10 MCP servers (filesystem; + memory and everything; + seven copies of
 * everything under other names), the AgentLoop service in-process (chat API: the whole history every round)
 * against the simulator in its own process, which counts every prompt with a real BPE vocabulary (cl100k).
 *
 * - naive: the model loaded with a 32,768-token context, so nothing is chosen or cut: every tool definition and
 *   every full result in every round — what the bridge sent before the budget, and what a 4096 model cannot take;
 * - budgeted: the model as JIT loads it, 4096 tokens; the simulator refuses, as LM Studio does, any prompt that
 *   does not fit.
 *
 * Per configuration: prompt tokens per run and of the largest request (the simulator's count), tokens of the tool
 * definitions offered per round, refusals, and the bridge's own time per round (run wall time minus LLM requests,
 * embeddings and child tool calls, / rounds) over repeated warm runs.
 */
import { Duration, Effect, Option, Schema } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assistantEntry, type Entry, fit, noteEntry, resultEntry, taskEntry } from "../src/agent/Budget.js"
import type { RequestedCall } from "../src/agent/Loop.js"
import { bm25, byScore, chooseTools, definitionTokens, similarity, unit } from "../src/agent/ToolChoice.js"
import type { ToolDefinition } from "../src/domain/Messages.js"
import * as Logging from "../src/observability/Logging.js"
import { promptTokens } from "../src/simulator/SimTokens.js"
import { timedAgent } from "./agentLayer.js"
import { percentile, simulator } from "./support.js"

const MODEL = "qwen/qwen3-4b"
const WARM_RUNS = 20
const COPIES = ["ev2", "ev3", "ev4", "ev5", "ev6", "ev7", "ev8"]

const SimCounters = Schema.Struct({
  counters: Schema.Struct({
    contextRefusals: Schema.Number,
    promptTokens: Schema.Number,
    largestPrompt: Schema.NullOr(Schema.Struct({ tokens: Schema.Number, contextLength: Schema.Number }))
  }),
  recent: Schema.Array(Schema.Struct({ path: Schema.String, body: Schema.Unknown }))
})

const ToolsOf = Schema.Struct({ tools: Schema.optional(Schema.Array(Schema.Unknown)) })

const control = (port: number, method: "GET" | "POST", path: string, body?: unknown) =>
  Effect.promise(async () => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {})
    })
    return (await res.json()) as unknown
  })

const program = Effect.gen(function*() {
  const dir = mkdtempSync(join(tmpdir(), "bridge-context-bench-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  const notes = Array.from(
    { length: 400 },
    (_, i) => `Note ${i}: the archive holds reports, invoices and drafts; nothing here is the secret.`
  ).join("\n")
  writeFileSync(join(dir, "notes.txt"), `The secret is kept in secret.txt.\n${notes}\n`)
  writeFileSync(join(dir, "secret.txt"), "The secret is PELICAN-7731.\n")
  const scenario = join(dir, "scenario.json")
  const call = (name: string, args: Record<string, unknown>) => ({ toolCalls: [{ name, arguments: args }] })
  writeFileSync(
    scenario,
    JSON.stringify({
      rules: [
        { match: { round: 0, hasTools: true }, reply: call("fs__list_directory", { path: dir }) },
        { match: { round: 1, hasTools: true }, reply: call("fs__read_text_file", { path: join(dir, "notes.txt") }) },
        { match: { round: 2, hasTools: true }, reply: call("fs__read_text_file", { path: join(dir, "secret.txt") }) }
      ]
    })
  )
  const fsServer = join(process.cwd(), "node_modules", "@modelcontextprotocol", "server-filesystem", "dist", "index.js")
  const memoryServer = join(process.cwd(), "node_modules", "@modelcontextprotocol", "server-memory", "dist", "index.js")
  const everything = {
    command: process.execPath,
    args: [join(process.cwd(), "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")]
  }
  const servers = (n: number) => ({
    fs: { command: process.execPath, args: [fsServer, dir] },
    ...(n >= 3
      ? {
        memory: { command: process.execPath, args: [memoryServer], env: { MEMORY_FILE_PATH: join(dir, "m.jsonl") } },
        everything
      }
      : {}),
    ...(n >= 10 ? Object.fromEntries(COPIES.map((c) => [c, everything])) : {})
  })

  const measure = (n: number, mode: "naive" | "budgeted", ranking: "auto" | "lexical" = "auto") =>
    Effect.scoped(Effect.gen(function*() {
      const mcpJson = join(dir, `mcp-${n}-${mode}-${ranking}.json`)
      writeFileSync(mcpJson, JSON.stringify({ mcpServers: servers(n) }))
      const sim = yield* simulator(["--scenario", scenario])
      if (mode === "naive") {
        // The simulator starts with the model loaded at 4096; load it again with the larger context.
        yield* control(sim.port, "POST", "/__sim/lms/unload", { identifier: MODEL })
        yield* control(sim.port, "POST", "/__sim/lms/load", { model: MODEL, contextLength: 32768, ttlSeconds: 3600 })
      }
      const { agent, outside, servers: configured } = yield* timedAgent({
        baseUrl: sim.baseUrl,
        mcpJsonPath: Option.some(mcpJson),
        defaultModel: Option.some(MODEL),
        agentApi: "chat",
        agentToolRanking: ranking,
        // Naive: every tool offered, whatever it takes of the context.
        ...(mode === "naive" ? { agentToolsBudgetShare: 1 } : {}),
        agentBudget: Duration.seconds(600)
      })
      const run = agent.run({ servers: configured, task: "Find the secret: look through the folder and its files." })
      const first = yield* run
      const state = Schema.decodeUnknownSync(SimCounters)(yield* control(sim.port, "GET", "/__sim/state"))
      const toolTokens = yield* Effect.forEach(
        state.recent.filter((q) => q.path === "/v1/chat/completions"),
        (q) => promptTokens([], Schema.decodeUnknownSync(ToolsOf)(q.body).tools ?? [])
      )
      const perRound: Array<number> = []
      let cpuUs = 0
      let roundsDone = 0
      for (let i = 0; i < WARM_RUNS; i++) {
        const cpu0 = process.cpuUsage()
        outside.llmNs = 0
        outside.toolNs = 0
        const t0 = process.hrtime.bigint()
        const r = yield* run
        const wallNs = Number(process.hrtime.bigint() - t0)
        perRound.push((wallNs - outside.llmNs - outside.toolNs) / 1e6 / Math.max(1, r.rounds))
        const cpu = process.cpuUsage(cpu0)
        cpuUs += cpu.user + cpu.system
        roundsDone += r.rounds
      }
      const lastChat = state.recent.filter((q) => q.path === "/v1/chat/completions").at(-1)?.body
      return {
        lastChat,
        n,
        mode,
        ranking: first.tools.ranking,
        stop: first.stopReason,
        rounds: first.rounds,
        total: first.tools.total,
        offered: first.tools.offered.length,
        runTokens: first.usage.promptTokens,
        largest: state.counters.largestPrompt?.tokens ?? 0,
        toolsMax: Math.max(0, ...toolTokens),
        refusals: state.counters.contextRefusals,
        compacted: first.context.compacted,
        p50: percentile(perRound, 50),
        p99: percentile(perRound, 99),
        cpuPerRound: cpuUs / 1000 / Math.max(1, roundsDone)
      }
    }))

  const rows: Array<Effect.Effect.Success<ReturnType<typeof measure>>> = []
  for (const n of [1, 3, 10]) {
    rows.push(yield* measure(n, "naive"))
    rows.push(yield* measure(n, "budgeted"))
  }
  const lexical = yield* measure(10, "budgeted", "lexical")
  const parts = microRound(rows.find((r) => r.n === 10 && r.mode === "naive")!.lastChat)
  const lines = [
    `Context budget — secret hunt (4 rounds), AgentLoop in-process, chat API, simulator counting with cl100k, node ${process.version}`,
    "",
    "| servers | mode | context | tools offered | tool tokens / round (max) | largest request | prompt tokens / run | refusals | results cut | bridge ms / round p50 (p99) | CPU ms / round |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
    ...[...rows, lexical].map((r) =>
      `| ${r.n} | ${r.mode}${r.mode === "budgeted" ? ` (${r.ranking})` : ""} | ${
        r.mode === "naive" ? 32768 : 4096
      } | ${r.offered} of ${r.total} | ${r.toolsMax} | ${r.largest}${
        r.mode === "naive" && r.largest >= 4096 ? " (over 4096)" : ""
      } | ${r.runTokens} | ${r.refusals} | ${r.compacted} | ${r.p50.toFixed(3)} (${r.p99.toFixed(3)}) | ${
        r.cpuPerRound.toFixed(3)
      } |`
    ),
    "",
    ...[1, 3, 10].map((n) => {
      const naive = rows.find((r) => r.n === n && r.mode === "naive")!
      const budgeted = rows.find((r) => r.n === n && r.mode === "budgeted")!
      return `${n} server(s): ${
        (naive.runTokens / Math.max(1, budgeted.runTokens)).toFixed(1)
      }x fewer prompt tokens per run; tool definitions ${
        ((budgeted.toolsMax / 4096) * 100).toFixed(0)
      } % of 4096 (target <= 25 %); stop: naive ${naive.stop}, budgeted ${budgeted.stop}`
    }),
    "",
    `The budget's own work per round at 10 servers (${parts.tools} tools, the naive run's last transcript of ${parts.chars} characters fitted to 4096; mean of ${MICRO} rounds):`,
    `fit ${parts.fitUs.toFixed(1)} µs, tool choice ${parts.chooseUs.toFixed(1)} µs, BM25 ranking ${
      parts.bm25Us.toFixed(1)
    } µs, embedding ranking (cached vectors, ${DIMS} dimensions) ${
      parts.cosineUs.toFixed(1)
    } µs; per-run setup (definitions and their tokens, BM25 index; cached across runs) ${parts.setupUs.toFixed(1)} µs`
  ]
  yield* Effect.sync(() => process.stdout.write(`${lines.join("\n")}\n`))
})

const MICRO = 2000
const DIMS = 768

const WireMessage = Schema.Struct({
  role: Schema.String,
  content: Schema.NullOr(Schema.String),
  tool_call_id: Schema.optional(Schema.String),
  tool_calls: Schema.optional(
    Schema.Array(
      Schema.Struct({
        id: Schema.String,
        function: Schema.Struct({ name: Schema.String, arguments: Schema.String })
      })
    )
  )
})
const WireChat = Schema.Struct({
  messages: Schema.Array(WireMessage),
  tools: Schema.Array(
    Schema.Struct({
      function: Schema.Struct({
        name: Schema.String,
        description: Schema.optional(Schema.String),
        parameters: Schema.Record({ key: Schema.String, value: Schema.Unknown })
      })
    })
  )
})

const meanUs = (f: () => unknown) => {
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < MICRO; i++) f()
  return Number(process.hrtime.bigint() - t0) / 1e3 / MICRO
}

/** The budget's pure parts, timed on a real request: the fit, the tool choice, the ranking, the per-run setup. */
const microRound = (body: unknown) => {
  const chat = Schema.decodeUnknownSync(WireChat)(body)
  const definitions: Array<ToolDefinition> = chat.tools.map((t) => t.function)
  const entries: Array<Entry> = []
  let round = 0
  const calls = new Map<string, RequestedCall>()
  for (const m of chat.messages) {
    if (m.role === "user") entries.push(entries.length === 0 ? taskEntry(m.content ?? "") : noteEntry(m.content ?? ""))
    if (m.role === "assistant") {
      round++
      const cs = (m.tool_calls ?? []).map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments }))
      for (const c of cs) calls.set(c.id, c)
      entries.push(assistantEntry(round, m.content ?? "", cs))
    }
    if (m.role === "tool") {
      const c = calls.get(m.tool_call_id ?? "") ?? { id: m.tool_call_id ?? "", name: "tool", arguments: "{}" }
      entries.push(resultEntry(round, c, m.content ?? ""))
    }
  }
  const names = definitions.map((d) => d.name)
  const tokens = definitions.map(definitionTokens)
  const docs = definitions.map((d) => `${d.name}: ${d.description ?? ""}`)
  const index = bm25(docs)
  const query = entries[0]?.text ?? ""
  const order = byScore(index(query))
  const offer = chooseTools({ names, tokens, order, kept: new Set(), limit: 1024 })
  const vectors = docs.map((_, i) => unit(Array.from({ length: DIMS }, (_, k) => Math.sin(i * 31 + k))))
  const q = unit(Array.from({ length: DIMS }, (_, k) => Math.cos(k)))
  return {
    tools: definitions.length,
    chars: entries.reduce((n, e) => n + e.text.length, 0),
    fitUs: meanUs(() => fit({ context: 4096, reserve: 1024, fixed: 200 + offer.tokens, entries, scale: 1.15 })),
    chooseUs: meanUs(() => chooseTools({ names, tokens, order, kept: new Set(), limit: 1024 })),
    bm25Us: meanUs(() => byScore(index(query))),
    cosineUs: meanUs(() => byScore(vectors.map((v) => similarity(q, v)))),
    setupUs: meanUs(() => {
      definitions.map(definitionTokens)
      bm25(docs)
    })
  }
}

Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Logging.make("json", "error")))).catch((e: unknown) => {
  process.stderr.write(`bench failed: ${String(e)}\n`)
  process.exitCode = 1
})
