/**
 * Spans that cost nothing when nobody collects them.
 *
 * `Effect.withSpan` makes a span and copies the fiber's context on every call, whether or not a tracer exports it;
 * on the per-call path (tool calls, model resolution) that was ~0.1 ms each (docs/benchmarks.md). `traced` makes
 * the span only when a tracer other than Effect's built-in one is installed (an OpenTelemetry exporter).
 */
import { Effect, type Tracer } from "effect"

/** The tracer Effect uses when none is installed: its spans are never exported. */
const builtInTracer: Tracer.Tracer = Effect.runSync(Effect.tracer)

export const traced =
  (name: string, attributes?: Record<string, unknown>) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.tracerWith((tracer) =>
      tracer === builtInTracer ? self : Effect.withSpan(self, name, { captureStackTrace: false, ...(attributes !== undefined ? { attributes } : {}) })
    )
