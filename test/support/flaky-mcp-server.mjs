// A child MCP server for failure tests: `crash` exits the process mid-call, `hang` never answers, `echo` answers
// with its pid. With the argument "garbage" it prints a line that is not JSON-RPC on stdout first.
// In the folder given as first argument, `hang` writes hang-started.log when it starts and cancelled.log when the
// client cancels it (notifications/cancelled aborts the handler's signal), so tests can see cancellation arrive.
// `meta` (read-only) appends the request's `params._meta` to meta.log there, so tests can see what a caller sent.
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import { appendFileSync } from "node:fs"
import { join } from "node:path"

const server = new Server({ name: "flaky", version: "1.0.0" }, { capabilities: { tools: {} } })
const tool = (name) => ({ name, description: `${name} for tests`, inputSchema: { type: "object", properties: {} } })
const meta = { ...tool("meta"), annotations: { readOnlyHint: true } }
server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: [tool("crash"), tool("hang"), tool("echo"), meta] }))
const dir = process.argv[2]
server.setRequestHandler(CallToolRequestSchema, (request, extra) => {
  if (request.params.name === "crash") process.exit(3)
  if (request.params.name === "hang") {
    if (dir) appendFileSync(join(dir, "hang-started.log"), `${process.pid}\n`)
    return new Promise((_, reject) =>
      extra.signal.addEventListener("abort", () => {
        if (dir) appendFileSync(join(dir, "cancelled.log"), `hang ${process.pid}\n`)
        reject(new Error("cancelled"))
      })
    )
  }
  if (request.params.name === "meta") {
    if (dir) appendFileSync(join(dir, "meta.log"), `${JSON.stringify(request.params._meta ?? {})}\n`)
    return { content: [{ type: "text", text: "meta recorded" }] }
  }
  return { content: [{ type: "text", text: `echo from pid ${process.pid}` }] }
})
if (process.argv.includes("garbage")) process.stdout.write("this line is not JSON-RPC\n")
await server.connect(new StdioServerTransport())
