/**
 * End to end: the built bridge spawned as `lmstudio-bridge serve`, driven by the MCP SDK Client over stdio, against
 * the simulator over real HTTP.
 */
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { Duration, Effect, Fiber, Option, Schedule } from "effect"
import { spawn } from "node:child_process"
import { type SimulatorOptions, start } from "../../src/simulator/Simulator.js"
import { binPath, bridgeClient, j, TOOL_CONTRACT } from "../helpers.js"

const CONTRACT = TOOL_CONTRACT

const bridge = bridgeClient

const call = (client: Client, name: string, args: Record<string, unknown> = {}) =>
  Effect.promise(() => client.callTool({ name, arguments: args }))

const textOf = (r: unknown) => j(r).get("content", 0, "text").str

const withSim = (options: SimulatorOptions = {}) =>
  Effect.gen(function*() {
    const sim = yield* start(options)
    const client = yield* bridge(sim.baseUrl)
    return { sim, client }
  })

describe("MCP server over stdio (SDK client, real child process)", () => {
  it.scopedLive("tools/list matches the contract: names, object schemas, required fields, annotations", () =>
    Effect.gen(function*() {
      const { client } = yield* withSim()
      const { tools } = yield* Effect.promise(() => client.listTools())
      assert.deepStrictEqual(tools.map((t) => t.name).sort(), [...CONTRACT].sort())
      for (const t of tools) {
        assert.strictEqual(t.inputSchema.type, "object", t.name)
        assert.strictEqual(t.outputSchema?.type, "object", t.name)
        assert.isAbove((t.description ?? "").length, 40, t.name)
        assert.isBoolean(t.annotations?.readOnlyHint, t.name)
      }
      const load = tools.find((t) => t.name === "lms_load_model")!
      assert.deepStrictEqual(load.inputSchema.required, ["model"])
      assert.isTrue(tools.find((t) => t.name === "lms_unload_model")!.annotations?.destructiveHint)
      assert.isTrue(tools.find((t) => t.name === "health_check")!.annotations?.readOnlyHint)
    }))

  it.scopedLive("every tool answers a valid call with structured content that fits its output schema", () =>
    Effect.gen(function*() {
      const { client, sim } = yield* withSim({
        scenario: { rules: [{ match: { round: 1 }, reply: { content: "second" } }] }
      })
      yield* Effect.promise(() => client.listTools())
      const health = yield* call(client, "health_check")
      assert.strictEqual(j(health.structuredContent).get("reachable").raw, true)
      const models = yield* call(client, "list_models", { type: "embedding" })
      assert.deepStrictEqual(j(models.structuredContent).get("models").arr.map((m) => m.get("key").str), [
        "text-embedding-nomic-embed-text-v1.5"
      ])
      const info = yield* call(client, "get_model_info", { model: "qwen/qwen3-4b" })
      assert.strictEqual(j(info.structuredContent).get("tool_use").raw, true)
      const chat = yield* call(client, "chat_completion", { prompt: "hello there", max_tokens: 50 })
      assert.strictEqual(j(chat.structuredContent).get("content").str, "You said: hello there")
      assert.strictEqual(textOf(chat), "You said: hello there")
      const completion = yield* call(client, "text_completion", { prompt: "Once upon a time", max_tokens: 2 })
      assert.strictEqual(j(completion.structuredContent).get("finish_reason").str, "length")
      const first = yield* call(client, "create_response", { input: "remember 7" })
      const id = j(first.structuredContent).get("response_id").str
      const second = yield* call(client, "create_response", { input: "and now?", previous_response_id: id })
      assert.strictEqual(j(second.structuredContent).get("output_text").str, "second")
      const emb = yield* call(client, "generate_embeddings", { input: ["a", "b"] })
      assert.strictEqual(j(emb.structuredContent).get("dimensions").num, 768)
      const status = yield* call(client, "lms_server_status")
      assert.strictEqual(j(status.structuredContent).get("running").raw, true)
      assert.strictEqual(j(status.structuredContent).get("lifecycle", "backend").str, "jit")
      assert.deepStrictEqual(j(status.structuredContent).get("llm_queue").raw, {
        queued: 0,
        limit: 2048,
        in_flight: {}
      })
      const load = yield* call(client, "lms_load_model", { model: "google/gemma-3-1b", ttl_seconds: 999999 })
      assert.strictEqual(j(load.structuredContent).get("ttl_seconds").num, 3600)
      assert.strictEqual(
        (yield* sim.state.get).instances.find((i) => i.identifier === "google/gemma-3-1b")?.ttlMs,
        3_600_000
      )
      const ensure = yield* call(client, "lms_ensure_model_loaded", { model: "google/gemma-3-1b" })
      assert.strictEqual(j(ensure.structuredContent).get("already_loaded").raw, true)
      const loaded = yield* call(client, "lms_list_loaded_models")
      assert.include(
        j(loaded.structuredContent).get("instances").arr.map((i) => i.get("identifier").str),
        "google/gemma-3-1b"
      )
      const unload = yield* call(client, "lms_unload_model", { identifier: "google/gemma-3-1b" })
      assert.deepStrictEqual(j(unload.structuredContent).get("unloaded").raw, ["google/gemma-3-1b"])
      const diag = yield* call(client, "diagnose")
      assert.strictEqual(j(diag.structuredContent).get("healthy").raw, true)
      assert.include(j(diag.structuredContent).get("checks").arr.map((c) => c.get("name").str), "Default model")
      for (
        const r of [
          health,
          models,
          info,
          chat,
          completion,
          first,
          second,
          emb,
          status,
          load,
          ensure,
          loaded,
          unload,
          diag
        ]
      ) {
        assert.notStrictEqual(r.isError, true)
      }
    }))

  it.scopedLive("invalid calls (missing, extra, wrong-typed fields) are error results naming the problem", () =>
    Effect.gen(function*() {
      const { client } = yield* withSim()
      yield* Effect.promise(() => client.listTools())
      const cases: ReadonlyArray<[string, Record<string, unknown>, string]> = [
        ["lms_load_model", {}, "model"],
        ["lms_load_model", { model: "x", colour: "red" }, "colour"],
        ["chat_completion", { prompt: 42 }, "prompt"],
        ["generate_embeddings", { input: [] }, "input"],
        ["create_response", { input: "x", previous_response_id: "nope" }, "previous_response_id"],
        ["health_check", { verbose: true }, "verbose"]
      ]
      for (const [name, args, field] of cases) {
        const r = yield* call(client, name, args)
        assert.isTrue(r.isError, `${name} ${JSON.stringify(args)}`)
        assert.isUndefined(r.structuredContent)
        assert.match(textOf(r), /^InvalidArguments: /)
        assert.include(textOf(r), field)
      }
    }))

  it.scopedLive("typed failures are isError results: <Tag>: message, a Hint line, the fields as JSON; no structuredContent", () =>
    Effect.gen(function*() {
      const { client } = yield* withSim()
      yield* Effect.promise(() => client.listTools())
      const r = yield* call(client, "chat_completion", { prompt: "x", model: "qwen/qwen3-4" })
      assert.isTrue(r.isError)
      assert.isUndefined(r.structuredContent)
      const [first, hint, fields] = textOf(r).split("\n")
      assert.match(first!, /^ModelNotFound: Model "qwen\/qwen3-4" was not found/)
      assert.match(hint!, /^Hint: Did you mean "qwen\/qwen3-4b"/)
      assert.deepStrictEqual(j(JSON.parse(fields!)).get("suggestions").raw, ["qwen/qwen3-4b"])
      const ttl = yield* call(client, "lms_load_model", { model: "google/gemma-3-1b", ttl_seconds: 0 })
      assert.match(textOf(ttl), /^InvalidTtl: /)
      const unknown = yield* Effect.promise(() => client.callTool({ name: "no_such_tool", arguments: {} }))
      assert.isTrue(unknown.isError)
      assert.match(textOf(unknown), /^UnknownTool: /)
    }))

  it.scopedLive("LM Studio stopped: health_check reports it with a hint and the server stays up; restarted: it recovers", () =>
    Effect.gen(function*() {
      const first = yield* Effect.scoped(Effect.map(start(), (s) => s.port))
      const client = yield* bridge(`http://127.0.0.1:${first}`)
      yield* Effect.promise(() => client.listTools())
      const down = yield* call(client, "health_check")
      const body = j(down.structuredContent)
      assert.strictEqual(body.get("reachable").raw, false)
      assert.match(body.get("problem").str, /^LmStudioUnreachable: /)
      assert.include(body.get("hint").str, "lms server start")
      const chat = yield* call(client, "chat_completion", { prompt: "x" })
      assert.isTrue(chat.isError)
      const sim = yield* start({ port: first })
      const up = yield* call(client, "health_check")
      assert.strictEqual(j(up.structuredContent).get("reachable").raw, true)
      assert.strictEqual(sim.port, first)
    }))

  it.scopedLive("a slow streamed chat sends progress with the text so far; cancelling it aborts the request to LM Studio", () =>
    Effect.gen(function*() {
      const words = Array.from({ length: 120 }, (_, i) => `w${i}`).join(" ")
      const { client, sim } = yield* withSim({
        scenario: { rules: [{ match: {}, reply: { content: words } }] },
        faults: { tokenDelayMs: 15 }
      })
      yield* Effect.promise(() => client.listTools())
      const progress: Array<{ progress: number; message?: string | undefined }> = []
      const done = yield* Effect.promise(() =>
        client.callTool({ name: "chat_completion", arguments: { prompt: "go" } }, undefined, {
          onprogress: (p) => void progress.push(p),
          timeout: 30_000
        })
      )
      assert.strictEqual(j(done.structuredContent).get("content").str, words)
      assert.isAtLeast(progress.length, 5)
      assert.isTrue(progress.every((p, i) => i === 0 || p.progress >= progress[i - 1]!.progress))
      assert.isTrue((progress[progress.length - 1]!.message ?? "").endsWith("w119"))

      // Cancel mid-stream: the SDK sends notifications/cancelled; the bridge interrupts the call and its HTTP request.
      const controller = new AbortController()
      const cancelled = Effect.promise(() =>
        client
          .callTool({ name: "chat_completion", arguments: { prompt: "again" } }, undefined, {
            signal: controller.signal,
            onprogress: () => controller.abort()
          })
          .then(
            () => "finished",
            () => "cancelled"
          )
      )
      assert.strictEqual(yield* cancelled, "cancelled")
      const state = yield* sim.state.get.pipe(
        Effect.filterOrFail((d) => d.counters.streamsAborted >= 1, () => "not yet" as const),
        Effect.retry(Schedule.spaced(Duration.millis(50)).pipe(Schedule.upTo(Duration.seconds(10)))),
        Effect.orDie
      )
      assert.strictEqual(state.counters.streamsAborted, 1)
      const next = yield* call(client, "chat_completion", { prompt: "still alive?" })
      assert.isTrue(j(next.structuredContent).get("content").str.startsWith("w0"))
    }))

  it.scopedLive(
    "admission: LM Studio's `parallel` 1 → one request at a time; past the queue, BridgeOverloaded with a hint",
    () =>
      Effect.gen(function*() {
        const sim = yield* start({ loaded: [], faults: { latencyMs: 800 } })
        // The model is loaded with parallel 1, which LM Studio reports for the instance (GET /api/v1/models).
        yield* sim.state.load({ model: "qwen/qwen3-4b", ttlMs: null, parallel: 1 })
        const client = yield* bridge(sim.baseUrl, { LLM_QUEUE_LIMIT: "1" })
        // Warm up (API detection, model listing), so the three calls below only send their chats.
        yield* call(client, "list_models")
        const before = (yield* sim.state.get).counters.byPath["/v1/chat/completions"] ?? 0
        const calls = yield* Effect.fork(
          Effect.all(
            [
              call(client, "chat_completion", { prompt: "one" }),
              call(client, "chat_completion", { prompt: "two" }),
              call(client, "chat_completion", { prompt: "three" })
            ],
            { concurrency: "unbounded" }
          )
        )
        // While they run, lms_server_status shows one in flight and one waiting: sampled every 100 ms (each status
        // call takes its queue snapshot on arrival, then waits for LM Studio's greeting).
        const samples = yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i),
          (i) =>
            call(client, "lms_server_status").pipe(
              Effect.delay(Duration.millis(i * 100)),
              Effect.map((r) => j(r.structuredContent).get("llm_queue").raw)
            ),
          { concurrency: "unbounded" }
        )
        assert.deepInclude(samples, { queued: 1, limit: 1, in_flight: { "qwen/qwen3-4b": 1 } }, JSON.stringify(samples))
        const [a, b, c] = yield* Fiber.join(calls)
        const results = [a, b, c]
        const refused = results.filter((r) => r.isError === true)
        const served = results.filter((r) => r.isError !== true)
        // One runs, one waits its turn, the third finds the queue full.
        assert.strictEqual(served.length, 2, JSON.stringify(results))
        assert.strictEqual(refused.length, 1)
        assert.match(textOf(refused[0]), /^BridgeOverloaded: The bridge is busy: 1 requests are queued \(limit 1\)/)
        assert.include(textOf(refused[0]), "Hint: Retry in about")
        assert.strictEqual((yield* sim.state.get).counters.byPath["/v1/chat/completions"], before + 2)
      }),
    60_000
  )

  it.live("stdout carries only JSON-RPC frames for a whole session", () =>
    Effect.scoped(
      Effect.gen(function*() {
        const sim = yield* start()
        const frames = [
          {
            jsonrpc: "2.0",
            id: 1,
            method: "initialize",
            params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
          },
          { jsonrpc: "2.0", method: "notifications/initialized" },
          { jsonrpc: "2.0", id: 2, method: "tools/list" },
          {
            jsonrpc: "2.0",
            id: 3,
            method: "tools/call",
            params: { name: "chat_completion", arguments: { prompt: "hi" } }
          },
          {
            jsonrpc: "2.0",
            id: 4,
            method: "tools/call",
            params: { name: "lms_load_model", arguments: { model: "--help" } }
          },
          { jsonrpc: "2.0", id: 5, method: "tools/call", params: { name: "health_check", arguments: {} } }
        ]
        const out = yield* Effect.promise(
          () =>
            new Promise<{ stdout: string; stderr: string }>((resolve) => {
              const child = spawn(process.execPath, [binPath, "serve"], {
                env: { ...process.env, LMSTUDIO_BASE_URL: sim.baseUrl, LOG_LEVEL: "debug" },
                stdio: ["pipe", "pipe", "pipe"]
              })
              let stdout = ""
              let stderr = ""
              child.stdout.on("data", (d: Buffer) => {
                stdout += d.toString()
                if ((stdout.match(/\n/g) ?? []).length >= 5) child.stdin.end()
              })
              child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
              child.on("close", () => resolve({ stdout, stderr }))
              child.stdin.write(frames.map((f) => JSON.stringify(f)).join("\n") + "\n")
            })
        )
        const lines = out.stdout.split("\n").filter((l) => l !== "")
        assert.strictEqual(lines.length, 5)
        for (const line of lines) {
          const frame = j(JSON.parse(line))
          assert.strictEqual(frame.get("jsonrpc").str, "2.0")
          assert.isTrue(frame.has("result") || frame.has("error"))
        }
        assert.include(out.stderr, "MCP server ready on stdio")
        assert.isTrue(Option.isSome(Option.fromNullable(lines.find((l) => l.includes("InvalidModelName")))))
      })
    ))
})
