/**
 * The MCP face as the rest of the bridge sees it: the server over stdio or Streamable HTTP, with the bridge's tools,
 * on the runtime of the services they need.
 */
import { Effect, Option } from "effect"
import { AppConfig } from "../Config.js"
import type { InvalidArguments } from "../domain/Errors.js"
import { MetricsEndpoint } from "../observability/Telemetry.js"
import { tracingEnabled } from "../observability/Tracing.js"
import type { NetworkTransport } from "./CallTelemetry.js"
import { makeServer, type ServerInfo } from "./Server.js"
import { serveStdio } from "./Stdio.js"
import { tools, type ToolServices } from "./tools/index.js"

export { tools, type ToolServices } from "./tools/index.js"

const INSTRUCTIONS =
  "Tools to use local LLMs running in LM Studio: chat, completion, stateful responses and embeddings, safe model " +
  "loading with a TTL, and autonomous runs where a local model works through the tools of other MCP servers " +
  "(list_available_mcps, autonomous_*). Call health_check first if a tool reports LM Studio unreachable."

const infoOf = (version: string, transport: NetworkTransport) =>
  Effect.map(
    AppConfig,
    (config): ServerInfo => ({
      name: "lmstudio-bridge",
      version,
      instructions: INSTRUCTIONS,
      tracing: tracingEnabled(config),
      transport
    })
  )

/** Serves MCP over stdio until the host disconnects. */
export const serveMcpStdio = (version: string): Effect.Effect<void, never, ToolServices> =>
  Effect.gen(function*() {
    const config = yield* AppConfig
    yield* serveStdio(
      yield* infoOf(version, "pipe"),
      tools,
      yield* Effect.runtime<ToolServices>(),
      config.maxMessageBytes
    )
  })

/**
 * Serves MCP over Streamable HTTP on `listen` ([host:]port) until interrupted; `ready` receives the URL once the
 * listener is up. The HTTP side (the SDK's Node adapter, its HTTP/2-aware server, web streams) is loaded only here:
 * a stdio server never needs it, and loading it took ~10 % of start-up (docs/benchmarks.md).
 */
export const serveMcpHttp = (
  version: string,
  listen: string,
  ready: (url: string) => Effect.Effect<void>
): Effect.Effect<never, InvalidArguments, ToolServices | MetricsEndpoint> =>
  Effect.scoped(
    Effect.gen(function*() {
      const { parseListen, serveHttp } = yield* Effect.promise(() => import("./StreamableHttp.js"))
      const config = yield* AppConfig
      const info = yield* infoOf(version, "tcp")
      const runtime = yield* Effect.runtime<ToolServices>()
      const endpoint = yield* MetricsEndpoint
      const { url } = yield* serveHttp({
        metrics: config.httpMetrics ? Option.getOrUndefined(endpoint.handler) : undefined,
        ...(yield* parseListen(listen)),
        token: Option.getOrUndefined(config.bridgeHttpToken),
        newServer: () => makeServer(info, tools, runtime),
        maxMessageBytes: config.maxMessageBytes,
        sessionIdle: config.httpSessionIdle,
        refused: (reason, bytes) =>
          Effect.logWarning("MCP message refused").pipe(Effect.annotateLogs({ reason, bytes, transport: "http" }))
      })
      yield* Effect.logInfo("MCP server ready on Streamable HTTP").pipe(
        Effect.annotateLogs({ url, auth: Option.isSome(config.bridgeHttpToken), metrics: config.httpMetrics })
      )
      yield* ready(url)
      return yield* Effect.never
    })
  )
