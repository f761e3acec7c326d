/** AppConfig: defaults, every validation rule, one clear ConfigInvalid per bad value, flags over env. */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Exit, Option, Redacted } from "effect"
import { loadAppConfig } from "../src/Config.js"

const withEnv = (env: Record<string, string>, overrides = {}) =>
  loadAppConfig(overrides).pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
    Effect.provide(NodeFileSystem.layer)
  )

const invalid = (env: Record<string, string>) =>
  Effect.map(Effect.exit(withEnv(env)), (exit) => {
    if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") throw new Error("expected ConfigInvalid")
    return exit.cause.error
  })

describe("AppConfig", () => {
  it.effect("has the documented defaults", () =>
    Effect.gen(function*() {
      const c = yield* withEnv({})
      assert.strictEqual(c.baseUrl, "http://127.0.0.1:1234")
      assert.strictEqual(c.lifecycle, "auto")
      assert.strictEqual(c.modelTtlSeconds, 600)
      assert.strictEqual(c.tempModelTtlSeconds, 300)
      assert.strictEqual(c.maxModelTtlSeconds, 3600)
      assert.strictEqual(c.modelCacheTtlSeconds, 60)
      assert.isTrue(Option.isNone(c.apiToken))
      assert.isTrue(Option.isNone(c.metricsPort))
      assert.strictEqual(Duration.toSeconds(c.requestTimeout), 300)
      assert.strictEqual(c.logLevel, "info")
      assert.strictEqual(c.agentMaxRounds, 25)
      assert.strictEqual(c.agentMaxRoundsCap, 100)
      assert.strictEqual(Duration.toSeconds(c.agentBudget), 600)
      assert.strictEqual(c.agentApi, "auto")
      assert.strictEqual(c.llmParallelDefault, 4)
      assert.strictEqual(c.llmQueueLimit, 2048)
      assert.strictEqual(Duration.toSeconds(c.childIdleTtl), 300)
    }))

  it.effect("reads the agent and admission settings", () =>
    Effect.gen(function*() {
      const c = yield* withEnv({
        AGENT_MAX_ROUNDS_CAP: "40",
        AGENT_MAX_ROUNDS: "40",
        AGENT_BUDGET_SECONDS: "90",
        AGENT_API: "chat",
        AGENT_TOOL_CONCURRENCY: "2",
        LLM_PARALLEL_DEFAULT: "1",
        LLM_QUEUE_LIMIT: "10",
        MCP_CHILD_IDLE_SECONDS: "5"
      })
      assert.strictEqual(c.agentMaxRounds, 40)
      assert.strictEqual(c.agentMaxRoundsCap, 40)
      assert.strictEqual(Duration.toSeconds(c.agentBudget), 90)
      assert.strictEqual(c.agentApi, "chat")
      assert.strictEqual(c.agentToolConcurrency, 2)
      assert.strictEqual(c.llmParallelDefault, 1)
      assert.strictEqual(c.llmQueueLimit, 10)
      assert.strictEqual(Duration.toSeconds(c.childIdleTtl), 5)
    }))

  it.effect("reads every setting, trims a trailing slash, takes LM_API_TOKEN as a fallback", () =>
    Effect.gen(function*() {
      const c = yield* withEnv({
        LMSTUDIO_BASE_URL: "http://gpu-box:4321/",
        LM_API_TOKEN: "tok",
        LMS_CLI_PATH: "/opt/lms",
        LMSTUDIO_LIFECYCLE: "CLI",
        DEFAULT_MODEL: "qwen/qwen3-4b",
        MODEL_TTL_SECONDS: "900",
        MAX_MODEL_TTL_SECONDS: "1800",
        METRICS_PORT: "9464",
        LOG_LEVEL: "debug",
        LOG_FORMAT: "pretty",
        LMSTUDIO_TIMEOUT_SECONDS: "42"
      })
      assert.strictEqual(c.baseUrl, "http://gpu-box:4321")
      assert.strictEqual(Redacted.value(Option.getOrThrow(c.apiToken)), "tok")
      assert.strictEqual(c.lifecycle, "cli")
      assert.strictEqual(Option.getOrThrow(c.defaultModel), "qwen/qwen3-4b")
      assert.strictEqual(c.modelTtlSeconds, 900)
      assert.strictEqual(c.tempModelTtlSeconds, 300)
      assert.strictEqual(Option.getOrThrow(c.metricsPort), 9464)
      assert.strictEqual(c.logFormat, "pretty")
      assert.strictEqual(Duration.toSeconds(c.requestTimeout), 42)
      const both = yield* withEnv({ LMSTUDIO_API_TOKEN: "primary", LM_API_TOKEN: "fallback" })
      assert.strictEqual(Redacted.value(Option.getOrThrow(both.apiToken)), "primary")
    }))

  it.effect("CLI flags win over the environment", () =>
    Effect.gen(function*() {
      const c = yield* withEnv({ LMSTUDIO_BASE_URL: "http://env:1" }, { baseUrl: "http://flag:2" })
      assert.strictEqual(c.baseUrl, "http://flag:2")
    }))

  const cases: ReadonlyArray<[Record<string, string>, string, string]> = [
    [{ LMSTUDIO_BASE_URL: "localhost:1234" }, "LMSTUDIO_BASE_URL", "http:// or https:// URL"],
    [{ LMSTUDIO_BASE_URL: "http://x:1/?a=1" }, "LMSTUDIO_BASE_URL", "no query"],
    [{ LMSTUDIO_LIFECYCLE: "magic" }, "LMSTUDIO_LIFECYCLE", "one of auto, cli, jit, rest"],
    [{ MODEL_TTL_SECONDS: "0" }, "MODEL_TTL_SECONDS", "from 1 to 3600"],
    [{ MODEL_TTL_SECONDS: "-5" }, "MODEL_TTL_SECONDS", "from 1 to 3600"],
    [{ MODEL_TTL_SECONDS: "1.5" }, "MODEL_TTL_SECONDS", "integer"],
    [{ MODEL_TTL_SECONDS: "7200" }, "MODEL_TTL_SECONDS", "from 1 to 3600"],
    [{ MAX_MODEL_TTL_SECONDS: "100", MODEL_TTL_SECONDS: "600" }, "MODEL_TTL_SECONDS", "from 1 to 100"],
    [{ TEMP_MODEL_TTL_SECONDS: "abc" }, "TEMP_MODEL_TTL_SECONDS", "integer"],
    [{ METRICS_PORT: "70000" }, "METRICS_PORT", "from 0 to 65535"],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL", "one of trace"],
    [{ LOG_FORMAT: "xml" }, "LOG_FORMAT", "one of json, pretty"],
    [{ DEFAULT_MODEL: "--ttl" }, "DEFAULT_MODEL", "starts with '-'"],
    [{ DEFAULT_MODEL: "../../etc/passwd" }, "DEFAULT_MODEL", "path traversal"],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: "grpc://x" }, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://"],
    [{ AGENT_API: "graphql" }, "AGENT_API", "one of auto, responses, chat"],
    [{ AGENT_MAX_ROUNDS_CAP: "10", AGENT_MAX_ROUNDS: "25" }, "AGENT_MAX_ROUNDS", "from 1 to 10"],
    [{ LLM_PARALLEL_DEFAULT: "0" }, "LLM_PARALLEL_DEFAULT", "from 1 to 256"],
    [{ LLM_QUEUE_LIMIT: "lots" }, "LLM_QUEUE_LIMIT", "integer"],
    [{ MCP_CHILD_IDLE_SECONDS: "-1" }, "MCP_CHILD_IDLE_SECONDS", "from 1 to 86400"]
  ]
  for (const [env, variable, allowed] of cases) {
    it.effect(`rejects ${JSON.stringify(env)} naming ${variable}`, () =>
      Effect.gen(function*() {
        const e = yield* invalid(env)
        assert.strictEqual(e._tag, "ConfigInvalid")
        assert.strictEqual(e.variable, variable)
        assert.include(e.message, variable)
        assert.include(e.message, allowed)
        assert.notInclude(e.message, "\n")
      }))
  }

  it.effect("an empty variable counts as unset", () =>
    Effect.gen(function*() {
      const c = yield* withEnv({ DEFAULT_MODEL: "", METRICS_PORT: " " })
      assert.isTrue(Option.isNone(c.defaultModel))
      assert.isTrue(Option.isNone(c.metricsPort))
    }))
})

describe("AppConfig: metrics and traces (the standard OTEL_* variables)", () => {
  it.effect("metrics listen on loopback unless METRICS_HOST says otherwise; off by default", () =>
    Effect.gen(function*() {
      const d = yield* withEnv({})
      assert.strictEqual(d.metricsHost, "127.0.0.1")
      assert.isFalse(d.httpMetrics)
      assert.isTrue(Option.isNone(d.otlpTraces))
      assert.strictEqual(d.otelServiceName, "lmstudio-bridge")
      const c = yield* withEnv({ METRICS_PORT: "9464", METRICS_HOST: "[::1]", BRIDGE_HTTP_METRICS: "true" })
      assert.strictEqual(c.metricsHost, "::1")
      assert.isTrue(c.httpMetrics)
      const e = yield* invalid({ METRICS_HOST: "http://0.0.0.0:9464" })
      assert.strictEqual(e.variable, "METRICS_HOST")
    }))

  it.effect("the traces URL: the signal's endpoint as given, else the base endpoint + /v1/traces", () =>
    Effect.gen(function*() {
      const base = yield* withEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" })
      const t = Option.getOrThrow(base.otlpTraces)
      assert.strictEqual(t.url, "http://collector:4318/v1/traces")
      assert.strictEqual(t.protocol, "http/protobuf", "the specification's default")
      const own = yield* withEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://other:9999/custom/path",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json",
        OTEL_SERVICE_NAME: "my-bridge"
      })
      assert.strictEqual(Option.getOrThrow(own.otlpTraces).url, "http://other:9999/custom/path")
      assert.strictEqual(Option.getOrThrow(own.otlpTraces).protocol, "http/json")
      assert.strictEqual(own.otelServiceName, "my-bridge")
    }))

  it.effect("OTEL_SDK_DISABLED=true and OTEL_TRACES_EXPORTER=none turn traces off", () =>
    Effect.gen(function*() {
      const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }
      assert.isTrue(Option.isNone((yield* withEnv({ ...endpoint, OTEL_SDK_DISABLED: "true" })).otlpTraces))
      assert.isTrue(Option.isNone((yield* withEnv({ ...endpoint, OTEL_TRACES_EXPORTER: "none" })).otlpTraces))
      assert.isTrue(Option.isSome((yield* withEnv({ ...endpoint, OTEL_SDK_DISABLED: "false" })).otlpTraces))
    }))

  it.effect("headers are parsed (URL-encoded values) and kept secret; a malformed value is refused without showing it", () =>
    Effect.gen(function*() {
      const c = yield* withEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
        OTEL_EXPORTER_OTLP_HEADERS: "X-Api-Key=s3cr%3Dt, tenant=team-a"
      })
      const t = Option.getOrThrow(c.otlpTraces)
      assert.deepStrictEqual(Redacted.value(t.headers), { "x-api-key": "s3cr=t", tenant: "team-a" })
      assert.notInclude(String(t.headers), "s3cr")
      const e = yield* invalid({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
        OTEL_EXPORTER_OTLP_HEADERS: "Authorization Bearer very-secret"
      })
      assert.strictEqual(e.variable, "OTEL_EXPORTER_OTLP_HEADERS")
      assert.notInclude(e.message, "very-secret")
    }))

  it.effect("gRPC is refused with the fix (the bridge exports over OTLP/HTTP)", () =>
    Effect.gen(function*() {
      const e = yield* invalid({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4317",
        OTEL_EXPORTER_OTLP_PROTOCOL: "grpc"
      })
      assert.strictEqual(e.variable, "OTEL_EXPORTER_OTLP_PROTOCOL")
      assert.include(e.message, "http/protobuf or http/json")
    }))
})
