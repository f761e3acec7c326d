#!/usr/bin/env node
/**
 * The one executable. This is the composition root: services are wired here, once, and handed to the CLI.
 * Logs go to stderr; stdout carries command output (and, when serving, the MCP protocol).
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Console, Effect, Layer, Option } from "effect"
import { createRequire } from "node:module"
import { AgentLoop } from "./agent/AgentLoop.js"
import { ChildServers } from "./agent/ChildServers.js"
import { McpConfig } from "./agent/McpConfig.js"
import { makeCli } from "./cli/Cli.js"
import { AppConfig, type ConfigOverrides } from "./Config.js"
import { Diagnostics } from "./diagnostics/Diagnostics.js"
import { isExplained, renderError } from "./domain/Errors.js"
import { Admission } from "./lmstudio/Admission.js"
import { LmsCli } from "./lmstudio/LmsCli.js"
import { LmStudioClient } from "./lmstudio/LmStudioClient.js"
import { ModelCatalog } from "./lmstudio/ModelCatalog.js"
import { ModelLifecycle } from "./lmstudio/ModelLifecycle.js"
import * as NodeTransport from "./lmstudio/transport/NodeTransport.js"
import { serveMcpHttp, serveMcpStdio } from "./mcp/index.js"
import * as Logging from "./observability/Logging.js"
import * as Telemetry from "./observability/Telemetry.js"

const { version } = createRequire(import.meta.url)("../../package.json") as { version: string }

/**
 * Every service the commands and tools use. Each service declares its own dependencies; a service several others
 * need (the client, the lms CLI, the catalog, the breaker they share) is built once, as layers are memoised.
 */
const services = Layer.mergeAll(
  AgentLoop.Default,
  Diagnostics.Default,
  McpConfig.Default,
  ChildServers.Default,
  ModelLifecycle.Default,
  ModelCatalog.Default,
  LmStudioClient.Default,
  LmsCli.Default,
  Admission.Default
)

/** The main layer of one command run: the services over the Node transport, with the configuration from env + flags. */
const appLayer = (overrides: ConfigOverrides) =>
  Layer.mergeAll(services, Logging.layer).pipe(
    // Built before the services, so what they record while being built (a breaker's first state) is recorded.
    Layer.provideMerge(Telemetry.layer(version)),
    Layer.provideMerge(NodeTransport.layer),
    Layer.provideMerge(AppConfig.layerWith(overrides)),
    Layer.provide(NodeContext.layer)
  )

/** A typed failure becomes one line on stderr (`<Tag>: message (hint: …)`) and exit code 1; no stack traces. */
const report = (cause: Cause.Cause<unknown>) =>
  Effect.gen(function*() {
    const failure = Cause.failureOption(cause)
    if (Option.isSome(failure) && isExplained(failure.value)) {
      yield* Console.error(`lmstudio-bridge: ${renderError(failure.value)} (hint: ${failure.value.hint})`)
    } else if (
      Option.isSome(failure) && typeof failure.value === "object" && failure.value !== null && "_tag" in failure.value
    ) {
      // @effect/cli validation errors were already printed by the CLI itself.
    } else if (!Cause.isInterruptedOnly(cause)) {
      yield* Console.error(`lmstudio-bridge: unexpected error: ${Cause.pretty(cause)}`)
    }
  })

const cli = makeCli(appLayer, version, { stdio: serveMcpStdio, http: serveMcpHttp })

Effect.suspend(() => cli(process.argv)).pipe(
  Effect.tapErrorCause(report),
  Effect.provide(Layer.mergeAll(NodeContext.layer, Logging.make(process.stderr.isTTY ? "pretty" : "json", "info"))),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
