/**
 * What every CLI command shares: the connection flags, `--json`, output helpers, and how a command gets its
 * services (the binary passes the composition function in; the CLI never builds layers itself).
 */
import { Command, Options } from "@effect/cli"
import { Console, Effect, type Layer, Option, Schema } from "effect"
import type { AgentLoop } from "../agent/AgentLoop.js"
import type { ChildServers } from "../agent/ChildServers.js"
import type { McpConfig } from "../agent/McpConfig.js"
import type { AppConfig, ConfigOverrides } from "../Config.js"
import type { Diagnostics } from "../diagnostics/Diagnostics.js"
import type { ConfigInvalid, InvalidArguments } from "../domain/Errors.js"
import type { MetricsEndpointFailed, TelemetryUnavailable } from "../domain/TelemetryErrors.js"
import type { Admission } from "../lmstudio/Admission.js"
import type { LmsCli } from "../lmstudio/LmsCli.js"
import type { LmStudioClient } from "../lmstudio/LmStudioClient.js"
import type { ModelCatalog } from "../lmstudio/ModelCatalog.js"
import type { ModelLifecycle } from "../lmstudio/ModelLifecycle.js"
import type { MetricsEndpoint } from "../observability/Telemetry.js"

/** The services a CLI command may use, built by the binary's composition root from the command's flags. */
export type CliServices =
  | AppConfig
  | LmStudioClient
  | LmsCli
  | Admission
  | ModelCatalog
  | ModelLifecycle
  | Diagnostics
  | McpConfig
  | ChildServers
  | AgentLoop
  | MetricsEndpoint
export type AppLayerFactory = (
  overrides: ConfigOverrides
) => Layer.Layer<CliServices, ConfigInvalid | MetricsEndpointFailed | TelemetryUnavailable>

/** The MCP servers `serve` runs, handed in by the binary (a face never imports another face). */
export interface McpServers {
  readonly stdio: (version: string) => Effect.Effect<void, never, CliServices>
  readonly http: (
    version: string,
    listen: string,
    ready: (url: string) => Effect.Effect<void>
  ) => Effect.Effect<never, InvalidArguments, CliServices>
}

/** Gives a command its services, built from its flags (`--base-url`) by the binary's composition. */
export const withApp =
  (appLayer: AppLayerFactory, extra: Omit<ConfigOverrides, "baseUrl"> = {}) =>
  <Name extends string, R, E, A extends { readonly baseUrl: Option.Option<string> }>(
    self: Command.Command<Name, R, E, A>
  ) => Command.provide(self, (flags: A) => appLayer({ ...overridesOf(flags), ...extra }))

export const baseUrl = Options.text("base-url").pipe(
  Options.withDescription("LM Studio server URL (default: $LMSTUDIO_BASE_URL or http://127.0.0.1:1234)"),
  Options.optional
)

export const json = Options.boolean("json").pipe(Options.withDescription("Print machine-readable JSON on stdout"))

export const model = Options.text("model").pipe(
  Options.withAlias("m"),
  Options.withDescription("Model key or instance identifier (default: $DEFAULT_MODEL, else the loaded LLM)"),
  Options.optional
)

const overridesOf = (flags: { readonly baseUrl: Option.Option<string> }): ConfigOverrides => ({
  baseUrl: Option.getOrUndefined(flags.baseUrl)
})

export const printJson = (value: unknown) => Console.log(JSON.stringify(value, null, 2))

/** Prints a value as the JSON its Schema encodes it to (the same JSON the MCP tools return). */
export const printEncoded = <A, I>(schema: Schema.Schema<A, I>, value: A) => printJson(Schema.encodeSync(schema)(value))

export const printLine = (line: string) => Console.log(line)

/** Writes without a newline (streamed text). */
export const write = (text: string) => Effect.sync(() => void process.stdout.write(text))

export const note = (line: string) => Console.error(line)

/** Writes to stderr without a newline (streamed reasoning). */
export const writeErr = (text: string) => Effect.sync(() => void process.stderr.write(text))

export const optionalNumber = (name: string, description: string) =>
  Options.float(name).pipe(Options.withDescription(description), Options.optional)

export const optionalInteger = (name: string, description: string) =>
  Options.integer(name).pipe(Options.withDescription(description), Options.optional)
