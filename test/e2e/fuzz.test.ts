/**
 * Fuzzing the MCP server: 1,000 random argument objects across the tools, sent through one bridge process. Every
 * answer must be a well-formed result (the SDK client validates structuredContent against each outputSchema), the
 * process must stay up, and health_check must work afterwards.
 */
import { assert, layer } from "@effect/vitest"
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { Context, Duration, Effect, FastCheck as fc, Layer } from "effect"
import { start } from "../../src/simulator/Simulator.js"
import { bridgeClient, j, TOOL_CONTRACT } from "../helpers.js"

const TOOLS = TOOL_CONTRACT

const FIELDS = [
  "model",
  "prompt",
  "messages",
  "input",
  "ttl_seconds",
  "identifier",
  "all",
  "max_tokens",
  "temperature",
  "previous_response_id",
  "type",
  "loaded_only",
  "keep_loaded",
  "context_length",
  "stop",
  "system_prompt",
  "response_format",
  "reasoning_effort"
]

const value = fc.oneof(
  fc.anything({ maxDepth: 2 }),
  fc.constantFrom(
    "qwen/qwen3-4b",
    "google/gemma-3-1b",
    "default",
    "../../etc/passwd",
    "--help",
    "",
    "resp_x",
    "x".repeat(300)
  ),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.array(fc.record({ role: fc.constantFrom("user", "system", "assistant", "tool"), content: fc.string() }), {
    maxLength: 3
  })
)

const args = fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), fc.string({ maxLength: 8 })), value, { maxKeys: 4 })

class Bridge extends Context.Tag("test/Bridge")<Bridge, Client>() {}

const BridgeLive = Layer.scoped(
  Bridge,
  Effect.gen(function*() {
    const sim = yield* start()
    const client = yield* bridgeClient(sim.baseUrl, { LOG_LEVEL: "error" })
    yield* Effect.promise(() => client.listTools())
    return client
  })
)

layer(BridgeLive, { excludeTestServices: true, timeout: Duration.seconds(60) })("MCP server fuzzing", (it) => {
  it.effect.prop(
    "every random call gets a well-formed result",
    { tool: fc.constantFrom(...TOOLS), args },
    ({ tool, args }) =>
      Effect.gen(function*() {
        const client = yield* Bridge
        const r = yield* Effect.promise(() => client.callTool({ name: tool, arguments: args }))
        const result = j(r)
        assert.strictEqual(result.get("content", 0, "type").str, "text")
        assert.isString(result.get("content", 0, "text").str)
        if (r.isError === true) {
          assert.isUndefined(r.structuredContent)
          assert.match(result.get("content", 0, "text").str, /^[A-Za-z]+: /)
        } else {
          assert.isObject(r.structuredContent)
        }
      }),
    { fastCheck: { numRuns: 1000 }, timeout: 240_000 }
  )

  it.effect("the server is still up and healthy afterwards", () =>
    Effect.gen(function*() {
      const client = yield* Bridge
      const r = yield* Effect.promise(() => client.callTool({ name: "health_check", arguments: {} }))
      assert.strictEqual(j(r.structuredContent).get("reachable").raw, true)
    }))
})
