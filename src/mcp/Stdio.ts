/**
 * The MCP server over stdio (what Claude Code, Claude Desktop and Cursor start). Stdout carries only protocol frames;
 * logs go to stderr. Ends when the host closes stdin or the transport closes. Bad input (too large, not JSON, too
 * deep) is answered with a JSON-RPC error and the session goes on (LineTransport.ts). Both protocol eras: the SDK's
 * stdio entry reads the opening message (an `initialize` pins a 2025-11-25 server, a request with a `_meta` envelope
 * a 2026-07-28 one) and hands everything after it to the server the factory made.
 */
import { serveStdio as sdkServeStdio } from "@modelcontextprotocol/server/stdio"
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
      // The SDK's stdio transport waits for 'drain' once per answer written while the pipe is full: with many calls
      // answering at once that is legitimately more than Node's default of 10 listeners (a warning on stderr).
      process.stdout.setMaxListeners(0)
      const transport = new LineTransport(process.stdin, process.stdout, maxMessageBytes, (reason, bytes) =>
        Runtime.runFork(runtime)(
          Effect.logWarning("MCP message refused").pipe(Effect.annotateLogs({ reason, bytes, transport: "stdio" }))
        ))
      yield* Effect.acquireRelease(
        Effect.sync(() =>
          sdkServeStdio(() =>
            makeServer(info, tools, runtime), {
            transport,
            onerror: (e) =>
              Runtime.runFork(runtime)(
                Effect.logWarning("MCP stdio error").pipe(Effect.annotateLogs({ error: e.message, transport: "stdio" }))
              )
          })
        ),
        (h) =>
          Effect.promise(() =>
            h.close()
          )
      )
      yield* Effect.logInfo("MCP server ready on stdio").pipe(
        Effect.annotateLogs({ tools: tools.length, version: info.version })
      )
      yield* Effect.async<void>((resume) => {
        const done = () => resume(Effect.void)
        process.stdin.once("end", done)
        process.stdin.once("close", done)
        void transport.whenClosed.then(done)
      })
      yield* Effect.logInfo("MCP client disconnected; stopping")
    })
  )
