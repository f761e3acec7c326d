// A child MCP server for failure tests: `crash` exits the process mid-call, `hang` never answers, `echo` answers
// with its pid. With the argument "garbage" it prints a line that is not JSON-RPC on stdout first.
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js"

const server = new Server({ name: "flaky", version: "1.0.0" }, { capabilities: { tools: {} } })
const tool = (name) => ({ name, description: `${name} for tests`, inputSchema: { type: "object", properties: {} } })
server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: [tool("crash"), tool("hang"), tool("echo")] }))
server.setRequestHandler(CallToolRequestSchema, (request) => {
  if (request.params.name === "crash") process.exit(3)
  if (request.params.name === "hang") return new Promise(() => {})
  return { content: [{ type: "text", text: `echo from pid ${process.pid}` }] }
})
if (process.argv.includes("garbage")) process.stdout.write("this line is not JSON-RPC\n")
await server.connect(new StdioServerTransport())
