/**
 * The OpenTelemetry side of the bridge's telemetry, imported (with `import()`) only when metrics or traces are turned
 * on: nothing here, nor any `@opentelemetry/*` code, runs otherwise (it is in the bundle, behind that lazy import).
 *
 * - Metrics: Effect's metric registry, read by `@effect/opentelemetry`'s producer on each scrape, written by the
 *   OpenTelemetry Prometheus exporter. The exporter never opens its own server (it would listen on every interface):
 *   `Telemetry` serves its handler on METRICS_HOST:METRICS_PORT and on `serve --http`. Names follow OpenTelemetry's
 *   Prometheus compatibility rules: the unit becomes a suffix (`_seconds`; `{…}` units add none), counters end in
 *   `_total`, dots become underscores.
 * - Traces: Effect's tracer over an OTel tracer provider, batched to OTLP/HTTP (protobuf or JSON).
 */
import * as OtelMetrics from "@effect/opentelemetry/Metrics"
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import * as Resource from "@effect/opentelemetry/Resource"
import * as OtelTracer from "@effect/opentelemetry/Tracer"
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus"
import { OTLPTraceExporter as JsonTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { OTLPTraceExporter as ProtobufTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto"
import type { CollectionResult, MetricData, MetricProducer } from "@opentelemetry/sdk-metrics"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, Redacted, type Scope } from "effect"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { OtlpTraces } from "../Config.js"
import { CATALOG } from "./Metrics.js"

/** The longest a one-shot command's export (and so its exit) waits for the collector. */
export const ONE_SHOT_EXPORT_MS = 2000

/** The resource of every metric and span: `service.name` (OTEL_SERVICE_NAME), version, OTEL_RESOURCE_ATTRIBUTES. */
export const resourceLayer = (serviceName: string, version: string): Layer.Layer<Resource.Resource> =>
  Resource.layerFromEnv({ "service.name": serviceName, "service.version": version })

const UNIT_SUFFIX: Readonly<Record<string, string>> = { s: "_seconds" }
const unitOf = new Map<string, string>(Object.values(CATALOG).map((m) => [m.name, m.unit]))

/** The Prometheus name of a metric: unit suffix per OpenTelemetry's compatibility rules (`{token}` adds none). */
export const prometheusName = (name: string, unit: string): string => {
  const suffix = UNIT_SUFFIX[unit] ?? ""
  return suffix !== "" && !name.endsWith(suffix.slice(1)) ? `${name}${suffix}` : name
}

/**
 * Effect's producer, with each metric's unit (from the catalog) and its unit-suffixed name. Only the catalog's
 * metrics are exposed: Effect's own fiber metrics (`effect_fiber_*`) are the runtime's, not the bridge's.
 */
const withUnits = (inner: MetricProducer): MetricProducer => ({
  collect: async (options) => {
    const result: CollectionResult = await inner.collect(options)
    for (const scope of result.resourceMetrics.scopeMetrics) {
      scope.metrics = scope.metrics.flatMap((m): Array<MetricData> => {
        const unit = unitOf.get(m.descriptor.name)
        if (unit === undefined) return []
        return [{ ...m, descriptor: { ...m.descriptor, name: prometheusName(m.descriptor.name, unit), unit } }]
      })
    }
    return result
  }
})

/** Serves the exposition (Prometheus text format) for one request. */
export type MetricsHandler = (req: IncomingMessage, res: ServerResponse) => void

/** The Prometheus exporter over Effect's metrics, for as long as the scope is open. */
export const metricsHandler: Effect.Effect<MetricsHandler, never, Resource.Resource | Scope.Scope> = Effect.gen(
  function*() {
    const exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true })
    const producer = withUnits(yield* OtelMetrics.makeProducer)
    yield* OtelMetrics.registerProducer(producer, () => exporter)
    return (req, res) => exporter.getMetricsRequestHandler(req, res)
  }
)

/**
 * Effect's tracer exporting every span over OTLP/HTTP, batched; flushed when the scope closes. A one-shot command
 * (not `serving`) gives an export at most 2 s, retries included, so an unreachable collector cannot hold its exit.
 */
export const tracingLayer = (traces: OtlpTraces, serving: boolean): Layer.Layer<never, never, Resource.Resource> => {
  const timeoutMillis = serving ? traces.timeoutMs : Math.min(traces.timeoutMs, ONE_SHOT_EXPORT_MS)
  const options = { url: traces.url, headers: { ...Redacted.value(traces.headers) }, timeoutMillis }
  const exporter = traces.protocol === "http/json"
    ? new JsonTraceExporter(options)
    : new ProtobufTraceExporter(options)
  return Layer.provide(
    OtelTracer.layer,
    NodeSdk.layerTracerProvider(new BatchSpanProcessor(exporter), { shutdownTimeout: timeoutMillis + 500 })
  ).pipe(Layer.discard)
}
