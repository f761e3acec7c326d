/**
 * The bridge's services, composed once: what every command and tool uses, over the Node transport, with the
 * configuration from env + flags and telemetry as configured. The binary (bin.ts) hands this to the CLI; the
 * in-process bench (bench/inprocess.ts) builds it twice in one process to compare telemetry on and off.
 */
import * as NodeCommandExecutor from "@effect/platform-node/NodeCommandExecutor"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import { Layer } from "effect"
import { AgentLoop } from "./agent/AgentLoop.js"
import { ChildServers } from "./agent/ChildServers.js"
import { McpConfig } from "./agent/McpConfig.js"
import { AppConfig, type ConfigOverrides } from "./Config.js"
import { Diagnostics } from "./diagnostics/Diagnostics.js"
import { Admission } from "./lmstudio/Admission.js"
import { LmsCli } from "./lmstudio/LmsCli.js"
import { LmStudioClient } from "./lmstudio/LmStudioClient.js"
import { ModelCatalog } from "./lmstudio/ModelCatalog.js"
import { ModelLifecycle } from "./lmstudio/ModelLifecycle.js"
import * as NodeTransport from "./lmstudio/transport/NodeTransport.js"
import * as Logging from "./observability/Logging.js"
import * as Telemetry from "./observability/Telemetry.js"

/**
 * What the bridge uses of the platform: files, paths, the terminal (the CLI's prompts) and subprocesses (the lms
 * CLI). Not `NodeContext.layer`, which adds workers the bridge never starts and loads them with every start-up.
 */
export const platformLayer = Layer.mergeAll(NodePath.layer, NodeCommandExecutor.layer, NodeTerminal.layer).pipe(
  Layer.provideMerge(NodeFileSystem.layer)
)

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
export const appLayer = (version: string) => (overrides: ConfigOverrides) =>
  Layer.mergeAll(services, Logging.layer).pipe(
    // Built before the services, so what they record while being built (a breaker's first state) is recorded.
    Layer.provideMerge(Telemetry.layer(version)),
    Layer.provideMerge(NodeTransport.layer),
    Layer.provideMerge(AppConfig.layerWith(overrides)),
    Layer.provide(platformLayer)
  )
