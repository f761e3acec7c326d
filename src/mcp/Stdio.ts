/**
 * The MCP server over stdio (what Claude Code, Claude Desktop and Cursor start). Stdout carries only protocol frames;
 * logs go to stderr. Ends when the host closes stdin or the transport closes.
 */
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import { Effect, type Runtime } from "effect"
import { makeServer, type ServerInfo, type Tool } from "./Server.js"

export const serveStdio = <R>(info: ServerInfo, tools: ReadonlyArray<Tool<R>>, runtime: Runtime.Runtime<R>) =>
  Effect.scoped(
    Effect.gen(function*() {
      const server = makeServer(info, tools, runtime)
      // The SDK's stdio transport waits for 'drain' once per answer written while the pipe is full: with many calls
      // answering at once that is legitimately more than Node's default of 10 listeners (a warning on stderr).
      process.stdout.setMaxListeners(0)
      const transport = new StdioServerTransport()
      yield* Effect.acquireRelease(
        Effect.promise(() => server.connect(transport)),
        () => Effect.promise(() => server.close())
      )
      yield* Effect.logInfo("MCP server ready on stdio").pipe(
        Effect.annotateLogs({ tools: tools.length, version: info.version })
      )
      yield* Effect.async<void>((resume) => {
        const done = () => resume(Effect.void)
        process.stdin.once("end", done)
        process.stdin.once("close", done)
        server.onclose = done
      })
      yield* Effect.logInfo("MCP client disconnected; stopping")
    })
  )
