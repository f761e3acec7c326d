/**
 * Simulator conformance: one test per endpoint and quirk of protocol §9/§10, over real HTTP with plain fetch (never
 * through the bridge's client, so a misunderstanding cannot hide in both).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { start } from "../../src/simulator/Simulator.js"
import { http, j, sseData } from "../helpers.js"

const chat = (model: string, content = "hi", extra: Record<string, unknown> = {}) => ({
  model,
  messages: [{ role: "user", content }],
  ...extra
})

describe("simulator: discovery endpoints (protocol §1, §2.1, §3, §4.1)", () => {
  it.scopedLive("GET /lmstudio-greeting answers {lmstudio:true}", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const r = yield* http(sim, "GET", "/lmstudio-greeting")
      assert.strictEqual(r.status, 200)
      assert.deepStrictEqual(r.json, { lmstudio: true })
    }))

  it.scopedLive("GET /v1/models lists every downloaded model with JIT on, only loaded ones with JIT off", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const on = j((yield* http(sim, "GET", "/v1/models")).json)
      assert.deepStrictEqual(on.keys, ["data", "object"])
      assert.strictEqual(on.get("data").arr.length, 5)
      assert.deepStrictEqual(on.get("data", 0).keys, ["id", "object", "owned_by"])
      yield* sim.state.setSettings({ jit: false })
      const off = j((yield* http(sim, "GET", "/v1/models")).json)
      assert.deepStrictEqual(off.get("data").arr.map((m) => m.get("id").str), ["qwen/qwen3-4b"])
    }))

  it.scopedLive("GET /api/v0/models has state, loaded_context_length, capabilities, plural 'embeddings' and 'vlm'", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const data = j((yield* http(sim, "GET", "/api/v0/models")).json).get("data").arr
      const byId = (pred: (id: string) => boolean) => data.find((m) => pred(m.get("id").str))!
      const qwen = byId((id) => id === "qwen/qwen3-4b")
      assert.strictEqual(qwen.get("state").str, "loaded")
      assert.strictEqual(qwen.get("loaded_context_length").num, 4096)
      assert.deepStrictEqual(qwen.get("capabilities").raw, ["tool_use"])
      assert.strictEqual(byId((id) => id.includes("nomic")).get("type").str, "embeddings")
      assert.strictEqual(byId((id) => id.includes("vl")).get("type").str, "vlm")
      assert.strictEqual(byId((id) => id === "google/gemma-3-1b").get("state").str, "not-loaded")
      const one = yield* http(sim, "GET", "/api/v0/models/google%2Fgemma-3-1b")
      assert.strictEqual(j(one.json).get("id").str, "google/gemma-3-1b")
      assert.strictEqual((yield* http(sim, "GET", "/api/v0/models/nope")).status, 404)
    }))

  it.scopedLive("GET /api/v1/models has loaded_instances, singular 'embedding', no 'vlm', no state", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const models = j((yield* http(sim, "GET", "/api/v1/models")).json).get("models").arr
      const qwen = models.find((m) => m.get("key").str === "qwen/qwen3-4b")!
      assert.deepStrictEqual(qwen.get("loaded_instances").arr.map((i) => i.get("id").str), ["qwen/qwen3-4b"])
      assert.strictEqual(qwen.get("capabilities", "trained_for_tool_use").raw, true)
      assert.isFalse(qwen.has("state"))
      const emb = models.find((m) => m.get("key").str.includes("nomic"))!
      assert.strictEqual(emb.get("type").str, "embedding")
      assert.isFalse(emb.has("capabilities"))
      assert.isTrue(models.every((m) => m.get("type").str !== "vlm"))
    }))
})

describe("simulator: chat completions (protocol §2.2)", () => {
  it.scopedLive("non-streamed: tool_calls [], reasoning_content '', stats {}, system_fingerprint = served identifier", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const r = j((yield* http(sim, "POST", "/v1/chat/completions", chat("qwen/qwen3-4b"))).json)
      assert.match(r.get("id").str, /^chatcmpl-/)
      assert.strictEqual(r.get("object").str, "chat.completion")
      assert.deepStrictEqual(r.get("choices", 0, "message", "tool_calls").raw, [])
      assert.strictEqual(r.get("choices", 0, "message", "reasoning_content").str, "")
      assert.deepStrictEqual(r.get("stats").raw, {})
      assert.strictEqual(r.get("system_fingerprint").str, r.get("model").str)
      assert.strictEqual(r.get("choices", 0, "finish_reason").str, "stop")
      const usage = r.get("usage")
      assert.strictEqual(
        usage.get("total_tokens").num,
        usage.get("prompt_tokens").num + usage.get("completion_tokens").num
      )
    }))

  it.scopedLive("streamed: role in every delta, a final empty delta with finish_reason, usage only when asked, [DONE]", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const plain = yield* http(
        sim,
        "POST",
        "/v1/chat/completions",
        chat("qwen/qwen3-4b", "one two three", { stream: true })
      )
      assert.include(plain.contentType, "text/event-stream")
      const frames = sseData(plain.text)
      assert.strictEqual(frames[frames.length - 1], "[DONE]")
      const chunks = frames.slice(0, -1).map(j)
      const content = chunks.filter((c) => c.get("choices", 0, "delta", "content").defined)
      assert.isTrue(content.length > 1)
      assert.isTrue(content.every((c) => c.get("choices", 0, "delta", "role").raw === "assistant"))
      const last = chunks[chunks.length - 1]!
      assert.deepStrictEqual(last.get("choices", 0, "delta").raw, {})
      assert.strictEqual(last.get("choices", 0, "finish_reason").str, "stop")
      assert.isTrue(chunks.every((c) => !c.has("usage")))
      const withUsage = sseData(
        (yield* http(
          sim,
          "POST",
          "/v1/chat/completions",
          chat("qwen/qwen3-4b", "x", { stream: true, stream_options: { include_usage: true } })
        )).text
      )
      const usage = j(withUsage[withUsage.length - 2])
      assert.deepStrictEqual(usage.get("choices").raw, [])
      assert.isNumber(usage.get("usage", "total_tokens").num)
    }))

  it.scopedLive("tool calls: numeric string ids, JSON-string arguments, first streamed fragment has id/name and empty arguments", () =>
    Effect.gen(function*() {
      const sim = yield* start({
        scenario: { rules: [{ match: {}, reply: { toolCalls: [{ name: "search", arguments: { q: "dell" } }] } }] }
      })
      const r = j((yield* http(sim, "POST", "/v1/chat/completions", chat("qwen/qwen3-4b"))).json)
      const call = r.get("choices", 0, "message", "tool_calls", 0)
      assert.match(call.get("id").str, /^\d+$/)
      assert.strictEqual(call.get("type").str, "function")
      assert.strictEqual(call.get("function", "arguments").str, "{\"q\":\"dell\"}")
      assert.strictEqual(r.get("choices", 0, "finish_reason").str, "tool_calls")
      const frames = sseData(
        (yield* http(sim, "POST", "/v1/chat/completions", chat("qwen/qwen3-4b", "x", { stream: true }))).text
      )
      const deltas = frames
        .slice(0, -1)
        .map(j)
        .flatMap((
          c
        ) => (c.get("choices", 0, "delta", "tool_calls").defined ? c.get("choices", 0, "delta", "tool_calls").arr : []))
      assert.deepStrictEqual(deltas[0]!.keys, ["index", "id", "type", "function"])
      assert.strictEqual(deltas[0]!.get("function", "arguments").str, "")
      assert.isTrue(deltas.slice(1).every((d) => !d.has("id") && !d.get("function").has("name")))
      assert.strictEqual(deltas.map((d) => d.get("function", "arguments").str).join(""), "{\"q\":\"dell\"}")
    }))

  it.scopedLive("reasoning goes to 'reasoning' for gpt-oss and 'reasoning_content' otherwise; think blocks stay in content", () =>
    Effect.gen(function*() {
      const sim = yield* start({
        loaded: ["openai/gpt-oss-20b", "qwen/qwen3-4b"],
        scenario: { rules: [{ match: {}, reply: { reasoning: "hmm", think: "inner", content: "ok" } }] }
      })
      const oss = j((yield* http(sim, "POST", "/v1/chat/completions", chat("openai/gpt-oss-20b"))).json).get(
        "choices",
        0,
        "message"
      )
      assert.strictEqual(oss.get("reasoning").str, "hmm")
      assert.isFalse(oss.has("reasoning_content"))
      const qwen = j((yield* http(sim, "POST", "/v1/chat/completions", chat("qwen/qwen3-4b"))).json).get(
        "choices",
        0,
        "message"
      )
      assert.strictEqual(qwen.get("reasoning_content").str, "hmm")
      assert.strictEqual(qwen.get("content").str, "<think>inner</think>\nok")
    }))

  it.scopedLive("text-formatted tool calls stay in content with tool_calls [] and finish_reason stop", () =>
    Effect.gen(function*() {
      const sim = yield* start({
        scenario: {
          rules: [{
            match: {},
            reply: { textToolCall: { format: "tool_request", call: { name: "f", arguments: { a: 1 } } } }
          }]
        }
      })
      const msg = j((yield* http(sim, "POST", "/v1/chat/completions", chat("qwen/qwen3-4b"))).json).get("choices", 0)
      assert.strictEqual(
        msg.get("message", "content").str,
        "[TOOL_REQUEST]{\"name\":\"f\",\"arguments\":{\"a\":1}}[END_TOOL_REQUEST]"
      )
      assert.deepStrictEqual(msg.get("message", "tool_calls").raw, [])
      assert.strictEqual(msg.get("finish_reason").str, "stop")
    }))

  it.scopedLive("response_format: json_schema gets JSON that fits; json_object is a 400", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const schema = { type: "object", properties: { name: { type: "string" }, age: { type: "integer" } } }
      const r = j(
        (yield* http(
          sim,
          "POST",
          "/v1/chat/completions",
          chat("qwen/qwen3-4b", "x", { response_format: { type: "json_schema", json_schema: { name: "p", schema } } })
        )).json
      )
      assert.deepStrictEqual(JSON.parse(r.get("choices", 0, "message", "content").str), { name: "example", age: 0 })
      const bad = yield* http(
        sim,
        "POST",
        "/v1/chat/completions",
        chat("qwen/qwen3-4b", "x", { response_format: { type: "json_object" } })
      )
      assert.strictEqual(bad.status, 400)
    }))

  it.scopedLive("/api/v0/chat/completions adds stats, model_info and runtime", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const r = j((yield* http(sim, "POST", "/api/v0/chat/completions", chat("qwen/qwen3-4b"))).json)
      assert.strictEqual(r.get("stats", "stop_reason").str, "eosFound")
      assert.strictEqual(r.get("model_info", "context_length").num, 4096)
      assert.isString(r.get("runtime", "name").str)
    }))
})

describe("simulator: model resolution quirks (protocol §5, §9)", () => {
  it.scopedLive("a wrong name with exactly one model loaded is silently served by that model", () =>
    Effect.gen(function*() {
      const sim = yield* start({ settings: { jit: false } })
      const r = j((yield* http(sim, "POST", "/v1/chat/completions", chat("no-such-model"))).json)
      assert.strictEqual(r.get("model").str, "qwen/qwen3-4b")
    }))

  it.scopedLive("a wrong name with two loaded is 404 model_not_found listing 'Your models:' (pretty-printed body)", () =>
    Effect.gen(function*() {
      const sim = yield* start({ loaded: ["qwen/qwen3-4b", "google/gemma-3-1b"] })
      const r = yield* http(sim, "POST", "/v1/chat/completions", chat("default"))
      assert.strictEqual(r.status, 404)
      const e = j(r.json).get("error")
      assert.strictEqual(e.get("code").str, "model_not_found")
      assert.strictEqual(e.get("param").str, "model")
      assert.include(e.get("message").str, "Model \"default\" not found.")
      assert.include(e.get("message").str, "Your models:\n\n")
      assert.include(r.text, "\n    \"error\": {")
    }))

  it.scopedLive("nothing loaded and JIT off: 400 'No models loaded' with code null", () =>
    Effect.gen(function*() {
      const sim = yield* start({ loaded: [], settings: { jit: false } })
      const r = yield* http(sim, "POST", "/v1/chat/completions", chat("qwen/qwen3-4b"))
      assert.strictEqual(r.status, 400)
      assert.deepStrictEqual(j(r.json).get("error").raw, {
        message: "No models loaded. Please load a model in the developer page or use the 'lms load' command.",
        type: "invalid_request_error",
        param: "model",
        code: null
      })
    }))

  it.scopedLive("JIT loads a downloaded model with the request's ttl and auto-evicts earlier JIT models only", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      yield* http(sim, "POST", "/v1/chat/completions", chat("google/gemma-3-1b", "x", { ttl: 120 }))
      let d = yield* sim.state.get
      const gemma = d.instances.find((i) => i.identifier === "google/gemma-3-1b")!
      assert.isTrue(gemma.jit)
      assert.strictEqual(gemma.ttlMs, 120_000)
      yield* http(sim, "POST", "/v1/chat/completions", chat("openai/gpt-oss-20b"))
      d = yield* sim.state.get
      assert.deepStrictEqual(d.instances.map((i) => i.identifier), ["qwen/qwen3-4b", "openai/gpt-oss-20b"])
      assert.strictEqual(d.instances[1]!.ttlMs, 3_600_000)
    }))

  it.scopedLive("loading a key twice gives the identifiers key and key:2; requests can name either", () =>
    Effect.gen(function*() {
      const sim = yield* start({ loaded: [] })
      const a = j((yield* http(sim, "POST", "/api/v1/models/load", { model: "google/gemma-3-1b" })).json)
      const b = j((yield* http(sim, "POST", "/api/v1/models/load", { model: "google/gemma-3-1b" })).json)
      assert.strictEqual(a.get("instance_id").str, "google/gemma-3-1b")
      assert.strictEqual(b.get("instance_id").str, "google/gemma-3-1b:2")
      assert.strictEqual(b.get("status").str, "loaded")
      const r = j((yield* http(sim, "POST", "/v1/chat/completions", chat("google/gemma-3-1b:2"))).json)
      assert.strictEqual(r.get("model").str, "google/gemma-3-1b:2")
    }))
})

describe("simulator: other endpoints (protocol §2.3–§2.5, §4)", () => {
  it.scopedLive("/v1/completions and /v1/embeddings shapes; a chat model on /v1/embeddings is 400 'Model is not embedding'", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const c = j(
        (yield* http(sim, "POST", "/v1/completions", { model: "qwen/qwen3-4b", prompt: "Once", max_tokens: 2 })).json
      )
      assert.strictEqual(c.get("object").str, "text_completion")
      assert.strictEqual(c.get("choices", 0, "finish_reason").str, "length")
      const e = j(
        (yield* http(sim, "POST", "/v1/embeddings", {
          model: "text-embedding-nomic-embed-text-v1.5",
          input: ["a", "b"]
        })).json
      )
      assert.strictEqual(e.get("data").arr.length, 2)
      assert.strictEqual(e.get("data", 1, "index").num, 1)
      assert.match(e.get("model").str, /@q4_0$/)
      assert.deepStrictEqual(e.get("usage").raw, { prompt_tokens: 0, total_tokens: 0 })
      const bad = yield* http(sim, "POST", "/v1/embeddings", { model: "qwen/qwen3-4b", input: "a" })
      assert.strictEqual(bad.status, 400)
      assert.strictEqual(j(bad.json).get("error", "message").str, "Model is not embedding")
    }))

  it.scopedLive("/v1/responses: resp_<48 hex> ids, previous_response_id chains, previous_response_not_found", () =>
    Effect.gen(function*() {
      const sim = yield* start({
        scenario: { rules: [{ match: { round: 1 }, reply: { content: "you said 7 before" } }] }
      })
      const first = j((yield* http(sim, "POST", "/v1/responses", { model: "qwen/qwen3-4b", input: "7" })).json)
      assert.match(first.get("id").str, /^resp_[0-9a-f]{48}$/)
      assert.match(first.get("output", 0, "id").str, /^msg_/)
      assert.strictEqual(first.get("output", 0, "content", 0, "type").str, "output_text")
      const second = j(
        (yield* http(sim, "POST", "/v1/responses", {
          model: "qwen/qwen3-4b",
          input: "?",
          previous_response_id: first.get("id").str
        })).json
      )
      assert.strictEqual(second.get("output", 0, "content", 0, "text").str, "you said 7 before")
      const missing = yield* http(sim, "POST", "/v1/responses", {
        model: "qwen/qwen3-4b",
        input: "?",
        previous_response_id: "resp_x"
      })
      assert.strictEqual(missing.status, 400)
      assert.strictEqual(j(missing.json).get("error", "code").str, "previous_response_not_found")
    }))

  it.scopedLive("/v1/responses streams response.created … output_text.delta … response.completed with sequence numbers", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const r = yield* http(sim, "POST", "/v1/responses", { model: "qwen/qwen3-4b", input: "a b", stream: true })
      const events = sseData(r.text).map(j)
      const types = events.map((e) => e.get("type").str)
      assert.strictEqual(types[0], "response.created")
      assert.include(types, "response.output_text.delta")
      assert.strictEqual(types[types.length - 1], "response.completed")
      assert.deepStrictEqual(events.map((e) => e.get("sequence_number").num), events.map((_, i) => i))
      assert.include(r.text, "event: response.completed\n")
    }))

  it.scopedLive("/api/v1/chat: response_id and stats; streamed named events from chat.start to chat.end", () =>
    Effect.gen(function*() {
      const sim = yield* start({ loaded: [] })
      const r = j((yield* http(sim, "POST", "/api/v1/chat", { model: "qwen/qwen3-4b", input: "hello" })).json)
      assert.match(r.get("response_id").str, /^resp_/)
      const output = r.get("output").arr
      assert.strictEqual(output[output.length - 1]!.get("type").str, "message")
      assert.isNumber(r.get("stats", "model_load_time_seconds").num)
      const s = yield* http(sim, "POST", "/api/v1/chat", {
        model: "qwen/qwen3-4b",
        input: "again",
        previous_response_id: r.get("response_id").str,
        stream: true
      })
      const types = sseData(s.text).map((e) => j(e).get("type").str)
      assert.strictEqual(types[0], "chat.start")
      assert.include(types, "message.delta")
      assert.strictEqual(types[types.length - 1], "chat.end")
      assert.include(s.text, "event: chat.start\n")
    }))

  it.scopedLive("/api/v1/models/load honours ttl by default, refuses it when set to reject; unload unknown is 404", () =>
    Effect.gen(function*() {
      const sim = yield* start({ loaded: [], settings: { restLoadTtl: "reject" } })
      const refused = yield* http(sim, "POST", "/api/v1/models/load", { model: "google/gemma-3-1b", ttl: 60 })
      assert.strictEqual(refused.status, 400)
      yield* sim.state.setSettings({ restLoadTtl: "accept" })
      yield* http(sim, "POST", "/api/v1/models/load", { model: "google/gemma-3-1b", ttl: 60, echo_load_config: true })
      assert.strictEqual((yield* sim.state.get).instances[0]!.ttlMs, 60_000)
      const unload = yield* http(sim, "POST", "/api/v1/models/unload", { instance_id: "google/gemma-3-1b" })
      assert.deepStrictEqual(unload.json, { instance_id: "google/gemma-3-1b" })
      assert.strictEqual(
        (yield* http(sim, "POST", "/api/v1/models/unload", { instance_id: "google/gemma-3-1b" })).status,
        404
      )
    }))

  it.scopedLive("unknown routes: HTTP 200 with an error body outside /api/v1/, 404 inside; a pre-0.4 server says 200 for /api/v1/", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const v0 = yield* http(sim, "GET", "/api/v0/events")
      assert.strictEqual(v0.status, 200)
      assert.deepStrictEqual(v0.json, { error: "Unexpected endpoint or method. (GET /api/v0/events)" })
      assert.strictEqual((yield* http(sim, "GET", "/api/v1/events")).status, 404)
      yield* sim.state.setSettings({ apis: { v1: false } })
      const old = yield* http(sim, "GET", "/api/v1/models")
      assert.strictEqual(old.status, 200)
      assert.include(j(old.json).get("error").str, "Unexpected endpoint")
    }))

  it.scopedLive("authentication: Bearer token required when set; the greeting stays open", () =>
    Effect.gen(function*() {
      const sim = yield* start({ settings: { apiToken: "t" } })
      assert.strictEqual((yield* http(sim, "GET", "/lmstudio-greeting")).status, 200)
      assert.strictEqual((yield* http(sim, "GET", "/v1/models")).status, 401)
      assert.strictEqual((yield* http(sim, "GET", "/v1/models", undefined, { authorization: "Bearer t" })).status, 200)
    }))
})

describe("simulator: faults and the control API", () => {
  it.scopedLive("failNext injects a status and body for a path, then clears", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      yield* http(sim, "POST", "/__sim/faults", { failNext: { status: 503, path: "/v1/chat", count: 2 } })
      assert.strictEqual((yield* http(sim, "GET", "/v1/models")).status, 200)
      assert.strictEqual((yield* http(sim, "POST", "/v1/chat/completions", chat("qwen/qwen3-4b"))).status, 503)
      assert.strictEqual((yield* http(sim, "POST", "/v1/chat/completions", chat("qwen/qwen3-4b"))).status, 503)
      assert.strictEqual((yield* http(sim, "POST", "/v1/chat/completions", chat("qwen/qwen3-4b"))).status, 200)
    }))

  it.scopedLive("malformedJson sends a truncated body", () =>
    Effect.gen(function*() {
      const sim = yield* start({ faults: { malformedJson: { count: 1 } } })
      const r = yield* http(sim, "GET", "/v1/models")
      assert.strictEqual(r.status, 200)
      assert.isUndefined(r.json)
    }))

  it.scopedLive("resetMidStream cuts the TCP connection after N chunks", () =>
    Effect.gen(function*() {
      const sim = yield* start({ faults: { resetMidStream: { afterChunks: 2 } } })
      const result = yield* Effect.promise(() =>
        fetch(`${sim.baseUrl}/v1/chat/completions`, {
          method: "POST",
          body: JSON.stringify(chat("qwen/qwen3-4b", "a b c d e", { stream: true }))
        }).then(
          (res) => res.text().then(() => "complete", () => "reset"),
          () => "reset"
        )
      )
      assert.strictEqual(result, "reset")
    }))

  it.scopedLive("loadNeverLoads: the load reports success but the model never appears", () =>
    Effect.gen(function*() {
      const sim = yield* start({ loaded: [], faults: { loadNeverLoads: true } })
      const r = yield* http(sim, "POST", "/api/v1/models/load", { model: "google/gemma-3-1b" })
      assert.strictEqual(j(r.json).get("status").str, "loaded")
      const models = j((yield* http(sim, "GET", "/api/v1/models")).json).get("models").arr
      assert.deepStrictEqual(
        models.find((m) => m.get("key").str === "google/gemma-3-1b")!.get("loaded_instances").raw,
        []
      )
    }))

  it.scopedLive("unloadAfterRequests unloads a model after it served N requests", () =>
    Effect.gen(function*() {
      const sim = yield* start({ settings: { jit: false }, faults: { unloadAfterRequests: 2 } })
      assert.strictEqual((yield* http(sim, "POST", "/v1/chat/completions", chat("qwen/qwen3-4b"))).status, 200)
      assert.strictEqual((yield* http(sim, "POST", "/v1/chat/completions", chat("qwen/qwen3-4b"))).status, 200)
      assert.strictEqual((yield* http(sim, "POST", "/v1/chat/completions", chat("qwen/qwen3-4b"))).status, 400)
    }))

  it.scopedLive("jitFailure: 'No models loaded' although JIT is on", () =>
    Effect.gen(function*() {
      const sim = yield* start({ loaded: [], faults: { jitFailure: true } })
      const r = yield* http(sim, "POST", "/v1/chat/completions", chat("qwen/qwen3-4b"))
      assert.strictEqual(r.status, 400)
      assert.include(j(r.json).get("error", "message").str, "No models loaded")
    }))

  it.scopedLive("latency and token pacing delay answers without changing them", () =>
    Effect.gen(function*() {
      const sim = yield* start({ faults: { latencyMs: 20, tokenDelayMs: 5 } })
      const r = yield* http(sim, "POST", "/v1/chat/completions", chat("qwen/qwen3-4b", "a b c", { stream: true }))
      const content = sseData(r.text)
        .slice(0, -1)
        .map((c) => j(c).get("choices", 0, "delta", "content"))
        .map((c) => (c.defined ? c.str : ""))
        .join("")
      assert.strictEqual(content, "You said: a b c")
    }))

  it.scopedLive("the control API: state, scenario, settings, reset; bad input is a 400, unknown routes 404", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      assert.strictEqual(
        (yield* http(sim, "POST", "/__sim/scenario", { rules: [{ reply: { content: "scripted" } }] })).status,
        200
      )
      const r = j((yield* http(sim, "POST", "/v1/chat/completions", chat("qwen/qwen3-4b"))).json)
      assert.strictEqual(r.get("choices", 0, "message", "content").str, "scripted")
      const state = j((yield* http(sim, "GET", "/__sim/state")).json)
      assert.strictEqual(state.get("counters", "requests").num, 1)
      assert.strictEqual(state.get("recent", 0, "model").str, "qwen/qwen3-4b")
      assert.strictEqual((yield* http(sim, "POST", "/__sim/faults", { latencyMs: -1 })).status, 400)
      assert.strictEqual((yield* http(sim, "POST", "/__sim/nope", {})).status, 404)
      yield* http(sim, "POST", "/__sim/reset", {})
      const after = j((yield* http(sim, "POST", "/v1/chat/completions", chat("qwen/qwen3-4b"))).json)
      assert.strictEqual(after.get("choices", 0, "message", "content").str, "You said: hi")
    }))

  it.scopedLive("the developer role is treated as system", () =>
    Effect.gen(function*() {
      const sim = yield* start({
        scenario: { rules: [{ match: { userContains: "dev" }, reply: { content: "wrong: developer read as user" } }] }
      })
      const r = j(
        (yield* http(sim, "POST", "/v1/chat/completions", {
          model: "qwen/qwen3-4b",
          messages: [{ role: "developer", content: "dev rules" }, { role: "user", content: "hi" }]
        })).json
      )
      assert.strictEqual(r.get("choices", 0, "message", "content").str, "You said: hi")
    }))
})
