/**
 * `lmstudio-bridge serve`: the MCP server over stdio (the default for MCP hosts). Stdout carries only protocol
 * frames; logs go to stderr. The server stops when the host closes stdin, or on SIGINT/SIGTERM.
 */
import { Command } from "@effect/cli"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import { Effect } from "effect"
import { makeServer, type Tool } from "../mcp/Server.js"
import { diagnose } from "../mcp/tools/diagnose.js"
import { lifecycleTools } from "../mcp/tools/lifecycle.js"
import { lmstudioTools } from "../mcp/tools/lmstudio.js"
import { type AppLayerFactory, baseUrl, type CliServices, overridesOf } from "./Shared.js"

export const tools: ReadonlyArray<Tool<CliServices>> = [...lmstudioTools, ...lifecycleTools, diagnose]

const INSTRUCTIONS =
  "Tools to use local LLMs running in LM Studio: chat, completion, stateful responses and embeddings, plus safe model " +
  "loading with a TTL. Call health_check first if a tool reports LM Studio unreachable."

export const serveCommand = (appLayer: AppLayerFactory, version: string) =>
  Command.make("serve", { baseUrl }, () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runtime = yield* Effect.runtime<CliServices>()
        const server = makeServer({ name: "lmstudio-bridge", version, instructions: INSTRUCTIONS }, tools, runtime)
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
    Command.withDescription("Run the MCP server on stdio (what Claude Code, Claude Desktop and Cursor start)"),
    Command.provide((flags) => appLayer(overridesOf(flags)))
  )
