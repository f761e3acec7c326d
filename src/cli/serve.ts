/**
 * `lmstudio-bridge serve`: the MCP server over stdio (the default for MCP hosts), or Streamable HTTP with `--http`.
 * Stdout carries only protocol frames on stdio; logs go to stderr. Stops when the host closes stdin, or on
 * SIGINT/SIGTERM.
 */
import { Command, Options } from "@effect/cli"
import { Option } from "effect"
import { type AppLayerFactory, baseUrl, type McpServers, printLine, withApp } from "./Shared.js"

const http = Options.text("http").pipe(
  Options.withDescription(
    "Serve Streamable HTTP on [host:]port (endpoint /mcp; 127.0.0.1 unless a host is given) instead of stdio"
  ),
  Options.optional
)

export const serveCommand = (appLayer: AppLayerFactory, version: string, mcp: McpServers) =>
  Command.make("serve", { baseUrl, http }, (flags) =>
    Option.isSome(flags.http)
      // In HTTP mode stdout is not the protocol channel: say where to connect.
      ? mcp.http(version, flags.http.value, (url) => printLine(`MCP server listening on ${url}`))
      : mcp.stdio(version)).pipe(
      Command.withDescription(
        "Run the MCP server: stdio (what Claude Code, Claude Desktop and Cursor start) or Streamable HTTP with --http"
      ),
      // Serving: the one command that keeps running, so the one that opens the metrics endpoint.
      withApp(appLayer, { serving: true })
    )
