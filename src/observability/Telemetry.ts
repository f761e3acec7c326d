/**
 * Telemetry from config (docs/observability.md): Prometheus metrics while serving when `METRICS_PORT` is set (or
 * `BRIDGE_HTTP_METRICS=true` for `serve --http`), OTLP trace export (any command) when an OTLP endpoint is. With neither, this layer
 * is empty: no port, no recorder, and the OpenTelemetry code never runs (`Exporters.ts` is imported only here, only
 * then, and says so in the log).
 *
 * The metrics endpoint is the bridge's own `node:http` server on METRICS_HOST (loopback by default) — the exporter's
 * built-in server would listen on every interface. It serves `GET /metrics` and nothing else.
 */
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { createServer, type Server } from "node:http"
import { AppConfig } from "../Config.js"
import { redactUrl } from "../domain/Redact.js"
import { MetricsEndpointFailed, TelemetryUnavailable } from "../domain/TelemetryErrors.js"
import type { MetricsHandler } from "./Exporters.js"
import { CurrentRecorder, Recorder } from "./Metrics.js"

export interface MetricsEndpointShape {
  /** Serves the exposition for one request; none while metrics are off. */
  readonly handler: Option.Option<MetricsHandler>
  /** Where `METRICS_PORT`'s endpoint listens, once it does. */
  readonly url: Option.Option<string>
}

export class MetricsEndpoint extends Context.Tag("lmstudio-bridge/MetricsEndpoint")<
  MetricsEndpoint,
  MetricsEndpointShape
>() {}

const off: MetricsEndpointShape = { handler: Option.none(), url: Option.none() }

const hostInUrl = (host: string) => (host.includes(":") ? `[${host}]` : host)

/** Listens on host:port (port 0: a free port the system picks) until the scope closes; answers with the bound URL. */
const listen = (host: string, port: number, handler: MetricsHandler) =>
  Effect.acquireRelease(
    Effect.async<Server, MetricsEndpointFailed>((resume) => {
      const server = createServer((req, res) => {
        const path = (req.url ?? "/").split("?")[0]
        if (path !== "/metrics") {
          res.writeHead(404, { "content-type": "text/plain" }).end("Not found: the metrics are at /metrics\n")
        } else if (req.method !== "GET" && req.method !== "HEAD") {
          res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("Use GET\n")
        } else {
          handler(req, res)
        }
      })
      server.once("error", (e) => resume(Effect.fail(new MetricsEndpointFailed({ host, port, reason: e.message }))))
      server.listen(port, host, () => {
        resume(Effect.succeed(server))
      })
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  ).pipe(
    Effect.map((server) => {
      const address = server.address()
      const bound = typeof address === "object" && address !== null ? address.port : port
      return `http://${hostInUrl(host)}:${bound}/metrics`
    })
  )

/**
 * The telemetry layer: `MetricsEndpoint`, Effect's tracer over OTLP when traces are on, and the metrics recorder
 * installed on the runtime when metrics are on. `version`: the bridge's, for `service.version`.
 */
export const layer = (
  version: string
): Layer.Layer<MetricsEndpoint, MetricsEndpointFailed | TelemetryUnavailable, AppConfig> =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const config = yield* AppConfig
      const metricsOn = config.serving && (Option.isSome(config.metricsPort) || config.httpMetrics)
      if (!metricsOn && Option.isNone(config.otlpTraces)) return Layer.succeed(MetricsEndpoint, off)
      const exporters = yield* Effect.tryPromise({
        try: () => import("./Exporters.js"),
        catch: (e) =>
          new TelemetryUnavailable({
            what: metricsOn ? "metrics" : "traces",
            reason: e instanceof Error ? e.message : String(e)
          })
      })
      yield* Effect.logInfo("OpenTelemetry exporters loaded").pipe(
        Effect.annotateLogs({ metrics: metricsOn, traces: Option.isSome(config.otlpTraces) })
      )
      const tracing = Option.match(config.otlpTraces, {
        onNone: () => Layer.empty,
        onSome: (traces) => exporters.tracingLayer(traces, config.serving)
      })
      const metrics = !metricsOn
        ? Layer.succeed(MetricsEndpoint, off)
        : Layer.merge(
          Layer.scoped(
            MetricsEndpoint,
            Effect.gen(function*() {
              const handler = yield* exporters.metricsHandler
              const url = Option.isSome(config.metricsPort)
                ? Option.some(yield* listen(config.metricsHost, config.metricsPort.value, handler))
                : Option.none()
              if (Option.isSome(url)) {
                yield* Effect.logInfo("metrics endpoint listening").pipe(Effect.annotateLogs({ url: url.value }))
              }
              return { handler: Option.some(handler), url }
            })
          ),
          // The recorder on the runtime: every fiber of a call inherits it.
          Layer.effect(CurrentRecorder, Effect.map(Effect.clock, (clock) => new Recorder(clock)))
        )
      return Layer.merge(metrics, tracing).pipe(
        Layer.provide(exporters.resourceLayer(config.otelServiceName, version))
      )
    })
  )

/** Metrics and traces as doctor reports them. */
export const describe = (config: AppConfig["Type"], listening: Option.Option<string>) => ({
  metrics: Option.match(config.metricsPort, {
    onNone: () => undefined,
    onSome: (port) => Option.getOrElse(listening, () => `http://${hostInUrl(config.metricsHost)}:${port}/metrics`)
  }),
  httpMetrics: config.httpMetrics,
  traces: Option.match(config.otlpTraces, {
    onNone: () => undefined,
    onSome: (t) => ({ url: redactUrl(t.url), protocol: t.protocol, headers: Object.keys(Redacted.value(t.headers)) })
  })
})
