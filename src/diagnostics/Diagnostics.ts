/**
 * Diagnostics: every check `doctor` (CLI) and `diagnose` (MCP) run, each ok / warn / problem with the fix. Checks
 * never fail: a failing dependency is a finding, not an error.
 */
import { Effect, Option } from "effect"
import { McpConfig } from "../agent/McpConfig.js"
import { AppConfig, type AppConfigShape } from "../Config.js"
import { isExplained } from "../domain/Errors.js"
import { LmsCli } from "../lmstudio/LmsCli.js"
import { LmStudioClient } from "../lmstudio/LmStudioClient.js"
import { ModelCatalog } from "../lmstudio/ModelCatalog.js"
import { ModelLifecycle } from "../lmstudio/ModelLifecycle.js"
import {
  describe as describeTelemetry,
  MetricsEndpoint,
  type MetricsEndpointShape
} from "../observability/Telemetry.js"
import { describePolicy } from "../resilience/CircuitBreaker.js"

export interface Check {
  readonly name: string
  readonly status: "ok" | "warn" | "problem"
  readonly detail: string
  readonly fix: string | null
}

const ok = (name: string, detail: string): Check => ({ name, status: "ok", detail, fix: null })
const warn = (name: string, detail: string, fix: string): Check => ({ name, status: "warn", detail, fix })
const problem = (name: string, detail: string, fix: string): Check => ({ name, status: "problem", detail, fix })

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"])

/** Whether metrics and traces are on and where they go (never a header's value). */
const telemetryCheck = (config: AppConfigShape, endpoint: Option.Option<MetricsEndpointShape>): Check => {
  const t = describeTelemetry(config, Option.flatMap(endpoint, (e) => e.url))
  const metrics = t.metrics !== undefined
    ? `metrics at ${t.metrics}${config.serving ? "" : " while `serve` runs"}`
    : "metrics off (METRICS_PORT unset)"
  const http = t.httpMetrics ? "; /metrics also on `serve --http`, behind its token" : ""
  const traces = t.traces !== undefined
    ? `traces to ${t.traces.url} (${t.traces.protocol}${
      t.traces.headers.length > 0 ? `, headers ${t.traces.headers.join(", ")}` : ""
    }; service.name ${config.otelServiceName})`
    : "traces off (OTEL_EXPORTER_OTLP_ENDPOINT unset)"
  const detail = `${metrics}${http}; ${traces}`
  return t.metrics !== undefined && !LOOPBACK.has(config.metricsHost)
    ? warn(
      "Telemetry",
      detail,
      `METRICS_HOST=${config.metricsHost} lets other machines read the metrics (model names, error counts); ` +
        "keep 127.0.0.1 unless a firewall or Prometheus on another host needs it."
    )
    : ok("Telemetry", detail)
}

const describe = (e: { readonly _tag: string; readonly message: string }) => `${e._tag}: ${e.message}`
const fixOf = (e: unknown, fallback: string) => (isExplained(e) ? e.hint : fallback)

export class Diagnostics extends Effect.Service<Diagnostics>()("lmstudio-bridge/Diagnostics", {
  dependencies: [
    LmStudioClient.Default,
    LmsCli.Default,
    McpConfig.Default,
    ModelCatalog.Default,
    ModelLifecycle.Default
  ],
  effect: Effect.gen(function*() {
    const config = yield* AppConfig
    const client = yield* LmStudioClient
    const lms = yield* LmsCli
    const catalog = yield* ModelCatalog
    const lifecycle = yield* ModelLifecycle
    const mcpConfig = yield* McpConfig

    const run = Effect.gen(function*() {
      const checks: Array<Check> = []
      const home = config.lmstudioHome
      const fromPortFile = config.baseUrlSource.startsWith("LM Studio's port file")
      const homeCheck = home.home === undefined
        ? warn(
          "LM Studio home",
          home.homeReason,
          "Install LM Studio, or set LMSTUDIO_BASE_URL and LMS_CLI_PATH to where it runs."
        )
        : ok(
          "LM Studio home",
          `${home.home} (${home.homeReason}); port file ${home.portFile}: ${
            home.port !== undefined ? `port ${home.port}` : home.portProblem ?? "none"
          }`
        )
      const greeting = yield* Effect.either(client.greeting())
      if (greeting._tag === "Left") {
        checks.push(
          problem(
            "LM Studio server",
            `${describe(greeting.left)}; the address came from ${config.baseUrlSource}` +
              (fromPortFile
                ? " (the file may be left from an earlier run: LM Studio's server is not answering on that port)"
                : ""),
            fixOf(greeting.left, "Start LM Studio's server.")
          )
        )
        checks.push(homeCheck)
      } else {
        checks.push(ok("LM Studio server", `reachable at ${config.baseUrl} (from ${config.baseUrlSource})`), homeCheck)
        const apis = yield* Effect.either(client.apis)
        if (apis._tag === "Right") {
          const missing = (["v1", "responses"] as const).filter((k) => !apis.right[k])
          checks.push(
            !apis.right.openai
              ? problem("APIs", "the OpenAI-compatible API (/v1) is missing", "Update LM Studio.")
              : missing.length > 0
              ? warn(
                "APIs",
                `missing: ${missing.join(", ")} (older LM Studio)`,
                "Update LM Studio to 0.4+ for REST v1 and the Responses API."
              )
              : ok("APIs", "openai, v0, v1 and responses")
          )
        }
        const listing = yield* Effect.either(client.listOpenAiModels())
        checks.push(
          listing._tag === "Left" && listing.left._tag === "LmStudioHttpError" &&
            (listing.left.status === 401 || listing.left.status === 403)
            ? problem(
              "Authentication",
              describe(listing.left),
              "Set LMSTUDIO_API_TOKEN (or LM_API_TOKEN) to an API token from LM Studio."
            )
            : ok(
              "Authentication",
              Option.isSome(config.apiToken)
                ? `a Bearer token is sent and accepted${
                  Option.isSome(config.baseUrlCredentials)
                    ? " (the user and password in the base URL are not used)"
                    : ""
                }`
                : Option.isSome(config.baseUrlCredentials)
                ? "the user and password in the base URL are sent as Basic auth (and never shown)"
                : "not required by this server"
            )
        )
        const snapshot = yield* Effect.either(catalog.snapshot)
        if (snapshot._tag === "Right") {
          const models = snapshot.right.models
          const loaded = models.flatMap((m) => m.loaded.map((i) => i.id))
          checks.push(
            models.length === 0
              ? problem("Models", "no models are downloaded", "Download one in LM Studio, or `lms get qwen/qwen3-4b`.")
              : ok(
                "Models",
                `${models.length} downloaded (from ${snapshot.right.source}); loaded: ${loaded.join(", ") || "none"}`
              )
          )
        }
        const def = yield* Effect.either(catalog.resolve(undefined))
        checks.push(
          def._tag === "Left"
            ? warn("Default model", describe(def.left), fixOf(def.left, "Set DEFAULT_MODEL."))
            : def.right.model.toolUse === false
            ? warn(
              "Default model",
              `${def.right.model.key} was not trained for tool use`,
              "Agents work best with a tool-use model (e.g. qwen/qwen3-4b); set DEFAULT_MODEL or pass `model`."
            )
            : ok("Default model", `${def.right.model.key}${def.right.model.toolUse ? " (tool use)" : ""}`)
        )
      }
      if (!lms.available) {
        checks.push(
          warn(
            "lms CLI",
            "not installed (not on PATH, not in LM Studio's home): models are loaded via JIT or REST",
            "Install it: <LM Studio home>/bin/lms bootstrap, or set LMS_CLI_PATH."
          )
        )
      } else {
        const status = yield* Effect.either(lms.serverStatus())
        checks.push(
          status._tag === "Left"
            ? problem("lms CLI", describe(status.left), fixOf(status.left, "Check LMS_CLI_PATH."))
            : ok(
              "lms CLI",
              `${Option.getOrElse(lms.path, () => "lms")}: server ${status.right.running ? "running" : "not running"}`
            )
        )
      }
      const breakers = yield* Effect.all([client.breaker, lms.breaker])
      const open = breakers.filter((b) => b.state !== "closed")
      checks.push(
        open.length === 0
          ? ok("Circuit breakers", breakers.map((b) => `${b.dependency} closed`).join(", "))
          : problem(
            "Circuit breakers",
            open.map((b) => `${b.dependency} ${b.state} (retry in ${b.retryAfterSeconds} s)`).join(", "),
            `Fix the failing dependency; calls resume automatically (a breaker ${describePolicy()}).`
          )
      )
      const status = yield* Effect.either(lifecycle.status)
      const mcp = yield* mcpConfig.locate
      checks.push(
        ok(
          "Configuration",
          `LM Studio at ${config.baseUrl} (from ${config.baseUrlSource}); lifecycle ${config.lifecycle}` +
            (status._tag === "Right" ? ` → ${status.right.backend}` : "") +
            `; TTLs ${config.tempModelTtlSeconds}/${config.modelTtlSeconds}/${config.maxModelTtlSeconds} s; mcp.json: ${
              mcp.path ?? "none"
            } (${mcp.reason})`
        )
      )
      checks.push(telemetryCheck(config, yield* Effect.serviceOption(MetricsEndpoint)))
      return checks
    }).pipe(Effect.withSpan("Diagnostics.run", { captureStackTrace: false }))

    return { run } as const
  })
}) {}
