/**
 * The MCP server over stdio (what Claude Code, Claude Desktop and Cursor start). Stdout carries only protocol frames;
 * logs go to stderr. Ends when the host closes stdin or the transport closes. Bad input (too large, not JSON, too
 * deep) is answered with a JSON-RPC error and the session goes on (LineTransport.ts).
 */
import { Effect, Runtime } from "effect"
import { LineTransport } from "./LineTransport.js"
import { makeServer, type ServerInfo, type Tool } from "./Server.js"

export const serveStdio = <R>(
  info: ServerInfo,
  tools: ReadonlyArray<Tool<R>>,
  runtime: Runtime.Runtime<R>,
  maxMessageBytes: number
) =>
  Effect.scoped(
    Effect.gen(function*() {
      const server = makeServer(info, tools, runtime)
      // The SDK's stdio transport waits for 'drain' once per answer written while the pipe is full: with many calls
      // answering at once that is legitimately more than Node's default of 10 listeners (a warning on stderr).
      process.stdout.setMaxListeners(0)
      const transport = new LineTransport(process.stdin, process.stdout, maxMessageBytes, (reason, bytes) =>
        Runtime.runFork(runtime)(
          Effect.logWarning("MCP message refused").pipe(Effect.annotateLogs({ reason, bytes, transport: "stdio" }))
        ))
      yield* Effect.acquireRelease(
        Effect.promise(() =>
          server.connect(transport)
        ),
        () =>
          Effect.promise(() =>
            server.close()
          )
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
