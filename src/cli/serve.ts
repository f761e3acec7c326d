/**
 * `lmstudio-bridge serve`: the MCP server over stdio (the default for MCP hosts). Stdout carries only protocol
 * frames; logs go to stderr. The server stops when the host closes stdin, or on SIGINT/SIGTERM.
 */
import { Command, Options } from "@effect/cli"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import { Effect, Option } from "effect"
import { AppConfig } from "../Config.js"
import { parseListen, serveHttp } from "../mcp/HttpTransport.js"
import { makeServer, type Tool } from "../mcp/Server.js"
import { autonomousTools } from "../mcp/tools/autonomous.js"
import { diagnose } from "../mcp/tools/diagnose.js"
import { lifecycleTools } from "../mcp/tools/lifecycle.js"
import { lmstudioTools } from "../mcp/tools/lmstudio.js"
import { type AppLayerFactory, baseUrl, type CliServices, overridesOf, printLine } from "./Shared.js"
import { tracingEnabled } from "../observability/Tracing.js"

export const tools: ReadonlyArray<Tool<CliServices>> = [...lmstudioTools, ...lifecycleTools, ...autonomousTools, diagnose]

const INSTRUCTIONS =
  "Tools to use local LLMs running in LM Studio: chat, completion, stateful responses and embeddings, safe model " +
  "loading with a TTL, and autonomous runs where a local model works through the tools of other MCP servers " +
  "(list_available_mcps, autonomous_*). Call health_check first if a tool reports LM Studio unreachable."

const http = Options.text("http").pipe(
  Options.withDescription("Serve Streamable HTTP on [host:]port (endpoint /mcp; 127.0.0.1 unless a host is given) instead of stdio"),
  Options.optional
)

export const serveCommand = (appLayer: AppLayerFactory, version: string) =>
  Command.make("serve", { baseUrl, http }, (flags) =>
    Effect.scoped(
      Effect.gen(function* () {
        const runtime = yield* Effect.runtime<CliServices>()
        const config = yield* AppConfig
        const info = { name: "lmstudio-bridge", version, instructions: INSTRUCTIONS, tracing: tracingEnabled(config) }
        if (Option.isSome(flags.http)) {
          const listen = yield* parseListen(flags.http.value)
          const { url } = yield* serveHttp({
            ...listen,
            token: Option.getOrUndefined(config.bridgeHttpToken),
            newServer: () => makeServer(info, tools, runtime)
          })
          yield* Effect.logInfo("MCP server ready on Streamable HTTP").pipe(Effect.annotateLogs({ url, auth: Option.isSome(config.bridgeHttpToken) }))
          // In HTTP mode stdout is not the protocol channel: say where to connect.
          yield* printLine(`MCP server listening on ${url}`)
          return yield* Effect.never
        }
        const server = makeServer(info, tools, runtime)
        // The SDK's stdio transport waits for 'drain' once per answer written while the pipe is full: with many calls
        // answering at once that is legitimately more than Node's default of 10 listeners (a warning on stderr).
        process.stdout.setMaxListeners(0)
        const transport = new StdioServerTransport()
        yield* Effect.acquireRelease(
          Effect.promise(() => server.connect(transport)),
          () => Effect.promise(() => server.close())
        )
        yield* Effect.logInfo("MCP server ready on stdio").pipe(Effect.annotateLogs({ tools: tools.length, version }))
        // The host closing stdin (or the transport closing) ends the session.
        yield* Effect.async<void>((resume) => {
          const done = () => resume(Effect.void)
          process.stdin.once("end", done)
          process.stdin.once("close", done)
          server.onclose = done
        })
        yield* Effect.logInfo("MCP client disconnected; stopping")
      })
    )
  ).pipe(
    Command.withDescription("Run the MCP server: stdio (what Claude Code, Claude Desktop and Cursor start) or Streamable HTTP with --http"),
    Command.provide((flags) => appLayer(overridesOf(flags)))
  )
