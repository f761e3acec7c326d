/**
 * The floor of the MCP bench: the smallest MCP server that answers `chat_completion` the way the bridge does — the
 * SDK's `Server` over stdio and one `node:http` request to the simulator, no Effect, no validation of its own, no
 * model lookup, no lease. Whatever the bridge costs above this server is the bridge's own doing; what this server
 * costs above raw HTTP is the SDK and the stdio hop, which any SDK-based stdio server pays (docs/benchmarks.md).
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import { CallToolRequestSchema, type CallToolResult, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import { Agent, request } from "node:http"

const base = new URL(process.env.LMSTUDIO_BASE_URL ?? "http://127.0.0.1:1234")
const agent = new Agent({ keepAlive: true })

interface Completion {
  readonly model: string
  readonly choices: ReadonlyArray<{ readonly message: { readonly content: string }; readonly finish_reason: string }>
}

const post = (body: string) =>
  new Promise<Completion>((resolve, reject) => {
    const req = request(
      {
        host: base.hostname,
        port: base.port,
        path: "/v1/chat/completions",
        method: "POST",
        agent,
        headers: { "content-type": "application/json" }
      },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")) as Completion))
        res.on("error", reject)
      }
    )
    req.on("error", reject)
    req.end(body)
  })

const server = new Server({ name: "floor", version: "1.0.0" }, { capabilities: { tools: {} } })
server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: [] }))
server.setRequestHandler(CallToolRequestSchema, async (req): Promise<CallToolResult> => {
  const args = req.params.arguments ?? {}
  const started = performance.now()
  const r = await post(
    JSON.stringify({
      model: args["model"],
      messages: [{ role: "user", content: args["prompt"] }],
      max_tokens: args["max_tokens"]
    })
  )
  const choice = r.choices[0]
  const out = {
    content: choice?.message.content ?? "",
    reasoning: null,
    model: r.model,
    finish_reason: choice?.finish_reason ?? "",
    usage: null,
    duration_ms: performance.now() - started
  }
  return { content: [{ type: "text", text: out.content }], structuredContent: out }
})
process.stdin.once("end", () => process.exit(0))
await server.connect(new StdioServerTransport())
