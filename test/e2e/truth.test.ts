/**
 * Lifecycle truth end to end (issue 11): the built bridge over stdio, driven by the SDK client, against a simulator
 * that changes under it — models unloaded by `lms unload`, by their TTL, by auto-evict, between two agent rounds,
 * while an embedding model stays loaded; a server failing on every route with the `lms` CLI installed; a mcp.json
 * that names the bridge itself through another path; think blocks written inline. Each case failed on the code
 * before the fix (see the note of issue 11).
 */
import { assert, describe, it } from "@effect/vitest"
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { Effect, Schedule } from "effect"
import { readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import type { Scenario } from "../../src/simulator/Scenario.js"
import { type SimulatorOptions, start } from "../../src/simulator/Simulator.js"
import { binPath, bridgeClient, http, j, lmsShimPath, repoRoot, run, runEffect, tempDir } from "../helpers.js"

const call = (client: Client, name: string, args: Record<string, unknown> = {}, progress = false) =>
  Effect.promise(() =>
    client.callTool({ name, arguments: args }, undefined, {
      timeout: 120_000,
      ...(progress ? { onprogress: () => undefined } : {})
    })
  )

const structured = (r: Awaited<ReturnType<Client["callTool"]>>) => {
  assert.notStrictEqual(r.isError, true, JSON.stringify(r.content))
  return j(r.structuredContent)
}

const errorText = (r: Awaited<ReturnType<Client["callTool"]>>) => {
  assert.strictEqual(r.isError, true, JSON.stringify(r.structuredContent))
  return j(r).get("content", 0, "text").str
}

const withLms = { LMS_CLI_PATH: lmsShimPath }

const lms = (baseUrl: string, ...args: Array<string>) =>
  runEffect(process.execPath, [lmsShimPath, ...args], { LMS_SIM_URL: baseUrl })

const setup = (options: SimulatorOptions, env: Record<string, string>) =>
  Effect.gen(function*() {
    const sim = yield* start(options)
    const client = yield* bridgeClient(sim.baseUrl, env)
    const ids = Effect.map(sim.state.get, (d) => d.instances.map((i) => i.identifier))
    const hits = (path: string) => Effect.map(sim.state.get, (d) => d.counters.byPath[path] ?? 0)
    return { sim, client, ids, hits }
  })

const SECRET = "HERON-4410"

describe("lifecycle truth: what the bridge says is what LM Studio has", () => {
  it.scopedLive("ensure after an out-of-band unload (lms unload, TTL expiry, auto-evict) loads again and verifies", () =>
    Effect.gen(function*() {
      const { sim, client, ids } = yield* setup({ loaded: [] }, { ...withLms, LMSTUDIO_LIFECYCLE: "cli" })
      const ensure = () =>
        Effect.map(call(client, "lms_ensure_model_loaded", { model: "google/gemma-3-1b" }), structured)
      const first = yield* ensure()
      assert.deepStrictEqual([first.get("already_loaded").raw, first.get("via").str], [false, "cli"])
      // Still loaded: confirmed against LM Studio's listing, not answered from memory with the first result.
      const same = yield* ensure()
      assert.deepStrictEqual([same.get("already_loaded").raw, same.get("via").str], [true, "existing"])
      // `lms unload` behind the bridge's back.
      assert.strictEqual((yield* lms(sim.baseUrl, "unload", "google/gemma-3-1b")).code, 0)
      assert.deepStrictEqual(yield* ids, [])
      const again = yield* ensure()
      assert.deepStrictEqual([again.get("already_loaded").raw, again.get("via").str, again.get("verified").raw], [
        false,
        "cli",
        true
      ])
      assert.deepStrictEqual(yield* ids, ["google/gemma-3-1b"])
      // LM Studio's own idle TTL runs out (ten minutes of idleness in LM Studio's clock).
      assert.deepStrictEqual(j((yield* http(sim, "POST", "/__sim/idle", { ms: 600_000 })).json).get("unloaded").raw, [
        "google/gemma-3-1b"
      ])
      const afterTtl = yield* ensure()
      assert.strictEqual(afterTtl.get("already_loaded").raw, false)
      assert.deepStrictEqual(yield* ids, ["google/gemma-3-1b"])
    }))

  it.scopedLive("ensure after JIT auto-evict loads again; the result never reports a model LM Studio does not have", () =>
    Effect.gen(function*() {
      const { client, ids } = yield* setup({ loaded: [] }, { LMSTUDIO_LIFECYCLE: "jit" })
      const ensure = (model: string) => Effect.map(call(client, "lms_ensure_model_loaded", { model }), structured)
      assert.strictEqual((yield* ensure("google/gemma-3-1b")).get("already_loaded").raw, false)
      // Loading another model JIT evicts the first one (LM Studio's auto-evict).
      yield* ensure("qwen/qwen3-4b")
      assert.deepStrictEqual(yield* ids, ["qwen/qwen3-4b"])
      const back = yield* ensure("google/gemma-3-1b")
      assert.deepStrictEqual([back.get("already_loaded").raw, back.get("via").str], [false, "jit"])
      assert.deepStrictEqual(yield* ids, ["google/gemma-3-1b"])
    }))

  it.scopedLive("8 concurrent calls meeting one unload cause exactly one load and no second instance", () =>
    Effect.gen(function*() {
      const { sim, client, ids, hits } = yield* setup({ loaded: ["qwen/qwen3-4b"], settings: { jit: false } }, {
        LMSTUDIO_LIFECYCLE: "auto"
      })
      const chat = (prompt: string) =>
        Effect.map(call(client, "chat_completion", { model: "qwen/qwen3-4b", prompt }), structured)
      assert.strictEqual((yield* chat("warm up")).get("content").str, "You said: warm up")
      yield* sim.state.unload("qwen/qwen3-4b")
      const answers = yield* Effect.all(
        Array.from({ length: 8 }, (_, i) => chat(`call ${i}`)),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(
        answers.map((a) => a.get("content").str),
        Array.from({ length: 8 }, (_, i) => `You said: call ${i}`)
      )
      assert.strictEqual(yield* hits("/api/v1/models/load"), 1)
      assert.deepStrictEqual(yield* ids, ["qwen/qwen3-4b"])
    }))

  it.scopedLive("the chat model unloaded while an embedding model stays loaded is loaded again on the next call", () =>
    Effect.gen(function*() {
      const { sim, client, ids, hits } = yield* setup(
        { loaded: ["qwen/qwen3-4b", "text-embedding-nomic-embed-text-v1.5"], settings: { jit: false } },
        { LMSTUDIO_LIFECYCLE: "auto" }
      )
      const chat = (prompt: string) => call(client, "chat_completion", { model: "qwen/qwen3-4b", prompt })
      assert.strictEqual(structured(yield* chat("first")).get("content").str, "You said: first")
      yield* sim.state.unload("qwen/qwen3-4b")
      // LM Studio now answers with the only loaded model, the embedding one: "Model is not llm" (HTTP 400).
      const next = yield* chat("second")
      assert.strictEqual(structured(next).get("content").str, "You said: second")
      assert.strictEqual(yield* hits("/api/v1/models/load"), 1)
      assert.deepStrictEqual((yield* ids).sort(), ["qwen/qwen3-4b", "text-embedding-nomic-embed-text-v1.5"])
      // Asking an LLM for embeddings is still the caller's mistake, said as such (and nothing is loaded for it).
      const wrong = errorText(yield* call(client, "generate_embeddings", { model: "qwen/qwen3-4b", input: "x" }))
      assert.match(wrong, /^WrongModelKind: .*either it is not an embedding model/)
      assert.strictEqual(yield* hits("/api/v1/models/load"), 1)
    }))

  for (
    const [name, env] of [
      ["without lms", {}],
      ["with lms", withLms]
    ] as const
  ) {
    it.scopedLive(`a model unloaded between two agent rounds is loaded again and the run completes (chat and Responses API, ${name})`, () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        writeFileSync(join(dir, "secret.txt"), `The secret is ${SECRET}.\n`)
        const mcpJson = join(dir, "mcp.json")
        const fsServer = join(
          repoRoot,
          "node_modules",
          "@modelcontextprotocol",
          "server-filesystem",
          "dist",
          "index.js"
        )
        writeFileSync(
          mcpJson,
          JSON.stringify({ mcpServers: { fs: { command: process.execPath, args: [fsServer, dir] } } })
        )
        const scenario: Scenario = {
          rules: [
            {
              match: { userContains: "secret", afterToolResult: false, hasTools: true },
              reply: { toolCalls: [{ name: "fs__read_text_file", arguments: { path: join(dir, "secret.txt") } }] }
            }
          ]
        }
        for (const api of ["chat", "responses"] as const) {
          // JIT off, and LM Studio unloads the model right after it answered the first round.
          const sim = yield* start({
            loaded: ["qwen/qwen3-4b"],
            scenario,
            settings: { jit: false },
            faults: { unloadAfterRequests: 1 }
          })
          const client = yield* bridgeClient(sim.baseUrl, {
            ...env,
            MCP_JSON_PATH: mcpJson,
            AGENT_API: api,
            LMSTUDIO_LIFECYCLE: "auto"
          })
          const r = structured(
            yield* call(client, "autonomous_with_mcp", {
              mcp_name: "fs",
              task: "What is the secret?",
              model: "qwen/qwen3-4b"
            })
          )
          assert.strictEqual(r.get("stop_reason").str, "completed", `${api}: ${JSON.stringify(r.raw)}`)
          assert.include(r.get("answer").str, SECRET, api)
          assert.strictEqual(r.get("rounds").num, 2, api)
          assert.strictEqual(r.get("api").str, api)
          assert.deepStrictEqual(r.get("warnings").raw, [], api)
        }
      }))
  }

  it.scopedLive("500 on every route with lms installed opens the LM Studio breaker within 5 calls; the next fails fast; health_check shows it", () =>
    Effect.gen(function*() {
      const { sim, client } = yield* setup({ faults: { failAll: { status: 500 } } }, {
        ...withLms,
        LMSTUDIO_LIFECYCLE: "auto"
      })
      const tags: Array<string> = []
      for (let i = 0; i < 5; i++) {
        tags.push(errorText(yield* call(client, "chat_completion", { prompt: "hi" })).split(":")[0]!)
      }
      assert.notInclude(tags.slice(0, 4), "CircuitOpen")
      // A failed call may leave an lms subprocess whose request is still on its way: count from when all is quiet.
      const requests = Effect.map(sim.state.get, (st) => st.counters.requests)
      const before = yield* Effect.flatMap(requests, (first) =>
        Effect.sleep("150 millis").pipe(
          Effect.zipRight(requests),
          Effect.filterOrFail((again) => again === first, () => "still busy")
        )).pipe(Effect.retry(Schedule.recurs(20)), Effect.orElse(() => requests))
      const fast = errorText(yield* call(client, "chat_completion", { prompt: "hi" }))
      assert.match(fast, /^CircuitOpen: LM Studio failed repeatedly; calls are paused for [1-5] s/)
      assert.strictEqual((yield* sim.state.get).counters.requests, before, "an open breaker sends nothing to LM Studio")
      const health = structured(yield* call(client, "health_check"))
      const breaker = health.get("breakers").arr.find((b) => b.get("dependency").str === "LM Studio")
      assert.isDefined(breaker)
      assert.strictEqual(breaker!.get("state").str, "open")
      assert.isAbove(breaker!.get("retry_after_seconds").num, 0)
      const diagnose = structured(yield* call(client, "diagnose"))
      const check = diagnose.get("checks").arr.find((c) => c.get("name").str === "Circuit breakers")
      assert.match(check!.get("detail").str, /LM Studio open \(retry in \d+ s\)/)
    }))

  it.scopedLive("an mcp.json entry that starts this bridge from a folder of any name, or through a symlink, is never spawned", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      symlinkSync(repoRoot, join(dir, "work-copy"))
      symlinkSync(binPath, join(dir, "bridge-entry.js"))
      const mcpJson = join(dir, "mcp.json")
      writeFileSync(
        mcpJson,
        JSON.stringify({
          mcpServers: {
            checkout: { command: process.execPath, args: [join(dir, "work-copy", "dist", "src", "bin.js"), "serve"] },
            linked: { command: process.execPath, args: [join(dir, "bridge-entry.js"), "serve"] }
          }
        })
      )
      const { client } = yield* setup({}, { MCP_JSON_PATH: mcpJson })
      const listed = structured(yield* call(client, "list_available_mcps"))
      assert.deepStrictEqual(
        listed.get("servers").arr.map((s) => [s.get("name").str, s.get("enabled").raw, s.get("note").raw]),
        [
          ["checkout", false, "this is lmstudio-bridge itself"],
          ["linked", false, "this is lmstudio-bridge itself"]
        ]
      )
      yield* call(client, "autonomous_discover_and_execute", { task: "say hello" })
      const spawned = readdirSync("/proc")
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(dir)
          } catch {
            return false
          }
        })
      assert.deepStrictEqual(spawned, [])
    }))

  it.scopedLive("LM Link: an instance on another device is shown with its device in lms_list_loaded_models, list_models and models loaded", () =>
    Effect.gen(function*() {
      const { sim, client } = yield* setup({ loaded: ["qwen/qwen3-4b"] }, withLms)
      yield* http(sim, "POST", "/__sim/lms/load", { model: "openai/gpt-oss-20b", device: "studio-mac" })
      const loaded = structured(yield* call(client, "lms_list_loaded_models"))
      assert.deepStrictEqual(
        loaded.get("instances").arr.map((i) => [i.get("identifier").str, i.get("device").raw]),
        [["qwen/qwen3-4b", null], ["openai/gpt-oss-20b", "studio-mac"]]
      )
      const models = structured(yield* call(client, "list_models", { loaded_only: true }))
      assert.deepStrictEqual(
        models.get("models").arr.map((m) => [m.get("key").str, m.get("loaded_instances", 0, "device").raw]),
        [["qwen/qwen3-4b", null], ["openai/gpt-oss-20b", "studio-mac"]]
      )
      assert.isAtLeast(models.get("listing_age_seconds").num, 0)
      const cli = yield* runEffect(process.execPath, [binPath, "models", "loaded"], {
        LMSTUDIO_BASE_URL: sim.baseUrl,
        ...withLms
      })
      assert.match(cli.stdout, /openai\/gpt-oss-20b .* studio-mac/)
      assert.match(cli.stdout, /qwen\/qwen3-4b .* local/)
    }))

  it.scopedLive("think blocks written inline (closed or unterminated) become reasoning: chat (plain and streamed), completion, responses, CLI", () =>
    Effect.gen(function*() {
      const scenario: Scenario = {
        rules: [
          { match: { userContains: "ponder" }, reply: { think: "Let me weigh it.", content: "The answer is 42." } },
          { match: { userContains: "cut short" }, reply: { content: "<think>still going when the tokens ran out" } }
        ]
      }
      const { sim, client } = yield* setup({ scenario }, {})
      for (const progress of [false, true]) {
        const r = structured(yield* call(client, "chat_completion", { prompt: "ponder this" }, progress))
        assert.deepStrictEqual([r.get("content").str, r.get("reasoning").raw], [
          "The answer is 42.",
          "Let me weigh it."
        ], `progress ${progress}`)
        const cut = structured(yield* call(client, "chat_completion", { prompt: "cut short" }, progress))
        assert.deepStrictEqual([cut.get("content").str, cut.get("reasoning").raw], [
          "",
          "still going when the tokens ran out"
        ])
      }
      const completion = structured(yield* call(client, "text_completion", { prompt: "ponder" }))
      assert.deepStrictEqual([completion.get("text").str, completion.get("reasoning").raw], [
        "The answer is 42.",
        "Let me weigh it."
      ])
      const response = structured(yield* call(client, "create_response", { input: "ponder" }))
      assert.deepStrictEqual([response.get("output_text").str, response.get("reasoning").raw], [
        "The answer is 42.",
        "Let me weigh it."
      ])
      const cli = yield* Effect.promise(() =>
        run(process.execPath, [binPath, "chat", "ponder", "--json"], { LMSTUDIO_BASE_URL: sim.baseUrl })
      )
      assert.deepStrictEqual(
        [j(JSON.parse(cli.stdout)).get("content").str, j(JSON.parse(cli.stdout)).get("reasoning").raw],
        ["The answer is 42.", "Let me weigh it."]
      )
      const streamed = yield* Effect.promise(() =>
        run(process.execPath, [binPath, "chat", "ponder"], { LMSTUDIO_BASE_URL: sim.baseUrl })
      )
      assert.strictEqual(streamed.stdout, "The answer is 42.\n")
      assert.include(streamed.stderr, "Let me weigh it.")
    }))

  describe("context: what is sent fits the model's loaded context (issue 13)", () => {
    it.scopedLive("a 50,000-character chat_completion on a 4096 model fails fast with the numbers; LM Studio's own refusal is the same error", () =>
      Effect.gen(function*() {
        const { sim, client, hits } = yield* setup({}, {})
        const model = (yield* sim.state.get).instances[0]!
        assert.strictEqual(model.contextLength, 4096)
        const fast = errorText(
          yield* call(client, "chat_completion", { prompt: "lorem ipsum ".repeat(4200), model: model.identifier })
        )
        assert.match(
          fast,
          /^ContextOverflow: the prompt needs \d+ tokens but ".+" is loaded with a context of 4096 tokens/
        )
        assert.include(fast, "context_length")
        assert.include(fast, "nothing was sent to LM Studio")
        assert.strictEqual(yield* hits("/v1/chat/completions"), 0, "refused before sending")
        // Too long for the context (~4,130 tokens for the simulator's BPE), but not by the bridge's lowest count (~2,065):
        // LM Studio refuses, and the answer is the same typed error with LM Studio's numbers, not its raw 400.
        const sent = errorText(
          yield* call(client, "chat_completion", {
            prompt: "the secret is 7731; ".repeat(590),
            model: model.identifier
          })
        )
        assert.match(
          sent,
          /^ContextOverflow: the prompt needs \d+ tokens but ".+" is loaded with a context of 4096 tokens/
        )
        assert.include(sent, "n_keep")
        assert.strictEqual(yield* hits("/v1/chat/completions"), 1)
        const ok = structured(yield* call(client, "chat_completion", { prompt: "hi", model: model.identifier }))
        assert.isString(ok.get("content").str)
      }))
  })
})
