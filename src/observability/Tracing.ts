/**
 * Spans only when traces are exported.
 *
 * `Effect.withSpan` makes a span and copies the fiber's context on every call, whether or not anything exports it;
 * on the per-call path (tool calls, model resolution, chat) that was ~0.1 ms each (docs/benchmarks.md). Traces are
 * exported only when an OTLP endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT`), so that setting decides whether the spans are made.
 */
import { Effect, Option } from "effect"
import type { AppConfigShape } from "../Config.js"

/** Are traces exported (so spans are worth making)? */
export const tracingEnabled = (config: Pick<AppConfigShape, "otlpTraces">): boolean => Option.isSome(config.otlpTraces)

/** `Effect.withSpan` (no stack capture) when `enabled`, else the effect unchanged. */
export const spanIf =
  (enabled: boolean, name: string, attributes?: Record<string, unknown>) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    enabled
      ? Effect.withSpan(self, name, { captureStackTrace: false, ...(attributes !== undefined ? { attributes } : {}) })
      : self
