/**
 * AppConfig: every setting of the bridge (DESIGN §4), read through Effect's `Config` (so tests use a
 * `ConfigProvider.fromMap`) and validated up front. A bad value fails start-up with one `ConfigInvalid` line that
 * names the variable, the value and what is allowed.
 *
 * CLI flags override the environment: the CLI passes them as `ConfigOverrides` to `AppConfig.layerWith`.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { Config, Context, Duration, Effect, Layer, Option, Redacted } from "effect"
import { homedir } from "node:os"
import { ConfigInvalid } from "./domain/Errors.js"
import { checkModelName } from "./domain/ModelName.js"
import { credentialsOf, redactUrlsIn } from "./domain/Redact.js"
import { NO_RULES, parsePolicy, type PolicyRules } from "./domain/ToolRules.js"
import { discoverHome, type LmStudioHome } from "./LmStudioHome.js"

export type LifecycleMode = "auto" | "cli" | "jit" | "rest"
export type LogFormat = "json" | "pretty"
export type LogLevelName = "trace" | "debug" | "info" | "warn" | "error" | "none"

export interface AppConfigShape {
  readonly baseUrl: string
  /** Where the base URL came from: LMSTUDIO_BASE_URL, --base-url, LM Studio's port file, or the default (and why). */
  readonly baseUrlSource: string
  /** LM Studio's home, port file and what was found there (LmStudioHome.ts). */
  readonly lmstudioHome: LmStudioHome
  readonly apiToken: Option.Option<Redacted.Redacted<string>>
  /** `user:password` from the base URL, sent as Basic auth (unless there is an API token); the URL is kept without it. */
  readonly baseUrlCredentials: Option.Option<Redacted.Redacted<string>>
  readonly lmsCliPath: Option.Option<string>
  /** Longest run of one `lms` command (a model load included) before it is killed. */
  readonly lmsTimeout: Duration.Duration
  readonly lifecycle: LifecycleMode
  readonly defaultModel: Option.Option<string>
  readonly modelTtlSeconds: number
  readonly tempModelTtlSeconds: number
  readonly maxModelTtlSeconds: number
  readonly modelCacheTtlSeconds: number
  /** Verification after a load: how often and how many times the loaded list is checked. */
  readonly verifyInterval: Duration.Duration
  readonly verifyAttempts: number
  /** Send a one-token request to a freshly loaded model as part of verification. */
  readonly verifyProbe: boolean
  /** First delay of the load retry schedule (then x2, x4). */
  readonly loadRetryBase: Duration.Duration
  /** Timeout of one inference request (chat, completion, responses, embeddings); for streams, the idle gap. */
  readonly requestTimeout: Duration.Duration
  /** Timeout of one metadata request (greeting, model lists, load/unload bookkeeping). */
  readonly metadataTimeout: Duration.Duration
  readonly mcpJsonPath: Option.Option<string>
  /** Agent loop: rounds when a call names none, the most a call may ask for, wall-clock budget of a run. */
  readonly agentMaxRounds: number
  readonly agentMaxRoundsCap: number
  readonly agentBudget: Duration.Duration
  /** One child tool call, unless the server's mcp.json entry sets its own `timeout` (ms). */
  readonly agentToolTimeout: Duration.Duration
  /** Tool calls of one round run at most this many at a time. */
  readonly agentToolConcurrency: number
  /**
   * Characters of one tool result the bridge keeps (the rest is cut with a note); what the model sees of it is cut
   * further to fit its context (the prompt budget).
   */
  readonly agentToolResultChars: number
  /** The share of the context the tool definitions may take; past it, the tools offered are chosen. */
  readonly agentToolsBudgetShare: number
  /** How tools are chosen when they must be: by an embedding model when one is downloaded (auto), or by BM25. */
  readonly agentToolRanking: "auto" | "lexical"
  /** The bridge's own tool policy for autonomous runs (AGENT_TOOL_POLICY; the call and mcp.json come first). */
  readonly agentToolPolicy: PolicyRules
  /** Which LM Studio API the loop talks: the Responses API when the server has it (auto), or always one of them. */
  readonly agentApi: "auto" | "responses" | "chat"
  /** LLM requests in flight per model when LM Studio does not report the instance's `parallel`. */
  readonly llmParallelDefault: number
  /** The context assumed for an instance whose loaded context LM Studio does not report. */
  readonly contextDefaultTokens: number
  /** LLM requests waiting for a model's permit, across models; past it a request fails with BridgeOverloaded. */
  readonly llmQueueLimit: number
  /** A child server idle this long is stopped; the next call starts it again. */
  readonly childIdleTtl: Duration.Duration
  /** Longest wait for a child server to start and answer `initialize`. */
  readonly childStartTimeout: Duration.Duration
  readonly logLevel: LogLevelName
  readonly logFormat: LogFormat
  /** The command serves MCP: only then is the metrics endpoint opened (a one-shot command has nothing to scrape). */
  readonly serving: boolean
  /** Prometheus `/metrics` on this port (`METRICS_PORT`); off when none. */
  readonly metricsPort: Option.Option<number>
  /** The address the metrics endpoint listens on (`METRICS_HOST`); loopback unless said otherwise. */
  readonly metricsHost: string
  /** `serve --http` also serves `/metrics` on its own port, behind its token (`BRIDGE_HTTP_METRICS`). */
  readonly httpMetrics: boolean
  /** `service.name` of the bridge's metrics and traces (`OTEL_SERVICE_NAME`). */
  readonly otelServiceName: string
  /** Trace export over OTLP/HTTP (the standard `OTEL_*` variables); off when none. */
  readonly otlpTraces: Option.Option<OtlpTraces>
  readonly bridgeHttpToken: Option.Option<Redacted.Redacted<string>>
  /** The largest MCP message the bridge reads (stdio line, HTTP body); a larger one gets an error answer. */
  readonly maxMessageBytes: number
  /** A Streamable HTTP session idle this long is closed. */
  readonly httpSessionIdle: Duration.Duration
}

/** Where and how traces are exported: `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`, `_PROTOCOL`, `_HEADERS`. */
export interface OtlpTraces {
  /** The traces URL: the `_TRACES_ENDPOINT` as given, else `_ENDPOINT` + `/v1/traces`. */
  readonly url: string
  readonly protocol: OtlpProtocol
  /** Sent with every export (often an API key): never printed. */
  readonly headers: Redacted.Redacted<Readonly<Record<string, string>>>
  /** How long one export may take, its retries included (`_TIMEOUT`, ms; the specification's default 10 s). */
  readonly timeoutMs: number
}

export type OtlpProtocol = "http/protobuf" | "http/json"

/** Values given on the command line; they win over the environment. */
export interface ConfigOverrides {
  readonly baseUrl?: string | undefined
  readonly logLevel?: string | undefined
  readonly logFormat?: string | undefined
  /** The command serves MCP (and so may open the metrics endpoint). */
  readonly serving?: boolean | undefined
}

// ---------------------------------------------------------------------------------------------------------------
// Validators: each turns a raw string into a value or a ConfigInvalid naming the variable.
// ---------------------------------------------------------------------------------------------------------------

type Check<A> = (variable: string, raw: string) => Effect.Effect<A, ConfigInvalid>

/** The value is shown with the secrets of any URL in it hidden. */
const invalid = (variable: string, value: string, allowed: string) =>
  new ConfigInvalid({ variable, value: redactUrlsIn(value), allowed })

const httpUrl: Check<string> = (variable, raw) => {
  const value = raw.trim()
  const allowed = "an http:// or https:// URL such as http://127.0.0.1:1234"
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return Effect.fail(invalid(variable, raw, allowed))
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return Effect.fail(invalid(variable, raw, allowed))
  if (url.search !== "" || url.hash !== "") {
    return Effect.fail(invalid(variable, raw, `${allowed} (no query or fragment)`))
  }
  return Effect.succeed(value.replace(/\/+$/, ""))
}

const intBetween = (min: number, max: number): Check<number> => (variable, raw) => {
  const value = raw.trim()
  const n = /^-?\d+$/.test(value) ? Number(value) : Number.NaN
  return Number.isSafeInteger(n) && n >= min && n <= max
    ? Effect.succeed(n)
    : Effect.fail(invalid(variable, raw, `an integer from ${min} to ${max}`))
}

/** A share: a number in (0, 1], or a percentage such as `25%`. */
const share: Check<number> = (variable, raw) => {
  const value = raw.trim()
  const n = value.endsWith("%") ? Number(value.slice(0, -1)) / 100 : Number(value)
  return value !== "" && Number.isFinite(n) && n > 0 && n <= 1
    ? Effect.succeed(n)
    : Effect.fail(
      invalid(variable, raw, "a share of the context: a number above 0 and at most 1, or a percentage (25%)")
    )
}

const oneOf = <const L extends string>(...literals: ReadonlyArray<L>): Check<L> => (variable, raw) => {
  const value = raw.trim().toLowerCase()
  const hit = literals.find((l) => l === value)
  return hit !== undefined ? Effect.succeed(hit) : Effect.fail(invalid(variable, raw, `one of ${literals.join(", ")}`))
}

const nonEmpty: Check<string> = (variable, raw) =>
  raw.trim().length > 0 ? Effect.succeed(raw.trim()) : Effect.fail(invalid(variable, raw, "a non-empty value"))

/** A host name or IP address to listen on (no scheme, port or path). */
const listenHost: Check<string> = (variable, raw) => {
  const value = raw.trim()
  return /^(?:[A-Za-z0-9.-]+|\[?[0-9A-Fa-f:.]+\]?)$/.test(value)
    ? Effect.succeed(value.replace(/^\[(.*)\]$/, "$1"))
    : Effect.fail(invalid(variable, raw, "a host name or IP address such as 127.0.0.1, 0.0.0.0 or ::1"))
}

/** OTLP headers, W3C Baggage style: `key=value,key2=value2` with URL-encoded values. The value is never shown. */
const otlpHeaders: Check<Readonly<Record<string, string>>> = (variable, raw) => {
  const out: Record<string, string> = {}
  for (const part of raw.split(",")) {
    if (part.trim() === "") continue
    const eq = part.indexOf("=")
    const key = eq > 0 ? part.slice(0, eq).trim() : ""
    let value: string | undefined
    try {
      value = eq > 0 ? decodeURIComponent(part.slice(eq + 1).trim()) : undefined
    } catch {
      value = undefined
    }
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key) || value === undefined) {
      return Effect.fail(
        invalid(variable, "(not shown: it may hold a key)", "key=value pairs separated by commas, values URL-encoded")
      )
    }
    out[key.toLowerCase()] = value
  }
  return Effect.succeed(out)
}

const modelName: Check<string> = (variable, raw) => {
  const problem = checkModelName(raw)
  return problem === undefined ? Effect.succeed(raw) : Effect.fail(invalid(variable, raw, `a model key (${problem})`))
}

/** Reads an optional variable; a set but empty variable counts as unset. */
const optional = <A>(variable: string, check: Check<A>): Effect.Effect<Option.Option<A>, ConfigInvalid> =>
  Config.option(Config.string(variable)).pipe(
    Effect.orElseSucceed(() => Option.none<string>()),
    Effect.flatMap((raw) =>
      Option.isSome(raw) && raw.value.trim() !== ""
        ? Effect.map(check(variable, raw.value), Option.some)
        : Effect.succeedNone
    )
  )

const withDefault = <A>(variable: string, check: Check<A>, fallback: A): Effect.Effect<A, ConfigInvalid> =>
  Effect.map(optional(variable, check), Option.getOrElse(() => fallback))

/** A whole number of seconds from 1 to `max`, as a Duration; `fallback` when unset. */
const seconds = (
  variable: string,
  max: number,
  fallback: Duration.Duration
): Effect.Effect<Duration.Duration, ConfigInvalid> =>
  Effect.map(withDefault(variable, intBetween(1, max), Duration.toSeconds(fallback)), Duration.seconds)

const fromOverride = <A>(
  variable: string,
  flag: string | undefined,
  check: Check<A>,
  fallback: Effect.Effect<A, ConfigInvalid>
): Effect.Effect<A, ConfigInvalid> => (flag !== undefined ? check(variable, flag) : fallback)

const MAX_TTL_CAP = 86_400

export const DEFAULT_BASE_URL = "http://127.0.0.1:1234"

/**
 * The LM Studio server to use: --base-url, else LMSTUDIO_BASE_URL, else the port LM Studio published in its port file,
 * else the default; with where it came from (said by doctor / diagnose).
 */
export const baseUrlOf = (
  flag: string | undefined,
  env: Option.Option<string>,
  home: LmStudioHome
): { readonly url: string; readonly source: string } => {
  if (flag !== undefined) return { url: flag, source: "--base-url" }
  if (Option.isSome(env)) return { url: env.value, source: "LMSTUDIO_BASE_URL" }
  if (home.port !== undefined) {
    return { url: `http://127.0.0.1:${home.port}`, source: `LM Studio's port file ${home.portFile}` }
  }
  return {
    url: DEFAULT_BASE_URL,
    source: `the default (LMSTUDIO_BASE_URL is not set; ${home.portProblem ?? "no port file"})`
  }
}

/**
 * Trace export from the standard variables (OpenTelemetry SDK environment specification): the signal-specific
 * `OTEL_EXPORTER_OTLP_TRACES_*` wins over `OTEL_EXPORTER_OTLP_*`; `OTEL_SDK_DISABLED=true` or
 * `OTEL_TRACES_EXPORTER=none` turn it off. Only the HTTP protocols are built in; gRPC gets a clear error.
 */
const loadOtlpTraces: Effect.Effect<Option.Option<OtlpTraces>, ConfigInvalid> = Effect.gen(function*() {
  const disabled = yield* withDefault("OTEL_SDK_DISABLED", oneOf("true", "false"), "false")
  const exporter = yield* withDefault("OTEL_TRACES_EXPORTER", oneOf("otlp", "none"), "otlp")
  const tracesEndpoint = yield* optional("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", httpUrl)
  const endpoint = yield* optional("OTEL_EXPORTER_OTLP_ENDPOINT", httpUrl)
  const url = Option.isSome(tracesEndpoint)
    ? tracesEndpoint
    : Option.map(endpoint, (base) => `${base}/v1/traces`)
  if (disabled === "true" || exporter === "none" || Option.isNone(url)) return Option.none()
  const protocolCheck = oneOf("http/protobuf", "http/json", "grpc")
  const specific = yield* optional("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", protocolCheck)
  const protocol = Option.isSome(specific)
    ? specific.value
    : yield* withDefault("OTEL_EXPORTER_OTLP_PROTOCOL", protocolCheck, "http/protobuf")
  if (protocol === "grpc") {
    return yield* Effect.fail(
      new ConfigInvalid({
        variable: Option.isSome(specific) ? "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" : "OTEL_EXPORTER_OTLP_PROTOCOL",
        value: "grpc",
        allowed: "http/protobuf or http/json (the bridge exports over OTLP/HTTP; a collector takes both on port 4318)"
      })
    )
  }
  const specificHeaders = yield* optional("OTEL_EXPORTER_OTLP_TRACES_HEADERS", otlpHeaders)
  const headers = Option.isSome(specificHeaders)
    ? specificHeaders.value
    : yield* withDefault("OTEL_EXPORTER_OTLP_HEADERS", otlpHeaders, {})
  const specificTimeout = yield* optional("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", intBetween(1, 600_000))
  const timeoutMs = Option.isSome(specificTimeout)
    ? specificTimeout.value
    : yield* withDefault("OTEL_EXPORTER_OTLP_TIMEOUT", intBetween(1, 600_000), 10_000)
  return Option.some({ url: url.value, protocol, headers: Redacted.make(headers), timeoutMs })
})

/** Loads and validates the whole configuration. */
export const loadAppConfig = (
  overrides: ConfigOverrides = {}
): Effect.Effect<AppConfigShape, ConfigInvalid, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const infoPath = yield* optional("LMS_API_SERVER_INFO_PATH", nonEmpty)
    const lmstudioHome = yield* discoverHome(homedir(), { LMS_API_SERVER_INFO_PATH: Option.getOrUndefined(infoPath) })
    const fromEnv = yield* optional("LMSTUDIO_BASE_URL", httpUrl)
    const flag = overrides.baseUrl !== undefined ? yield* httpUrl("LMSTUDIO_BASE_URL", overrides.baseUrl) : undefined
    const found = baseUrlOf(flag, fromEnv, lmstudioHome)
    // Credentials in the URL are sent as Basic auth and never kept in the URL, so nothing that prints it shows them.
    const { basic: baseUrlCredentials, url: baseUrl } = credentialsOf(found.url)
    const token = yield* optional("LMSTUDIO_API_TOKEN", nonEmpty)
    const apiToken = Option.isSome(token) ? token : yield* optional("LM_API_TOKEN", nonEmpty)
    const lmsCliPath = yield* optional("LMS_CLI_PATH", nonEmpty)
    const lmsTimeout = yield* seconds("LMS_CLI_TIMEOUT_SECONDS", 3600, defaults.lmsTimeout)
    const lifecycle = yield* withDefault("LMSTUDIO_LIFECYCLE", oneOf("auto", "cli", "jit", "rest"), defaults.lifecycle)
    const defaultModel = yield* optional("DEFAULT_MODEL", modelName)
    const maxModelTtlSeconds = yield* withDefault(
      "MAX_MODEL_TTL_SECONDS",
      intBetween(1, MAX_TTL_CAP),
      defaults.maxModelTtlSeconds
    )
    const ttlWithin = intBetween(1, maxModelTtlSeconds)
    const modelTtlSeconds = yield* withDefault(
      "MODEL_TTL_SECONDS",
      ttlWithin,
      Math.min(defaults.modelTtlSeconds, maxModelTtlSeconds)
    )
    const tempModelTtlSeconds = yield* withDefault(
      "TEMP_MODEL_TTL_SECONDS",
      ttlWithin,
      Math.min(defaults.tempModelTtlSeconds, maxModelTtlSeconds)
    )
    const modelCacheTtlSeconds = yield* withDefault(
      "MODEL_CACHE_TTL_SECONDS",
      intBetween(0, 86_400),
      defaults.modelCacheTtlSeconds
    )
    const verifyAttempts = yield* withDefault("MODEL_VERIFY_ATTEMPTS", intBetween(1, 1000), defaults.verifyAttempts)
    const verifyProbe = yield* withDefault(
      "MODEL_VERIFY_PROBE",
      oneOf("true", "false"),
      defaults.verifyProbe ? "true" : "false"
    )
    const requestTimeout = yield* seconds("LMSTUDIO_TIMEOUT_SECONDS", 86_400, defaults.requestTimeout)
    const metadataTimeout = yield* seconds("LMSTUDIO_METADATA_TIMEOUT_SECONDS", 3600, defaults.metadataTimeout)
    const mcpJsonPath = yield* optional("MCP_JSON_PATH", nonEmpty)
    const agentMaxRoundsCap = yield* withDefault(
      "AGENT_MAX_ROUNDS_CAP",
      intBetween(1, 1000),
      defaults.agentMaxRoundsCap
    )
    const agentMaxRounds = yield* withDefault(
      "AGENT_MAX_ROUNDS",
      intBetween(1, agentMaxRoundsCap),
      Math.min(defaults.agentMaxRounds, agentMaxRoundsCap)
    )
    const agentBudget = yield* seconds("AGENT_BUDGET_SECONDS", 86_400, defaults.agentBudget)
    const agentToolTimeout = yield* seconds("AGENT_TOOL_TIMEOUT_SECONDS", 3600, defaults.agentToolTimeout)
    const agentToolConcurrency = yield* withDefault(
      "AGENT_TOOL_CONCURRENCY",
      intBetween(1, 64),
      defaults.agentToolConcurrency
    )
    const agentToolResultChars = yield* withDefault(
      "AGENT_TOOL_RESULT_CHARS",
      intBetween(100, 1_000_000),
      defaults.agentToolResultChars
    )
    const agentToolsBudgetShare = yield* withDefault("AGENT_TOOLS_BUDGET_SHARE", share, defaults.agentToolsBudgetShare)
    const agentToolRanking = yield* withDefault(
      "AGENT_TOOL_RANKING",
      oneOf("auto", "lexical"),
      defaults.agentToolRanking
    )
    const agentToolPolicy = yield* withDefault("AGENT_TOOL_POLICY", parsePolicy, defaults.agentToolPolicy)
    const agentApi = yield* withDefault("AGENT_API", oneOf("auto", "responses", "chat"), defaults.agentApi)
    const contextDefaultTokens = yield* withDefault(
      "CONTEXT_DEFAULT_TOKENS",
      intBetween(256, 10_000_000),
      defaults.contextDefaultTokens
    )
    const llmParallelDefault = yield* withDefault(
      "LLM_PARALLEL_DEFAULT",
      intBetween(1, 256),
      defaults.llmParallelDefault
    )
    const llmQueueLimit = yield* withDefault("LLM_QUEUE_LIMIT", intBetween(1, 1_000_000), defaults.llmQueueLimit)
    const childIdleTtl = yield* seconds("MCP_CHILD_IDLE_SECONDS", 86_400, defaults.childIdleTtl)
    const childStartTimeout = yield* seconds("MCP_CHILD_START_TIMEOUT_SECONDS", 600, defaults.childStartTimeout)
    const logLevelCheck = oneOf("trace", "debug", "info", "warn", "error", "none")
    const logLevel = yield* fromOverride(
      "LOG_LEVEL",
      overrides.logLevel,
      logLevelCheck,
      withDefault("LOG_LEVEL", logLevelCheck, defaults.logLevel)
    )
    const logFormatCheck = oneOf("json", "pretty")
    const defaultFormat: LogFormat = process.stderr.isTTY ? "pretty" : "json"
    const logFormat = yield* fromOverride(
      "LOG_FORMAT",
      overrides.logFormat,
      logFormatCheck,
      withDefault("LOG_FORMAT", logFormatCheck, defaultFormat)
    )
    const metricsPort = yield* optional("METRICS_PORT", intBetween(0, 65_535))
    const metricsHost = yield* withDefault("METRICS_HOST", listenHost, defaults.metricsHost)
    const httpMetrics = yield* withDefault("BRIDGE_HTTP_METRICS", oneOf("true", "false"), "false")
    const otelServiceName = yield* withDefault("OTEL_SERVICE_NAME", nonEmpty, defaults.otelServiceName)
    const otlpTraces = yield* loadOtlpTraces
    const bridgeHttpToken = yield* optional("BRIDGE_HTTP_TOKEN", nonEmpty)
    const maxMessageBytes = yield* withDefault(
      "BRIDGE_MAX_MESSAGE_BYTES",
      intBetween(1024, 1024 * 1024 * 1024),
      defaults.maxMessageBytes
    )
    const httpSessionIdle = yield* seconds("BRIDGE_HTTP_SESSION_IDLE_SECONDS", 7 * 86_400, defaults.httpSessionIdle)
    return {
      baseUrl,
      baseUrlSource: found.source,
      baseUrlCredentials,
      lmstudioHome,
      apiToken: Option.map(apiToken, Redacted.make),
      lmsCliPath,
      lmsTimeout,
      lifecycle,
      defaultModel,
      modelTtlSeconds,
      tempModelTtlSeconds,
      maxModelTtlSeconds,
      modelCacheTtlSeconds,
      verifyInterval: defaults.verifyInterval,
      verifyAttempts,
      verifyProbe: verifyProbe === "true",
      loadRetryBase: defaults.loadRetryBase,
      requestTimeout,
      metadataTimeout,
      mcpJsonPath,
      agentMaxRounds,
      agentMaxRoundsCap,
      agentBudget,
      agentToolTimeout,
      agentToolConcurrency,
      agentToolResultChars,
      agentToolsBudgetShare,
      agentToolRanking,
      agentToolPolicy,
      agentApi,
      llmParallelDefault,
      contextDefaultTokens,
      llmQueueLimit,
      childIdleTtl,
      childStartTimeout,
      logLevel,
      logFormat,
      serving: overrides.serving === true,
      metricsPort,
      metricsHost,
      httpMetrics: httpMetrics === "true",
      otelServiceName,
      otlpTraces,
      bridgeHttpToken: Option.map(bridgeHttpToken, Redacted.make),
      maxMessageBytes,
      httpSessionIdle
    }
  })

export class AppConfig extends Context.Tag("lmstudio-bridge/AppConfig")<AppConfig, AppConfigShape>() {
  /** Configuration from the environment (through the current ConfigProvider). */
  static readonly layer: Layer.Layer<AppConfig, ConfigInvalid, FileSystem.FileSystem> = Layer.effect(
    AppConfig,
    loadAppConfig()
  )
  /** Configuration from the environment, with CLI flags on top. */
  static readonly layerWith = (
    overrides: ConfigOverrides
  ): Layer.Layer<AppConfig, ConfigInvalid, FileSystem.FileSystem> => Layer.effect(AppConfig, loadAppConfig(overrides))
  /** A fixed configuration (tests, embedded use). */
  static readonly layerFrom = (
    config: Partial<AppConfigShape> & Pick<AppConfigShape, "baseUrl">
  ): Layer.Layer<AppConfig> => Layer.succeed(AppConfig, { ...defaults, ...config })
}

/** The documented defaults: the loader's for every variable that is unset, and `AppConfig.layerFrom`'s. */
export const defaults: AppConfigShape = {
  baseUrl: DEFAULT_BASE_URL,
  baseUrlSource: "a fixed configuration",
  lmstudioHome: {
    home: undefined,
    homeReason: "not looked up (a fixed configuration)",
    portFile: "",
    port: undefined,
    portProblem: undefined
  },
  apiToken: Option.none(),
  baseUrlCredentials: Option.none(),
  lmsCliPath: Option.none(),
  lmsTimeout: Duration.seconds(120),
  lifecycle: "auto",
  defaultModel: Option.none(),
  modelTtlSeconds: 600,
  tempModelTtlSeconds: 300,
  maxModelTtlSeconds: 3600,
  modelCacheTtlSeconds: 60,
  verifyInterval: Duration.millis(250),
  verifyAttempts: 20,
  verifyProbe: false,
  loadRetryBase: Duration.seconds(1),
  requestTimeout: Duration.seconds(300),
  metadataTimeout: Duration.seconds(10),
  mcpJsonPath: Option.none(),
  agentMaxRounds: 25,
  agentMaxRoundsCap: 100,
  agentBudget: Duration.seconds(600),
  agentToolTimeout: Duration.seconds(60),
  agentToolConcurrency: 4,
  agentToolResultChars: 100_000,
  agentToolsBudgetShare: 0.25,
  agentToolRanking: "auto",
  agentToolPolicy: NO_RULES,
  agentApi: "auto",
  llmParallelDefault: 4,
  contextDefaultTokens: 4096,
  llmQueueLimit: 2048,
  childIdleTtl: Duration.seconds(300),
  childStartTimeout: Duration.seconds(30),
  logLevel: "info",
  logFormat: "json",
  serving: false,
  metricsPort: Option.none(),
  metricsHost: "127.0.0.1",
  httpMetrics: false,
  otelServiceName: "lmstudio-bridge",
  otlpTraces: Option.none(),
  bridgeHttpToken: Option.none(),
  maxMessageBytes: 10 * 1024 * 1024,
  httpSessionIdle: Duration.seconds(3600)
}
