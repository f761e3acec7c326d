/**
 * Unit tests of the client with a fake HttpClient: time driven by TestClock, SSE bytes split at every boundary
 * (property-based), and the pure error classifier.
 */
import { HttpClient, HttpClientError, HttpClientResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, Exit, FastCheck as fc, Fiber, Layer, Schema, Stream, TestClock } from "effect"
import { AppConfig } from "../../src/Config.js"
import { classifyError } from "../../src/lmstudio/client/ErrorRules.js"
import {
  chatBody,
  collectChat,
  completionBody,
  embeddingsBody,
  loadBody,
  responseBody,
  ToolCallAssembler
} from "../../src/lmstudio/client/Mapping.js"
import { ChatRequestWire, ResponsesRequestWire } from "../../src/lmstudio/client/Wire.js"
import { LmStudioClient } from "../../src/lmstudio/LmStudioClient.js"
import * as HttpClientTransport from "../../src/lmstudio/transport/HttpClientTransport.js"

const baseUrl = "http://lmstudio.test:1234"

const clientWith = (http: HttpClient.HttpClient, timeout = Duration.seconds(30)) =>
  Layer.build(
    LmStudioClient.Default.pipe(
      Layer.provide(
        HttpClientTransport.layer.pipe(
          Layer.provideMerge(
            Layer.mergeAll(
              AppConfig.layerFrom({ baseUrl, requestTimeout: timeout, metadataTimeout: timeout }),
              Layer.succeed(HttpClient.HttpClient, http)
            )
          )
        )
      )
    )
  ).pipe(Effect.map(Context.get(LmStudioClient)))

/**
 * A server that never answers: only the client's own timeout can end the call. Like both Node clients of
 * @effect/platform, it gives up when the request's abort signal fires.
 */
const silent = HttpClient.make((request, _url, signal) =>
  Effect.async<never, HttpClientError.RequestError>((resume) => {
    signal.addEventListener(
      "abort",
      () =>
        resume(Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause: signal.reason })))
    )
  })
)

/** A server that answers with an SSE body delivered in the given byte pieces, then ends it (or stalls). */
const sseServer = (pieces: ReadonlyArray<Uint8Array>, end: "close" | "stall" = "close") =>
  HttpClient.make((request) =>
    Effect.succeed(
      HttpClientResponse.fromWeb(
        request,
        new Response(
          new ReadableStream<Uint8Array>({
            start(controller) {
              for (const p of pieces) controller.enqueue(p)
              if (end === "close") controller.close()
            }
          }),
          { status: 200, headers: { "content-type": "text/event-stream" } }
        )
      )
    )
  )

const chunk = (delta: unknown, finish: string | null = null) =>
  `data: ${JSON.stringify({ model: "m", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`

/** The SSE text of a stream with two tool calls whose arguments arrive in the given pieces. */
const toolCallSse = (argPieces: ReadonlyArray<string>, second: string) =>
  [
    chunk({ role: "assistant", content: "Let me check." }),
    chunk({
      role: "assistant",
      tool_calls: [{ index: 0, id: "814890118", type: "function", function: { name: "get_weather", arguments: "" } }]
    }),
    ...argPieces.map((a) =>
      chunk({ role: "assistant", tool_calls: [{ index: 0, function: { name: "", arguments: a } }] })
    ),
    chunk({
      tool_calls: [{ index: 1, id: "22", type: "function", function: { name: "get_time", arguments: second } }]
    }),
    chunk({}, "tool_calls"),
    "data: [DONE]\n\n"
  ].join("")

const splitAt = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const out: Array<Uint8Array> = []
  let last = 0
  for (const p of [...points, bytes.length]) {
    if (p > last) out.push(bytes.slice(last, p))
    last = Math.max(last, p)
  }
  return out
}

const piecesOf = (s: string, cuts: ReadonlyArray<number>): Array<string> => {
  const points = [...new Set(cuts.map((c) => c % (s.length + 1)))].sort((a, b) => a - b)
  const out: Array<string> = []
  let last = 0
  for (const p of [...points, s.length]) {
    out.push(s.slice(last, p))
    last = p
  }
  return out
}

const args = JSON.stringify({ location: "San Francisco, CA", unit: "celsius", note: "say \"hi\"\n" })

describe("LmStudioClient timeouts (TestClock)", () => {
  it.scoped("a request that never answers fails with LmStudioTimeout once the timeout passes", () =>
    Effect.gen(function*() {
      const client = yield* clientWith(silent, Duration.seconds(5))
      const fiber = yield* Effect.fork(
        Effect.exit(client.chat({ model: "m", messages: [{ role: "user", content: "x" }] }))
      )
      yield* TestClock.adjust(Duration.seconds(4))
      assert.isNull(yield* Fiber.poll(fiber).pipe(Effect.map((o) => (o._tag === "Some" ? o.value : null))))
      yield* TestClock.adjust(Duration.seconds(2))
      const exit = yield* Fiber.join(fiber)
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
        const e = exit.cause.error
        assert.strictEqual(e._tag, "LmStudioTimeout")
        if (e._tag === "LmStudioTimeout") {
          assert.strictEqual(e.timeoutMs, 5000)
          assert.strictEqual(e.model, "m")
        }
      } else assert.fail("expected a typed failure")
    }))

  it.scoped("a stream that goes silent fails with LmStudioTimeout after the idle timeout", () =>
    Effect.gen(function*() {
      const stalled = sseServer([new TextEncoder().encode(chunk({ content: "partial" }))], "stall")
      const client = yield* clientWith(stalled, Duration.seconds(10))
      const fiber = yield* Effect.fork(
        Effect.exit(Stream.runCollect(client.chatStream({ messages: [{ role: "user", content: "x" }] })))
      )
      yield* TestClock.adjust(Duration.seconds(11))
      const exit = yield* Fiber.join(fiber)
      assert.isTrue(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag === "LmStudioTimeout")
    }))
})

describe("streamed tool calls (property-based)", () => {
  it.effect.prop(
    "arguments split at any piece boundaries assemble to the same call",
    { cuts: fc.array(fc.nat({ max: 200 }), { maxLength: 12 }) },
    ({ cuts }) =>
      Effect.sync(() => {
        const asm = new ToolCallAssembler()
        const pieces = piecesOf(args, cuts)
        asm.push({ index: 0, id: "1", name: "get_weather", arguments: "" })
        for (const p of pieces) asm.push({ index: 0, id: undefined, name: "", arguments: p })
        const [call] = asm.finish()
        return call!.arguments === args && call!.name === "get_weather" && call!.id === "1"
      })
  )

  it.scoped.prop(
    "SSE bytes split at any boundary give the same content and tool calls",
    {
      argCuts: fc.array(fc.nat({ max: 200 }), { maxLength: 8 }),
      byteCuts: fc.array(fc.nat({ max: 4000 }), { maxLength: 20 })
    },
    ({ argCuts, byteCuts }) =>
      Effect.gen(function*() {
        const bytes = new TextEncoder().encode(toolCallSse(piecesOf(args, argCuts), "{\"tz\":\"UTC\"}"))
        const client = yield* clientWith(sseServer(splitAt(bytes, byteCuts)))
        const r = yield* collectChat(client.chatStream({ messages: [{ role: "user", content: "weather?" }] }))
        assert.strictEqual(r.content, "Let me check.")
        assert.strictEqual(r.finishReason, "tool_calls")
        assert.deepStrictEqual(r.toolCalls, [
          { id: "814890118", name: "get_weather", arguments: args },
          { id: "22", name: "get_time", arguments: "{\"tz\":\"UTC\"}" }
        ])
      }),
    { fastCheck: { numRuns: 60 } }
  )

  it.scoped("a stream that ends without finish reason or [DONE] is LmStudioConnectionLost", () =>
    Effect.gen(function*() {
      const client = yield* clientWith(sseServer([new TextEncoder().encode(chunk({ content: "par" }))]))
      const exit = yield* Effect.exit(
        Stream.runDrain(client.chatStream({ messages: [{ role: "user", content: "x" }] }))
      )
      assert.isTrue(
        Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag === "LmStudioConnectionLost"
      )
    }))
})

describe("classifyError", () => {
  const ctx = { baseUrl, endpoint: "POST /v1/chat/completions" }

  it("reads LM Studio's model_not_found list and suggests close names", () => {
    const e = classifyError(
      { ...ctx, model: "qwen3-32" },
      404,
      {
        error: {
          message:
            "Model \"qwen3-32\" not found. Please specify a valid model.\n\nYour models:\n\ngemma-3-27b-it-qat\nqwen3-32b\n",
          type: "invalid_request_error",
          param: "model",
          code: "model_not_found"
        }
      },
      ""
    )
    assert.strictEqual(e._tag, "ModelNotFound")
    if (e._tag === "ModelNotFound") {
      assert.deepStrictEqual(e.available, ["gemma-3-27b-it-qat", "qwen3-32b"])
      assert.deepStrictEqual(e.suggestions, ["qwen3-32b"])
    }
  })

  it("recognises 'No models loaded' in both historic spellings and statuses", () => {
    for (
      const [status, message] of [
        [404, "No models loaded. Please load a model in the developer page or use the `lms load` command"],
        [400, "No models loaded. Please load a model in the developer page or use the 'lms load' command."]
      ] as const
    ) {
      assert.strictEqual(classifyError(ctx, status, { error: { message } }, "")._tag, "NoModelLoaded")
    }
  })

  it("treats the unknown-route body (HTTP 200 or 404) as an unsupported API", () => {
    const e = classifyError(ctx, 200, { error: "Unexpected endpoint or method. (POST /v1/responses)" }, "")
    assert.strictEqual(e._tag, "LmStudioApiUnsupported")
  })

  it("keeps status, code and message of anything else", () => {
    const e = classifyError(ctx, 400, {
      error: { message: "'response_format.type' must be 'json_schema' or 'text'", code: "bad" }
    }, "")
    assert.strictEqual(e._tag, "LmStudioHttpError")
    if (e._tag === "LmStudioHttpError") {
      assert.strictEqual(e.status, 400)
      assert.strictEqual(e.code, "bad")
    }
  })
})

describe("request bodies", () => {
  const sent = (body: unknown): unknown => JSON.parse(JSON.stringify(body))

  it("send what is given and nothing else; each is what its request Schema describes", () => {
    const chat = chatBody(
      {
        model: "m",
        messages: [
          { role: "assistant", content: null, tool_calls: [{ id: "1", name: "f", arguments: "{}" }] },
          { role: "tool", content: "x", tool_call_id: "1" },
          { role: "user", content: "hi", tool_calls: [] }
        ],
        tools: [],
        maxTokens: 5,
        ttlSeconds: 300
      },
      true
    )
    assert.deepStrictEqual(sent(chat), {
      model: "m",
      messages: [
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "1", type: "function", function: { name: "f", arguments: "{}" } }]
        },
        { role: "tool", content: "x", tool_call_id: "1" },
        { role: "user", content: "hi" }
      ],
      max_tokens: 5,
      ttl: 300,
      stream: true,
      stream_options: { include_usage: true }
    })
    assert.isTrue(Schema.is(ChatRequestWire)(chat))
    const tools = [{ name: "get_time", parameters: { type: "object" } }]
    assert.deepStrictEqual(sent(chatBody({ messages: [], tools, toolChoice: "auto" }, false)), {
      messages: [],
      tools: [{ type: "function", function: { name: "get_time", parameters: { type: "object" } } }],
      tool_choice: "auto"
    })
    const response = responseBody({ input: "x", previousResponseId: "r1", reasoningEffort: "low", tools }, false)
    assert.deepStrictEqual(sent(response), {
      input: "x",
      previous_response_id: "r1",
      tools: [{ type: "function", name: "get_time", parameters: { type: "object" } }],
      reasoning: { effort: "low" }
    })
    assert.isTrue(Schema.is(ResponsesRequestWire)(response))
    assert.deepStrictEqual(sent(completionBody({ prompt: "p", stop: ["\n"] })), { prompt: "p", stop: ["\n"] })
    assert.deepStrictEqual(sent(embeddingsBody({ model: "e", input: ["a"] })), { model: "e", input: ["a"] })
    assert.deepStrictEqual(sent(loadBody({ model: "k", contextLength: 4096 })), { model: "k", context_length: 4096 })
  })
})

describe("context overflow (protocol §12.3)", () => {
  const ctx = { baseUrl, endpoint: "POST /v1/chat/completions", model: "qwen/qwen3-4b" }

  it("both of LM Studio's wordings are a ContextOverflow with the numbers and the fix", () => {
    const wordings = [
      [
        "Trying to keep the first 15857 tokens when context the overflows. However, the model is loaded with context " +
        "length of only 7866 tokens, which is not enough. Try to load the model with a larger context length, or " +
        "provide a shorter input.",
        15857,
        7866
      ],
      ["Cannot truncate prompt with n_keep (15028) >= n_ctx (7424)", 15028, 7424]
    ] as const
    for (const [message, needed, available] of wordings) {
      const e = classifyError(ctx, 400, { error: { message } }, "")
      assert.strictEqual(e._tag, "ContextOverflow", message)
      if (e._tag !== "ContextOverflow") continue
      assert.deepStrictEqual([e.tokensNeeded, e.tokensAvailable, e.model], [needed, available, "qwen/qwen3-4b"])
      assert.include(e.message, `${needed}`)
      assert.include(e.hint, "context_length")
    }
    // As an SSE error frame (HTTP 200) too: the same rules.
    const frame = classifyError(ctx, 200, { error: "Cannot truncate prompt with n_keep (9000) >= n_ctx (4096)" }, "")
    assert.strictEqual(frame._tag, "ContextOverflow")
  })
})
