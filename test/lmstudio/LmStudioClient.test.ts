/**
 * LmStudioClient against the simulator over real HTTP: every endpoint, the error classification, streaming,
 * retries, auth, and interruption reaching the server.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Either, Exit, Fiber, Metric, Option, Redacted, Schedule, Stream } from "effect"
import { collectChat } from "../../src/lmstudio/client/Mapping.js"
import { CurrentRecorder, Recorder } from "../../src/observability/Metrics.js"
import { start } from "../../src/simulator/Simulator.js"
import { makeClient, simAndClient } from "../helpers.js"

const hi = [{ role: "user" as const, content: "hi there" }]

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got ${JSON.stringify(exit.value)}`)
  const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
  if (failure === undefined) throw new Error(`expected a typed failure, got ${String(exit.cause)}`)
  return failure
}

/** Polls until the predicate holds (bounded), for state the server updates asynchronously. */
const eventually = <A>(read: Effect.Effect<A>, ok: (a: A) => boolean) =>
  read.pipe(
    Effect.filterOrFail(ok, () => "condition not reached" as const),
    Effect.retry(Schedule.spaced(Duration.millis(20)).pipe(Schedule.upTo(Duration.seconds(5)))),
    Effect.orDie
  )

describe("LmStudioClient (real HTTP to the simulator)", () => {
  it.scopedLive("greets and detects the server's APIs", () =>
    Effect.gen(function*() {
      const { client } = yield* simAndClient()
      const g = yield* client.greeting()
      assert.isTrue(g.lmstudio)
      assert.deepStrictEqual(yield* client.apis, { openai: true, v0: true, v1: true, responses: true })
    }))

  it.scopedLive("detects an old server without v1 REST or Responses and lists models from v0", () =>
    Effect.gen(function*() {
      const { client } = yield* simAndClient({ settings: { v1: false, responses: false } })
      assert.deepStrictEqual(yield* client.apis, { openai: true, v0: true, v1: false, responses: false })
      const models = yield* client.listV0Models()
      assert.isTrue(models.every((m) => m.source === "v0"))
      const qwen = models.find((m) => m.key === "qwen/qwen3-4b")
      assert.strictEqual(qwen?.loaded.length, 1)
      assert.strictEqual(models.find((m) => m.key.includes("nomic"))?.type, "embedding")
      const err = yield* Effect.exit(client.respond({ model: "qwen/qwen3-4b", input: "x" }))
      assert.strictEqual(failureOf(err)._tag, "LmStudioApiUnsupported")
    }))

  it.scopedLive("lists models from v1 with loaded instances, context, capabilities", () =>
    Effect.gen(function*() {
      const { client } = yield* simAndClient()
      const models = yield* client.listV1Models()
      const qwen = models.find((m) => m.key === "qwen/qwen3-4b")!
      assert.strictEqual(qwen.source, "v1")
      assert.strictEqual(qwen.toolUse, true)
      assert.deepStrictEqual(qwen.loaded.map((l) => l.id), ["qwen/qwen3-4b"])
      assert.isNumber(qwen.maxContextLength)
      assert.strictEqual(models.find((m) => m.key.includes("nomic"))?.type, "embedding")
      const ids = yield* client.listOpenAiModels()
      assert.include(ids, "openai/gpt-oss-20b")
    }))

  it.scopedLive("chats, reporting the served model, finish reason and usage", () =>
    Effect.gen(function*() {
      const { client } = yield* simAndClient()
      const r = yield* client.chat({ model: "qwen/qwen3-4b", messages: hi })
      assert.strictEqual(r.content, "You said: hi there")
      assert.strictEqual(r.model, "qwen/qwen3-4b")
      assert.strictEqual(r.finishReason, "stop")
      assert.deepStrictEqual(r.toolCalls, [])
      assert.isAbove(r.usage!.totalTokens, 0)
      const cut = yield* client.chat({ model: "qwen/qwen3-4b", messages: hi, maxTokens: 1 })
      assert.strictEqual(cut.finishReason, "length")
      assert.strictEqual(cut.content, "You")
    }))

  it.scopedLive("returns native tool calls with numeric ids and JSON-string arguments, and reasoning", () =>
    Effect.gen(function*() {
      const { client } = yield* simAndClient({
        scenario: {
          rules: [
            {
              match: { userContains: "weather" },
              reply: { reasoning: "need the tool", toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }] }
            }
          ]
        }
      })
      const r = yield* client.chat({ model: "qwen/qwen3-4b", messages: [{ role: "user", content: "weather?" }] })
      assert.strictEqual(r.finishReason, "tool_calls")
      assert.strictEqual(r.toolCalls.length, 1)
      assert.match(r.toolCalls[0]!.id, /^\d+$/)
      assert.strictEqual(r.toolCalls[0]!.name, "get_weather")
      assert.deepStrictEqual(JSON.parse(r.toolCalls[0]!.arguments), { city: "Paris" })
      assert.strictEqual(r.reasoning, "need the tool")
    }))

  it.scopedLive("streams deltas that collect to the non-streamed answer, with usage and reasoning", () =>
    Effect.gen(function*() {
      const { client } = yield* simAndClient({
        scenario: { rules: [{ match: {}, reply: { reasoning: "think hard", content: "The answer is 42." } }] }
      })
      const deltas = yield* Stream.runCollect(client.chatStream({ model: "openai/gpt-oss-20b", messages: hi }))
      const tags = Array.from(deltas).map((d) => d._tag)
      assert.include(tags, "Reasoning")
      assert.include(tags, "Usage")
      assert.strictEqual(tags[tags.length - 1], "Finish")
      const collected = yield* collectChat(client.chatStream({ model: "openai/gpt-oss-20b", messages: hi }))
      const plain = yield* client.chat({ model: "openai/gpt-oss-20b", messages: hi })
      assert.strictEqual(collected.content, plain.content)
      assert.strictEqual(collected.reasoning, "think hard")
      assert.strictEqual(plain.reasoning, "think hard")
      assert.strictEqual(collected.model, "openai/gpt-oss-20b")
    }))

  it.scopedLive("assembles streamed tool-call arguments for every chunk size, including whole", () =>
    Effect.gen(function*() {
      const args = { path: "/tmp/a b.txt", content: "line \"1\"\nline 2", n: 3, nested: { ok: true, list: [1, 2] } }
      const json = JSON.stringify(args)
      const sim = yield* start({})
      const client = yield* makeClient({ baseUrl: sim.baseUrl })
      for (const size of [0, 1, 2, 3, 5, 7, 13, json.length - 1, json.length]) {
        yield* sim.state.setScenario({
          rules: [
            {
              match: {},
              reply: {
                argsChunkSize: size,
                toolCalls: [
                  { name: "write_file", arguments: args },
                  { name: "read_file", arguments: { path: "x" } }
                ]
              }
            }
          ]
        })
        const r = yield* collectChat(client.chatStream({ model: "qwen/qwen3-4b", messages: hi }))
        assert.strictEqual(r.finishReason, "tool_calls")
        assert.deepStrictEqual(
          r.toolCalls.map((c) => [c.name, JSON.parse(c.arguments)]),
          [
            ["write_file", args],
            ["read_file", { path: "x" }]
          ],
          `chunk size ${size}`
        )
      }
    }))

  it.scopedLive("completes text, embeds deterministically, and checks embedding models", () =>
    Effect.gen(function*() {
      const { client } = yield* simAndClient()
      const c = yield* client.complete({ model: "qwen/qwen3-4b", prompt: "Once upon a time", maxTokens: 3 })
      assert.strictEqual(c.finishReason, "length")
      assert.strictEqual(c.text.trim().split(/\s+/).length, 3)
      const e1 = yield* client.embed({ model: "text-embedding-nomic-embed-text-v1.5", input: ["a", "b"] })
      const e2 = yield* client.embed({ model: "text-embedding-nomic-embed-text-v1.5", input: "a" })
      assert.strictEqual(e1.vectors.length, 2)
      assert.strictEqual(e1.dimensions, 768)
      assert.deepStrictEqual(e1.vectors[0], e2.vectors[0])
      assert.notDeepEqual(e1.vectors[0], e1.vectors[1])
      const wrong = yield* Effect.exit(client.embed({ model: "qwen/qwen3-4b", input: "a" }))
      const kind = failureOf(wrong)
      assert.strictEqual(kind._tag, "WrongModelKind")
      if (kind._tag === "WrongModelKind") assert.strictEqual(kind.expected, "embedding")
    }))

  it.scopedLive("chains Responses with previous_response_id, plain and streamed", () =>
    Effect.gen(function*() {
      const { client } = yield* simAndClient({
        scenario: { rules: [{ match: { round: 1 }, reply: { content: "second turn" } }] }
      })
      const first = yield* client.respond({ model: "qwen/qwen3-4b", input: "remember 7" })
      assert.match(first.id, /^resp_[0-9a-f]{48}$/)
      assert.strictEqual(first.outputText, "You said: remember 7")
      const second = yield* client.respond({ model: "qwen/qwen3-4b", input: "what?", previousResponseId: first.id })
      assert.strictEqual(second.outputText, "second turn")
      const deltas = Array.from(
        yield* Stream.runCollect(
          client.respondStream({ model: "qwen/qwen3-4b", input: "again", previousResponseId: second.id })
        )
      )
      const text = deltas.flatMap((d) => (d._tag === "Text" ? [d.text] : [])).join("")
      const completed = deltas.find((d) => d._tag === "Completed")
      assert.strictEqual(completed?._tag === "Completed" ? completed.response.outputText : undefined, text)
      const missing = yield* Effect.exit(
        client.respond({ model: "qwen/qwen3-4b", input: "x", previousResponseId: "resp_nope" })
      )
      const err = failureOf(missing)
      assert.strictEqual(err._tag, "PreviousResponseNotFound")
      assert.strictEqual(err._tag === "PreviousResponseNotFound" ? err.previousResponseId : "", "resp_nope")
    }))

  it.scopedLive("returns Responses function calls", () =>
    Effect.gen(function*() {
      const { client } = yield* simAndClient({
        scenario: { rules: [{ match: {}, reply: { toolCalls: [{ name: "add", arguments: { a: 1, b: 2 } }] } }] }
      })
      const r = yield* client.respond({
        model: "qwen/qwen3-4b",
        input: "add",
        tools: [{ name: "add", parameters: { type: "object" } }]
      })
      assert.strictEqual(r.functionCalls.length, 1)
      assert.strictEqual(r.functionCalls[0]!.name, "add")
      assert.deepStrictEqual(JSON.parse(r.functionCalls[0]!.arguments), { a: 1, b: 2 })
    }))

  it.scopedLive("loads and unloads through REST v1, with :N identifiers", () =>
    Effect.gen(function*() {
      const { client, sim } = yield* simAndClient({ settings: { restLoadTtl: "reject" } })
      const a = yield* client.loadModel({ model: "google/gemma-3-1b" })
      const b = yield* client.loadModel({ model: "google/gemma-3-1b" })
      assert.strictEqual(a.instanceId, "google/gemma-3-1b")
      assert.strictEqual(b.instanceId, "google/gemma-3-1b:2")
      assert.strictEqual(yield* client.unloadModel("google/gemma-3-1b:2"), "google/gemma-3-1b:2")
      const ttl = yield* Effect.exit(client.loadModel({ model: "google/gemma-3-1b", ttlSeconds: 60 }))
      const err = failureOf(ttl)
      assert.strictEqual(err._tag, "LmStudioHttpError")
      assert.strictEqual(err._tag === "LmStudioHttpError" ? err.status : 0, 400)
      const missing = yield* Effect.exit(client.loadModel({ model: "nope/nothing" }))
      assert.strictEqual(failureOf(missing)._tag, "ModelNotFound")
      const gone = yield* Effect.exit(client.unloadModel("not-loaded"))
      assert.strictEqual(failureOf(gone)._tag, "ModelNotFound")
      const state = yield* sim.state.get
      assert.deepStrictEqual(state.instances.map((i) => i.identifier), ["qwen/qwen3-4b", "google/gemma-3-1b"])
    }))
})

describe("LmStudioClient errors", () => {
  it.scopedLive("an error body on HTTP 200 is an error", () =>
    Effect.gen(function*() {
      const { client } = yield* simAndClient({
        faults: {
          failNext: {
            status: 200,
            body: { error: { message: "The model has crashed without additional information. (Exit code: 6)" } },
            count: 1
          }
        }
      })
      const err = failureOf(yield* Effect.exit(client.chat({ model: "qwen/qwen3-4b", messages: hi })))
      assert.strictEqual(err._tag, "LmStudioHttpError")
      assert.include(err.message, "crashed")
    }))

  it.scopedLive("an unknown model with several loaded is ModelNotFound listing the models and close matches", () =>
    Effect.gen(function*() {
      const { client } = yield* simAndClient({
        loaded: ["qwen/qwen3-4b", "google/gemma-3-1b"],
        settings: { jit: false }
      })
      const err = failureOf(yield* Effect.exit(client.chat({ model: "qwen/qwen3-4", messages: hi })))
      assert.strictEqual(err._tag, "ModelNotFound")
      if (err._tag !== "ModelNotFound") return
      assert.include(err.available, "google/gemma-3-1b")
      assert.include(err.suggestions, "qwen/qwen3-4b")
      assert.include(err.hint, "qwen/qwen3-4b")
    }))

  it.scopedLive("no model loaded (JIT off, or JIT failing) is NoModelLoaded", () =>
    Effect.gen(function*() {
      const { client } = yield* simAndClient({ loaded: [], settings: { jit: false } })
      const err = failureOf(yield* Effect.exit(client.chat({ model: "qwen/qwen3-4b", messages: hi })))
      assert.strictEqual(err._tag, "NoModelLoaded")
      const jit = yield* simAndClient({ loaded: [], faults: { jitFailure: true } })
      const err2 = failureOf(yield* Effect.exit(jit.client.chat({ model: "qwen/qwen3-4b", messages: hi })))
      assert.strictEqual(err2._tag, "NoModelLoaded")
    }))

  it.scopedLive("a request served by another model is ModelMismatch, plain and streamed", () =>
    Effect.gen(function*() {
      const { client } = yield* simAndClient({ loaded: ["qwen/qwen3-4b"] })
      const err = failureOf(yield* Effect.exit(client.chat({ model: "mistral/not-there", messages: hi })))
      assert.strictEqual(err._tag, "ModelMismatch")
      if (err._tag === "ModelMismatch") assert.strictEqual(err.served, "qwen/qwen3-4b")
      const streamed = failureOf(
        yield* Effect.exit(Stream.runDrain(client.chatStream({ model: "mistral/not-there", messages: hi })))
      )
      assert.strictEqual(streamed._tag, "ModelMismatch")
      // Instance suffixes and variants are the same model, not a mismatch.
      const ok = yield* client.chat({ model: "qwen3-4b@q4_k_m", messages: hi })
      assert.strictEqual(ok.model, "qwen/qwen3-4b")
    }))

  it.scopedLive("malformed JSON is LmStudioMalformedResponse", () =>
    Effect.gen(function*() {
      const { client } = yield* simAndClient({ faults: { malformedJson: { count: 1 } } })
      const err = failureOf(yield* Effect.exit(client.chat({ model: "qwen/qwen3-4b", messages: hi })))
      assert.strictEqual(err._tag, "LmStudioMalformedResponse")
    }))

  it.scopedLive("a 5xx is retried with the transient schedule; a 4xx is not", () =>
    Effect.gen(function*() {
      const { client, sim } = yield* simAndClient({ faults: { failNext: { status: 503, count: 1 } } })
      const ok = yield* client.chat({ model: "qwen/qwen3-4b", messages: hi })
      assert.strictEqual(ok.content, "You said: hi there")
      assert.strictEqual((yield* sim.state.get).counters.byPath["/v1/chat/completions"], 2)
      yield* sim.state.setFaults({ failNext: { status: 500, count: 10 } })
      const err = failureOf(yield* Effect.exit(client.chat({ model: "qwen/qwen3-4b", messages: hi })))
      assert.strictEqual(err._tag, "LmStudioHttpError")
      assert.strictEqual((yield* sim.state.get).counters.byPath["/v1/chat/completions"], 5)
      yield* sim.state.clearFaults
      yield* sim.state.setFaults({ failNext: { status: 400, count: 10 } })
      yield* Effect.exit(client.chat({ model: "qwen/qwen3-4b", messages: hi }))
      assert.strictEqual((yield* sim.state.get).counters.byPath["/v1/chat/completions"], 6)
    }))

  it.scopedLive("after 5 failed calls (each with its retries) the breaker opens for 5 s: calls fail fast with CircuitOpen", () =>
    Effect.gen(function*() {
      const { client, sim } = yield* simAndClient({ faults: { failNext: { status: 500, count: 100 } } })
      // A call's retries count once: four failed calls (12 attempts) leave the breaker closed.
      for (let i = 0; i < 4; i++) {
        assert.strictEqual(
          failureOf(yield* Effect.exit(client.chat({ model: "qwen/qwen3-4b", messages: hi })))._tag,
          "LmStudioHttpError"
        )
      }
      assert.strictEqual((yield* sim.state.get).counters.byPath["/v1/chat/completions"], 12)
      assert.deepStrictEqual([(yield* client.breaker).state, (yield* client.breaker).consecutiveFailures], [
        "closed",
        4
      ])
      yield* Effect.exit(client.chat({ model: "qwen/qwen3-4b", messages: hi }))
      const before = (yield* sim.state.get).counters.requests
      const err = failureOf(yield* Effect.exit(client.chat({ model: "qwen/qwen3-4b", messages: hi })))
      assert.strictEqual(err._tag, "CircuitOpen")
      if (err._tag === "CircuitOpen") {
        assert.strictEqual(err.dependency, "LM Studio")
        assert.strictEqual(err.retryAfterSeconds, 5)
      }
      assert.strictEqual((yield* sim.state.get).counters.requests, before)
      assert.strictEqual((yield* client.breaker).state, "open")
    }))

  it.scopedLive("a server answering 5xx everywhere is never taken for one without the APIs; detection counts once per call", () =>
    Effect.gen(function*() {
      const { client, sim } = yield* simAndClient({ faults: { failAll: { status: 500 } } })
      // Before: every probe's 500 read as "this API is missing", cached for good (the catalog then fell to `lms`).
      assert.strictEqual(failureOf(yield* Effect.exit(client.apis))._tag, "LmStudioHttpError")
      assert.strictEqual((yield* client.breaker).consecutiveFailures, 1)
      yield* sim.state.setFaults({ failAll: null })
      assert.deepStrictEqual(yield* client.apis, { openai: true, v0: true, v1: true, responses: true })
      assert.strictEqual((yield* client.breaker).state, "closed")
    }))

  it.scopedLive("refused requests (4xx) never open the breaker", () =>
    Effect.gen(function*() {
      const { client } = yield* simAndClient({
        loaded: ["qwen/qwen3-4b", "google/gemma-3-1b"],
        settings: { jit: false }
      })
      for (let i = 0; i < 8; i++) yield* Effect.exit(client.chat({ model: "no/such", messages: hi }))
      assert.strictEqual((yield* client.breaker).state, "closed")
    }))

  it.scopedLive("a closed port is LmStudioUnreachable", () =>
    Effect.gen(function*() {
      const port = yield* Effect.scoped(Effect.map(start({}), (s) => s.port))
      const client = yield* makeClient({ baseUrl: `http://127.0.0.1:${port}` })
      const err = failureOf(yield* Effect.exit(client.greeting()))
      assert.strictEqual(err._tag, "LmStudioUnreachable")
      assert.include(err.hint, "LMSTUDIO_BASE_URL")
    }))

  it.scopedLive("a connection reset mid-stream is LmStudioConnectionLost after the deltas already sent", () =>
    Effect.gen(function*() {
      const { client } = yield* simAndClient({
        scenario: { rules: [{ match: {}, reply: { content: "one two three four five six" } }] },
        faults: { resetMidStream: { afterChunks: 3 } }
      })
      const seen: Array<string> = []
      const exit = yield* Effect.exit(
        Stream.runForEach(
          client.chatStream({ model: "qwen/qwen3-4b", messages: hi }),
          (d) => Effect.sync(() => d._tag === "Content" && seen.push(d.text))
        )
      )
      assert.strictEqual(failureOf(exit)._tag, "LmStudioConnectionLost")
      assert.deepStrictEqual(seen, ["one", " two", " three"])
    }))

  it.scopedLive("an SSE error frame mid-stream is a typed error", () =>
    Effect.gen(function*() {
      const { client } = yield* simAndClient({
        faults: { streamError: { afterChunks: 1, message: "Model unloaded." } }
      })
      const err = failureOf(
        yield* Effect.exit(Stream.runDrain(client.chatStream({ model: "qwen/qwen3-4b", messages: hi })))
      )
      assert.strictEqual(err._tag, "LmStudioHttpError")
      assert.include(err.message, "Model unloaded.")
    }))

  it.scopedLive("a slow server is LmStudioTimeout, and the timed-out request is closed (the server sees it go)", () =>
    Effect.gen(function*() {
      const { client, sim } = yield* simAndClient({ faults: { latencyMs: 3000 } }, {
        metadataTimeout: Duration.millis(100)
      })
      const err = failureOf(yield* Effect.exit(client.greeting()))
      assert.strictEqual(err._tag, "LmStudioTimeout")
      const state = yield* eventually(sim.state.get, (d) => d.counters.requestsAborted >= 1)
      assert.strictEqual(state.counters.requestsAborted, 1)
    }))

  it.scopedLive("sends the Bearer token when configured; without it the server refuses", () =>
    Effect.gen(function*() {
      const sim = yield* start({ settings: { apiToken: "s3cret" } })
      const withToken = yield* makeClient({ baseUrl: sim.baseUrl, apiToken: Option.some(Redacted.make("s3cret")) })
      const without = yield* makeClient({ baseUrl: sim.baseUrl })
      const ok = yield* withToken.chat({ model: "qwen/qwen3-4b", messages: hi })
      assert.strictEqual(ok.content, "You said: hi there")
      const err = failureOf(yield* Effect.exit(without.chat({ model: "qwen/qwen3-4b", messages: hi })))
      assert.strictEqual(err._tag, "LmStudioHttpError")
      if (err._tag === "LmStudioHttpError") {
        assert.strictEqual(err.status, 401)
        assert.include(err.hint, "LMSTUDIO_API_TOKEN")
      }
      const recent = (yield* sim.state.get).recent
      assert.strictEqual(recent.find((r) => r.path === "/v1/chat/completions")?.authorization, "Bearer s3cret")
    }))

  it.scopedLive("interrupting a stream closes the connection: the simulator sees the abort", () =>
    Effect.gen(function*() {
      const { client, sim } = yield* simAndClient({
        scenario: {
          rules: [{ match: {}, reply: { content: Array.from({ length: 200 }, (_, i) => `w${i}`).join(" ") } }]
        },
        faults: { tokenDelayMs: 20 }
      })
      const fiber = yield* Effect.fork(Stream.runDrain(client.chatStream({ model: "qwen/qwen3-4b", messages: hi })))
      yield* eventually(sim.state.get, (d) => d.counters.streamsStarted === 1)
      yield* Fiber.interrupt(fiber)
      const after = yield* eventually(sim.state.get, (d) => d.counters.streamsAborted === 1)
      assert.strictEqual(after.counters.streamsAborted, 1)
      assert.strictEqual(after.counters.streamsCompleted, 0)
      // Taking a prefix of a stream also releases the request.
      const firstTwo = yield* Stream.runCollect(
        Stream.take(client.chatStream({ model: "qwen/qwen3-4b", messages: hi }), 2)
      )
      assert.strictEqual(firstTwo.length, 2)
      const done = yield* eventually(sim.state.get, (d) => d.counters.streamsAborted === 2)
      assert.strictEqual(done.counters.streamsAborted, 2)
    }))

  it.scopedLive("interrupting a plain request aborts it: the simulator sees the client go away", () =>
    Effect.gen(function*() {
      const { client, sim } = yield* simAndClient({ faults: { latencyMs: 2000 } })
      const exit = yield* Effect.either(
        Effect.timeout(client.chat({ model: "qwen/qwen3-4b", messages: hi }), Duration.millis(100))
      )
      assert.isTrue(Either.isLeft(exit))
      const state = yield* eventually(sim.state.get, (d) => d.counters.requestsAborted === 1)
      assert.strictEqual(state.counters.requestsAborted, 1)
      assert.isTrue(state.instances.every((i) => i.active === 0))
    }))
})

describe("context overflow (real HTTP to the simulator, protocol §12.3)", () => {
  const long = "word ".repeat(10_000)

  for (const wording of ["keep", "n_keep"] as const) {
    it.scoped(`a prompt longer than the loaded context is refused by LM Studio (${wording}) and is a ContextOverflow`, () =>
      Effect.gen(function*() {
        const { client, sim } = yield* simAndClient({ settings: { contextOverflow: wording } })
        const model = (yield* sim.state.get).instances[0]!.identifier
        const context = (yield* sim.state.get).instances[0]!.contextLength
        const e = yield* Effect.flip(client.chat({ model, messages: [{ role: "user", content: long }] }))
        assert.strictEqual(e._tag, "ContextOverflow")
        if (e._tag === "ContextOverflow") {
          assert.strictEqual(e.tokensAvailable, context)
          assert.isAbove(e.tokensNeeded, context)
          assert.strictEqual(e.model, model)
        }
        const completion = yield* Effect.flip(client.complete({ model, prompt: long }))
        assert.strictEqual(completion._tag, "ContextOverflow")
        const response = yield* Effect.flip(client.respond({ model, input: long }))
        assert.strictEqual(response._tag, "ContextOverflow")
        const streamed = yield* Effect.flip(
          collectChat(client.chatStream({ model, messages: [{ role: "user", content: long }] }))
        )
        assert.strictEqual(streamed._tag, "ContextOverflow")
        // A prompt that fits is served.
        const ok = yield* client.chat({ model, messages: [{ role: "user", content: "hi" }] })
        assert.isString(ok.content)
      }))
  }
})

describe("LmStudioClient's GenAI metrics", () => {
  /** Observations recorded so far of a metric, for the labels given (each must be on the series). */
  const countOf = (name: string, labels: Record<string, string>) =>
    Metric.unsafeSnapshot()
      .filter((p) => p.metricKey.name === name)
      .filter((p) =>
        Object.entries(labels).every(([k, v]) => p.metricKey.tags.some((t) => t.key === k && t.value === v))
      )
      .reduce((n, p) => n + ("count" in p.metricState ? Number(p.metricState.count) : 0), 0)

  it.scopedLive("a streamed chat records its time to first chunk, its duration and its tokens (input and output)", () =>
    Effect.gen(function*() {
      const { client } = yield* simAndClient()
      const labels = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "lmstudio",
        "gen_ai.request.model": "qwen/qwen3-4b"
      }
      const names = [
        "gen_ai.client.operation.time_to_first_chunk",
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage"
      ]
      const before = names.map((n) => countOf(n, labels))
      const streamed = collectChat(client.chatStream({ model: "qwen/qwen3-4b", messages: hi }))
      const r = yield* streamed.pipe(Effect.provideService(CurrentRecorder, new Recorder()))
      assert.strictEqual(r.content, "You said: hi there")
      assert.deepStrictEqual(names.map((n, i) => countOf(n, labels) - before[i]!), [1, 1, 2])
      assert.isAtLeast(countOf("gen_ai.client.token.usage", { ...labels, "gen_ai.token.type": "output" }), 1)
      // Without a recorder (metrics off) the same stream records nothing.
      yield* streamed
      assert.deepStrictEqual(names.map((n, i) => countOf(n, labels) - before[i]!), [1, 1, 2])
    }))
})
