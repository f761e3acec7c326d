// Child MCP servers of either protocol era, for the bridge's client side (issue 16). Arguments: <mode> <dir>.
// - `modern`: a 2026-07-28-only server (SDK v2, 2025-era openings rejected): every request carries its `_meta`
//   envelope, there is no `initialize`.
// - `strict`: a 2025-11-25 server (SDK 1.x) that exits at once when its first message is not `initialize` — what a
//   client probing with `server/discover` first must survive.
// Both offer one read-only tool, `whoami`, which appends "modern <protocol version>" or "strict initialize" to
// <dir>/era.log.
import { appendFileSync } from "node:fs"
import { join } from "node:path"

const [mode, dir] = process.argv.slice(2)
const whoami = {
  name: "whoami",
  description: "says which protocol revision this call came in on",
  inputSchema: { type: "object", properties: {} },
  annotations: { readOnlyHint: true }
}
const record = (version) => appendFileSync(join(dir, "era.log"), `${mode} ${version}\n`)

if (mode === "modern") {
  const { Server } = await import("@modelcontextprotocol/server")
  const { serveStdio } = await import("@modelcontextprotocol/server/stdio")
  serveStdio(() => {
    const server = new Server({ name: "modern", version: "1.0.0" }, { capabilities: { tools: {} } })
    server.setRequestHandler("tools/list", () => ({ tools: [whoami] }))
    server.setRequestHandler("tools/call", (_request, ctx) => {
      record(ctx.mcpReq.envelope?.["io.modelcontextprotocol/protocolVersion"] ?? "none")
      return { content: [{ type: "text", text: "modern here" }] }
    })
    return server
  }, { legacy: "reject" })
} else {
  const { Server } = await import("@modelcontextprotocol/sdk/server/index.js")
  const { StdioServerTransport } = await import("@modelcontextprotocol/sdk/server/stdio.js")
  const { CallToolRequestSchema, ListToolsRequestSchema } = await import("@modelcontextprotocol/sdk/types.js")
  let first = true
  process.stdin.on("data", (chunk) => {
    if (!first) return
    first = false
    if (!chunk.toString().includes("\"method\":\"initialize\"")) {
      appendFileSync(join(dir, "era.log"), `strict exited on ${chunk.toString().slice(0, 80).trim()}\n`)
      process.exit(1)
    }
  })
  const server = new Server({ name: "strict", version: "1.0.0" }, { capabilities: { tools: {} } })
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: [whoami] }))
  server.setRequestHandler(CallToolRequestSchema, () => {
    record("initialize")
    return { content: [{ type: "text", text: "strict here" }] }
  })
  await server.connect(new StdioServerTransport())
}
