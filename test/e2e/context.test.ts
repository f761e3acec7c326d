/**
 * Agents within the model's loaded context (issue 13), end to end: the built bridge over stdio, real child servers
 * from npm, and a simulator that counts prompts with a real BPE vocabulary and refuses, as LM Studio does, any that
 * does not fit the instance's context (4096 tokens here, what JIT loads get).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import type { Scenario } from "../../src/simulator/Scenario.js"
import { start } from "../../src/simulator/Simulator.js"
import { bridgeClient, j, tempDir } from "../helpers.js"
import { call, realServers, textOf } from "../support/children.js"

const SECRET = "PELICAN-7731"
const COPIES = ["ev2", "ev3", "ev4", "ev5", "ev6", "ev7", "ev8"]

const scenario = (dir: string): Scenario => ({
  rules: [
    {
      match: { userContains: "secret", afterToolResult: false, hasTools: true },
      reply: { toolCalls: [{ name: "fs__read_text_file", arguments: { path: join(dir, "secret.txt") } }] }
    },
    {
      match: { userContains: "big file", afterToolResult: false, hasTools: true },
      reply: { toolCalls: [{ name: "fs__read_text_file", arguments: { path: join(dir, "big.txt") } }] }
    },
    {
      match: { userContains: "search the tools", round: 0, hasTools: true },
      reply: { toolCalls: [{ name: "find_tools", arguments: { query: "sum of two numbers" } }] }
    },
    {
      match: { userContains: "search the tools", toolResultContains: "everything__get-sum", hasTools: true },
      reply: { toolCalls: [{ name: "everything__get-sum", arguments: { a: 20, b: 22 } }] }
    },
    { match: { hasTools: false }, reply: { content: "Final answer without tools." } }
  ]
})

const setUp = (env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const dir = yield* tempDir
    writeFileSync(join(dir, "secret.txt"), `The secret is ${SECRET}.\n`)
    // About 25,000 tokens of prose: six times the context.
    writeFileSync(
      join(dir, "big.txt"),
      `The secret is ${SECRET}.\n` +
        Array.from({ length: 1500 }, (_, i) => `Line ${i}: the quick brown fox jumps over the lazy dog.`).join("\n") +
        "\nThe end of the big file.\n"
    )
    const real = realServers(dir)
    const mcpJson = join(dir, "mcp.json")
    writeFileSync(
      mcpJson,
      JSON.stringify({
        mcpServers: {
          ...real,
          ...Object.fromEntries(COPIES.map((name) => [name, real.everything]))
        }
      })
    )
    const sim = yield* start({ scenario: scenario(dir) })
    const client = yield* bridgeClient(sim.baseUrl, { MCP_JSON_PATH: mcpJson, MCP_CHILD_IDLE_SECONDS: "60", ...env })
    const counters = Effect.map(sim.state.get, (d) => d.counters)
    return { dir, sim, client, counters }
  })

const THREE = ["fs", "memory", "everything"]

describe("agents within the loaded context (issue 13)", () => {
  it.scopedLive(
    "a secret hunt on a 4096-token model over filesystem, memory and everything completes",
    () =>
      Effect.gen(function*() {
        const { client, counters, sim } = yield* setUp()
        const r = yield* call(client, "autonomous_with_multiple_mcps", {
          mcp_names: THREE,
          task: "What is the secret in the file?"
        })
        assert.notStrictEqual(r.isError, true, textOf(r))
        const out = j(r.structuredContent)
        assert.strictEqual(out.get("stop_reason").str, "completed", textOf(r))
        assert.include(out.get("answer").str, SECRET)
        assert.strictEqual(out.get("context", "length").num, 4096)
        assert.strictEqual(out.get("context", "source").str, "instance")
        assert.isAbove(out.get("tools", "total").num, 30)
        assert.include(out.get("tools", "offered").arr.map((t) => t.str), "fs__read_text_file")
        const c = yield* counters
        assert.strictEqual(c.contextRefusals, 0)
        assert.isBelow(c.largestPrompt?.tokens ?? Infinity, 4096)
        // Every request the simulator took offered tools that take at most a quarter of the context.
        const offered = (yield* sim.state.get).recent.filter((q) => q.path === "/v1/responses")
        assert.isAbove(offered.length, 1)
      }),
    120_000
  )

  it.scopedLive(
    "the same over chat completions, with ten servers, choosing the tools by a lexical ranking",
    () =>
      Effect.gen(function*() {
        const { client, counters } = yield* setUp({ AGENT_API: "chat", AGENT_TOOL_RANKING: "lexical" })
        const r = yield* call(client, "autonomous_discover_and_execute", { task: "What is the secret in the file?" })
        assert.notStrictEqual(r.isError, true, textOf(r))
        const out = j(r.structuredContent)
        assert.strictEqual(out.get("stop_reason").str, "completed", textOf(r))
        assert.include(out.get("answer").str, SECRET)
        assert.strictEqual(out.get("api").str, "chat")
        assert.isAbove(out.get("tools", "total").num, 100)
        assert.strictEqual(out.get("tools", "ranking").str, "bm25")
        const offered = out.get("tools", "offered").arr.map((t) => t.str)
        assert.include(offered, "fs__read_text_file")
        assert.include(offered, "find_tools")
        assert.isBelow(offered.length, out.get("tools", "total").num)
        const c = yield* counters
        assert.strictEqual(c.contextRefusals, 0)
        assert.isBelow(c.largestPrompt?.tokens ?? Infinity, 4096)
      }),
    120_000
  )

  it.scopedLive(
    "with an embedding model downloaded, tools are ranked by embeddings; find_tools reaches the rest",
    () =>
      Effect.gen(function*() {
        const { client, counters } = yield* setUp()
        const r = yield* call(client, "autonomous_discover_and_execute", {
          task: "Add twenty and twenty-two; search the tools for one that can."
        })
        assert.notStrictEqual(r.isError, true, textOf(r))
        const out = j(r.structuredContent)
        assert.strictEqual(out.get("stop_reason").str, "completed", textOf(r))
        assert.strictEqual(out.get("tools", "ranking").str, "embeddings")
        assert.include(out.get("tools", "embedding_model").str, "embed")
        const calls = out.get("tool_calls").arr.map((c) =>
          `${c.get("server").str}/${c.get("tool").str}/${c.get("ok").raw}`
        )
        assert.deepStrictEqual(calls, ["bridge/find_tools/true", "everything/get-sum/true"])
        assert.include(out.get("answer").str, "42")
        assert.strictEqual((yield* counters).contextRefusals, 0)
      }),
    120_000
  )

  it.scopedLive(
    "a file six times the context is read and the run still answers, citing it",
    () =>
      Effect.gen(function*() {
        const { client, counters } = yield* setUp()
        const r = yield* call(client, "autonomous_with_mcp", { mcp_name: "fs", task: "What does the big file say?" })
        assert.notStrictEqual(r.isError, true, textOf(r))
        const out = j(r.structuredContent)
        assert.strictEqual(out.get("stop_reason").str, "completed", textOf(r))
        assert.include(out.get("answer").str, SECRET)
        assert.include(out.get("answer").str, "cut by the bridge")
        assert.isAbove(out.get("context", "compacted").num, 0)
        const c = yield* counters
        assert.strictEqual(c.contextRefusals, 0)
        assert.isBelow(c.largestPrompt?.tokens ?? Infinity, 4096)
      }),
    120_000
  )

  it.scopedLive(
    "when LM Studio gives a request less than the loaded context (slots), its refusal refits the round once and the run completes",
    () =>
      Effect.gen(function*() {
        const { client, counters, sim } = yield* setUp()
        yield* sim.state.setFaults({ slotContext: 1200 })
        const r = yield* call(client, "autonomous_with_multiple_mcps", {
          mcp_names: THREE,
          task: "What does the big file say?"
        })
        assert.notStrictEqual(r.isError, true, textOf(r))
        const out = j(r.structuredContent)
        assert.strictEqual(out.get("stop_reason").str, "completed", textOf(r))
        assert.include(out.get("answer").str, SECRET)
        assert.strictEqual(out.get("context", "length").num, 1200)
        assert.isTrue(out.get("warnings").arr.some((w) => w.str.startsWith("LM Studio counted")), textOf(r))
        // One refusal taught the bridge the context it really has; every later request fitted it.
        const c = yield* counters
        assert.strictEqual(c.contextRefusals, 1)
      }),
    120_000
  )

  it.scopedLive(
    "when the embedding model fails, the tools are ranked by BM25 and the run goes on, saying so",
    () =>
      Effect.gen(function*() {
        const { client, sim } = yield* setUp()
        yield* sim.state.setFaults({
          failNext: { status: 400, body: { error: "embedding backend crashed" }, path: "/v1/embeddings", count: 50 }
        })
        const r = yield* call(client, "autonomous_discover_and_execute", { task: "What is the secret in the file?" })
        assert.notStrictEqual(r.isError, true, textOf(r))
        const out = j(r.structuredContent)
        assert.strictEqual(out.get("stop_reason").str, "completed", textOf(r))
        assert.include(out.get("answer").str, SECRET)
        assert.strictEqual(out.get("tools", "ranking").str, "bm25")
        assert.isTrue(
          out.get("warnings").arr.some((w) => w.str.startsWith("tool ranking fell back to BM25")),
          textOf(r)
        )
      }),
    120_000
  )

  it.scopedLive(
    "a task longer than the context fails fast with ContextOverflow and the fix, sending nothing",
    () =>
      Effect.gen(function*() {
        const { client, counters, sim } = yield* setUp()
        const r = yield* call(client, "autonomous_with_mcp", {
          mcp_name: "fs",
          task: `Summarise this: ${"the quick brown fox jumps over the lazy dog. ".repeat(1500)}`
        })
        assert.strictEqual(r.isError, true)
        const text = textOf(r)
        assert.match(text, /^ContextOverflow: the prompt needs \d+ tokens but ".+" is loaded with a context of 4096/)
        assert.include(text, "context_length")
        // The model's JIT load is the only request the simulator saw: the task never left the bridge.
        const recent = (yield* sim.state.get).recent
        assert.deepStrictEqual(
          recent.filter((q) => JSON.stringify(q.body ?? "").includes("Summarise this")).map((q) => q.path),
          []
        )
        assert.strictEqual((yield* counters).contextRefusals, 0)
      }),
    120_000
  )
})
