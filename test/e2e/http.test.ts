/**
 * `serve --http`: the same tools over Streamable HTTP (SDK client), DNS-rebinding protection (foreign Host or Origin
 * refused), and the bearer token of BRIDGE_HTTP_TOKEN.
 */
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Effect } from "effect"
import { request } from "node:http"
import { start } from "../../src/simulator/Simulator.js"
import { j, serveHttpBridge } from "../helpers.js"

const connect = (url: string, headers: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Client({ name: "http-e2e", version: "1.0.0" })
      await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }))
      return client
    }),
    (client) => Effect.promise(() => client.close())
  )

/** A raw POST of an initialize request with chosen headers; returns the status. */
const rawInitialize = (url: string, headers: Record<string, string>) =>
  Effect.promise(
    () =>
      new Promise<number>((resolve, reject) => {
        const u = new URL(url)
        const req = request(
          {
            host: u.hostname,
            port: u.port,
            path: u.pathname,
            method: "POST",
            headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers }
          },
          (res) => {
            res.resume()
            resolve(res.statusCode ?? 0)
          }
        )
        req.on("error", reject)
        req.end(
          JSON.stringify({
            jsonrpc: "2.0",
            id: 1,
            method: "initialize",
            params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
          })
        )
      })
  )

describe("MCP server over Streamable HTTP", () => {
  it.scopedLive("serves the same tools: list, a chat, an error result", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const server = yield* serveHttpBridge(sim.baseUrl)
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/)
      const client = yield* connect(server.url)
      const { tools } = yield* Effect.promise(() => client.listTools())
      assert.include(tools.map((t) => t.name), "chat_completion")
      const chat = yield* Effect.promise(() =>
        client.callTool({ name: "chat_completion", arguments: { prompt: "over http" } })
      )
      assert.strictEqual(j(chat.structuredContent).get("content").str, "You said: over http")
      const bad = yield* Effect.promise(() =>
        client.callTool({ name: "lms_load_model", arguments: { model: "--help" } })
      )
      assert.isTrue(bad.isError)
      // Two sessions side by side.
      const other = yield* connect(server.url)
      const health = yield* Effect.promise(() => other.callTool({ name: "health_check", arguments: {} }))
      assert.strictEqual(j(health.structuredContent).get("reachable").raw, true)
    }))

  it.scopedLive("refuses a foreign Origin or Host (DNS rebinding) and a missing session", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const server = yield* serveHttpBridge(sim.baseUrl)
      assert.strictEqual(yield* rawInitialize(server.url, { origin: "http://evil.example" }), 403)
      assert.strictEqual(yield* rawInitialize(server.url, { host: "evil.example" }), 403)
      assert.strictEqual(yield* rawInitialize(server.url, { origin: "http://localhost:3000" }), 200)
      const noSession = yield* Effect.promise(() =>
        fetch(server.url, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
          body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" })
        }).then((r) => r.status)
      )
      assert.strictEqual(noSession, 400)
    }))

  it.scopedLive("with BRIDGE_HTTP_TOKEN set, a request without the token is refused and one with it works", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const server = yield* serveHttpBridge(sim.baseUrl, { BRIDGE_HTTP_TOKEN: "s3cret" })
      assert.strictEqual(yield* rawInitialize(server.url, {}), 401)
      assert.strictEqual(yield* rawInitialize(server.url, { authorization: "Bearer wrong" }), 401)
      const client = yield* connect(server.url, { Authorization: "Bearer s3cret" })
      const { tools } = yield* Effect.promise(() => client.listTools())
      assert.isAbove(tools.length, 10)
    }))

  it.scopedLive("with BRIDGE_HTTP_METRICS=true, /metrics is on the MCP port behind the same token (issue 15)", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const server = yield* serveHttpBridge(sim.baseUrl, { BRIDGE_HTTP_TOKEN: "s3cret", BRIDGE_HTTP_METRICS: "true" })
      const metricsUrl = server.url.replace(/\/mcp$/, "/metrics")
      const get = (headers: Record<string, string>) =>
        Effect.promise(() =>
          fetch(metricsUrl, { headers }).then(async (r) => ({ status: r.status, text: await r.text() }))
        )
      assert.strictEqual((yield* get({})).status, 401)
      assert.strictEqual((yield* get({ authorization: "Bearer wrong" })).status, 401)
      const client = yield* connect(server.url, { Authorization: "Bearer s3cret" })
      const r = yield* Effect.promise(() =>
        client.callTool({ name: "chat_completion", arguments: { messages: [{ role: "user", content: "hi" }] } })
      )
      assert.notStrictEqual(r.isError, true)
      const scrape = yield* get({ authorization: "Bearer s3cret" })
      assert.strictEqual(scrape.status, 200)
      assert.match(
        scrape.text,
        /mcp_server_operation_duration_seconds_count\{mcp_method_name="tools\/call",gen_ai_tool_name="chat_completion",network_transport="tcp"\} 1/
      )
    }))

  it.scopedLive("without BRIDGE_HTTP_METRICS, /metrics is not found on the MCP port", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const server = yield* serveHttpBridge(sim.baseUrl)
      const status = yield* Effect.promise(() => fetch(server.url.replace(/\/mcp$/, "/metrics")).then((r) => r.status))
      assert.strictEqual(status, 404)
    }))
})
