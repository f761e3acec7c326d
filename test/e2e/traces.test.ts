/**
 * Traces end to end (issue 15): the built bridge exporting OTLP/HTTP (JSON protocol) to a receiver in this test.
 * One trace per tool call with the expected span tree and attributes; a `traceparent` the client sends in
 * `params._meta` is the parent; a child MCP server (the flaky fixture's `meta` tool) sees `traceparent` in its
 * request's `_meta`; the simulator (LM Studio) sees it as a header; log lines of a call carry its trace id.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync, readFileSync } from "node:fs"
import { createServer, type IncomingMessage } from "node:http"
import { join } from "node:path"
import type { Scenario } from "../../src/simulator/Scenario.js"
import { start } from "../../src/simulator/Simulator.js"
import { bridgeWithStderr, eventually, flakyMcpJson, tempDir } from "../helpers.js"
import { textOf } from "../support/children.js"

const scenario: Scenario = {
  rules: [
    {
      match: { userContains: "meta", afterToolResult: false, hasTools: true },
      reply: { toolCalls: [{ name: "flaky__meta", arguments: {} }] }
    }
  ]
}

interface OtlpSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly kind: number
  readonly attributes: ReadonlyArray<{ readonly key: string; readonly value: Record<string, unknown> }>
  readonly status?: { readonly code?: number }
}

interface ExportRequest {
  readonly resourceSpans?: ReadonlyArray<{
    readonly resource?: { readonly attributes?: OtlpSpan["attributes"] }
    readonly scopeSpans?: ReadonlyArray<{ readonly spans?: ReadonlyArray<OtlpSpan> }>
  }>
}

// OTLP span kinds (SPAN_KIND_*).
const INTERNAL = 1
const SERVER = 2
const CLIENT = 3

const attr = (s: OtlpSpan, key: string): unknown => {
  const v = s.attributes.find((a) => a.key === key)?.value
  return v === undefined ? undefined : Object.values(v)[0]
}

/** An OTLP/HTTP receiver (JSON) on an ephemeral port: what it got, and the content types it got it with. */
const receiver = Effect.acquireRelease(
  Effect.async<{
    readonly url: string
    readonly spans: Array<OtlpSpan>
    readonly resources: Array<Record<string, unknown>>
    readonly contentTypes: Array<string>
    readonly apiKeys: Array<string>
    readonly close: () => void
  }>((resume) => {
    const apiKeys: Array<string> = []
    const spans: Array<OtlpSpan> = []
    const resources: Array<Record<string, unknown>> = []
    const contentTypes: Array<string> = []
    const server = createServer((req: IncomingMessage, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        contentTypes.push(req.headers["content-type"] ?? "")
        apiKeys.push(String(req.headers["x-api-key"] ?? ""))
        if (req.url === "/v1/traces" && (req.headers["content-type"] ?? "").includes("json")) {
          const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as ExportRequest
          for (const rs of body.resourceSpans ?? []) {
            resources.push(
              Object.fromEntries((rs.resource?.attributes ?? []).map((a) => [a.key, Object.values(a.value)[0]]))
            )
            for (const ss of rs.scopeSpans ?? []) spans.push(...(ss.spans ?? []))
          }
        }
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({
        url: `http://127.0.0.1:${port}`,
        spans,
        resources,
        contentTypes,
        apiKeys,
        close: () => server.close()
      }))
    })
  }),
  (r) => Effect.sync(() => r.close())
)

/** The bridge with debug JSON logs and spans exported every 100 ms. */
const bridge = (env: Record<string, string>) =>
  bridgeWithStderr({ LOG_LEVEL: "debug", LOG_FORMAT: "json", OTEL_BSP_SCHEDULE_DELAY: "100", ...env })

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
const PARENT = "00f067aa0ba902b7"

describe("traces over OTLP/HTTP with W3C trace context in and out (issue 15)", () => {
  it.scopedLive(
    "a span tree per tool call, the client's traceparent as parent, traceparent to LM Studio and to a child server",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const mcpJson = flakyMcpJson(dir)
        const otlp = yield* receiver
        const sim = yield* start({ scenario })
        const { client, stderr } = yield* bridge({
          LMSTUDIO_BASE_URL: sim.baseUrl,
          MCP_JSON_PATH: mcpJson,
          OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
          OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
          OTEL_SERVICE_NAME: "bridge-under-test"
        })

        // 1. A chat_completion whose client sends its trace context.
        const chat = yield* Effect.promise(() =>
          client.callTool({
            name: "chat_completion",
            arguments: { messages: [{ role: "user", content: "hi" }] },
            _meta: { traceparent: `00-${TRACE}-${PARENT}-01` }
          })
        )
        assert.notStrictEqual(chat.isError, true, textOf(chat))
        // 2. A call with no trace context: a trace of its own.
        const bad = yield* Effect.promise(() =>
          client.callTool({ name: "get_model_info", arguments: { model: "no-such/model" } })
        )
        assert.strictEqual(bad.isError, true)
        // 3. An agent run that calls the child's `meta` tool.
        const run = yield* Effect.promise(() =>
          client.callTool({ name: "autonomous_with_mcp", arguments: { mcp_name: "flaky", task: "Record the meta." } })
        )
        assert.notStrictEqual(run.isError, true, textOf(run))

        const named = (name: string) => otlp.spans.filter((s) => s.name === name)
        yield* eventually(
          Effect.sync(() => otlp.spans.map((s) => s.name)),
          (names) =>
            [
              "tools/call chat_completion",
              "tools/call get_model_info",
              "tools/call autonomous_with_mcp",
              "tools/call meta"
            ].every((n) => names.includes(n)),
          "the spans of the three calls"
        )
        assert.isTrue(otlp.contentTypes.every((t) => t.includes("application/json")), "http/json was asked for")
        assert.strictEqual(otlp.resources[0]?.["service.name"], "bridge-under-test")

        // The chat call: SERVER span under the client's parent, CLIENT `chat …` span under it, same trace.
        const server = named("tools/call chat_completion")[0]!
        assert.strictEqual(server.traceId, TRACE)
        assert.strictEqual(server.parentSpanId, PARENT)
        assert.strictEqual(server.kind, SERVER)
        assert.strictEqual(attr(server, "mcp.method.name"), "tools/call")
        assert.strictEqual(attr(server, "gen_ai.tool.name"), "chat_completion")
        assert.strictEqual(attr(server, "network.transport"), "pipe")
        const llm = otlp.spans.find((s) =>
          s.traceId === TRACE && s.name.startsWith("chat ") && s.parentSpanId === server.spanId
        )
        assert.isDefined(
          llm,
          `spans of the trace: ${otlp.spans.filter((s) => s.traceId === TRACE).map((s) => s.name).join(", ")}`
        )
        assert.strictEqual(llm!.kind, CLIENT)
        assert.strictEqual(attr(llm!, "gen_ai.operation.name"), "chat")
        assert.strictEqual(attr(llm!, "gen_ai.provider.name"), "lmstudio")
        assert.isAbove(Number(attr(llm!, "gen_ai.usage.input_tokens")), 0)

        // LM Studio got the trace context of that request as a header.
        const chatPost = (yield* sim.state.get).recent.find((r) =>
          r.path === "/v1/chat/completions" && r.traceparent?.includes(TRACE) === true
        )
        assert.isDefined(chatPost, "the simulator saw no traceparent with the client's trace id")
        assert.match(chatPost!.traceparent!, new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`))
        assert.include(
          otlp.spans.filter((s) => s.traceId === TRACE).map((s) => s.spanId),
          chatPost!.traceparent!.split("-")[2]!,
          "the header names a span of the trace"
        )

        // The tool error: its own trace, a root span in ERROR with error.type=tool_error.
        const failed = named("tools/call get_model_info")[0]!
        assert.notStrictEqual(failed.traceId, TRACE)
        assert.isTrue(failed.parentSpanId === undefined || failed.parentSpanId === "")
        assert.strictEqual(failed.status?.code, 2, "STATUS_CODE_ERROR")

        // The agent run: invoke_agent under the server span, rounds under it, the child's tools/call under
        // execute_tool, and the child got that span's traceparent in _meta.
        const agentCall = named("tools/call autonomous_with_mcp")[0]!
        const inRun = otlp.spans.filter((s) => s.traceId === agentCall.traceId)
        const invoke = inRun.find((s) => s.name === "invoke_agent lmstudio-bridge")
        assert.strictEqual(invoke?.parentSpanId, agentCall.spanId)
        const rounds = inRun.filter((s) => s.name === "agent.round")
        assert.isAtLeast(rounds.length, 1)
        assert.isTrue(rounds.every((r) => r.parentSpanId === invoke!.spanId))
        const execute = inRun.find((s) => s.name === "execute_tool flaky__meta")
        assert.isDefined(execute)
        assert.strictEqual(execute!.kind, INTERNAL)
        assert.include(rounds.map((r) => r.spanId), execute!.parentSpanId)
        const childCall = named("tools/call meta")[0]!
        assert.strictEqual(childCall.kind, CLIENT)
        assert.strictEqual(childCall.parentSpanId, execute!.spanId)
        assert.strictEqual(attr(childCall, "lmstudio_bridge.mcp.server"), "flaky")
        const metaLog = join(dir, "meta.log")
        assert.isTrue(existsSync(metaLog))
        const meta = JSON.parse(readFileSync(metaLog, "utf8").trim().split("\n")[0]!) as { traceparent?: string }
        assert.strictEqual(meta.traceparent, `00-${agentCall.traceId}-${childCall.spanId}-01`)

        // Log lines of a call carry its request id, and its trace id while traces are on (in the JSON line's
        // annotations, as Effect's JSON logger writes them).
        const lines = stderr().split("\n").filter((l) => l.startsWith("{")).map((l) =>
          (JSON.parse(l) as { readonly annotations?: Record<string, unknown> }).annotations ?? {}
        )
        const ofRun = lines.filter((l) => l["trace_id"] === agentCall.traceId)
        assert.isAbove(ofRun.length, 0, "no log line with the agent call's trace id")
        assert.isTrue(ofRun.every((l) => typeof l["request_id"] === "string" && typeof l["span_id"] === "string"))
        assert.isTrue(ofRun.some((l) => typeof l["run_id"] === "string"), "no log line with the run's id")
        assert.isTrue(
          ofRun.every((l) => inRun.some((s) => s.spanId === l["span_id"])),
          "every span id in the log names a span of the trace"
        )
      }),
    { timeout: 60_000 }
  )

  it.scopedLive(
    "by default the export is OTLP protobuf, with the headers of OTEL_EXPORTER_OTLP_HEADERS",
    () =>
      Effect.gen(function*() {
        const otlp = yield* receiver
        const sim = yield* start({})
        const { client } = yield* bridge({
          LMSTUDIO_BASE_URL: sim.baseUrl,
          OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
          OTEL_EXPORTER_OTLP_HEADERS: "x-api-key=k%3D1"
        })
        const r = yield* Effect.promise(() =>
          client.callTool({ name: "chat_completion", arguments: { messages: [{ role: "user", content: "hi" }] } })
        )
        assert.notStrictEqual(r.isError, true, textOf(r))
        yield* eventually(Effect.sync(() => otlp.contentTypes.length), (n) => n > 0, "an export")
        assert.strictEqual(otlp.contentTypes[0], "application/x-protobuf")
        assert.strictEqual(otlp.apiKeys[0], "k=1")
      }),
    { timeout: 60_000 }
  )
})
