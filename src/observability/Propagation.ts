/**
 * W3C Trace Context across the bridge's edges (docs/observability.md, "Traces"): a `traceparent` in an incoming MCP
 * request's `params._meta` (the key MCP reserves for it, unprefixed per SEP-414) becomes the parent of the bridge's
 * span; requests to child MCP servers carry the current span's `traceparent` in their
 * `_meta`, and requests to LM Studio carry it as a header. Only while traces are exported: no span, no header.
 */
import { Effect, Option, Tracer } from "effect"

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/

/** The parent a `traceparent` names, or none when it is absent or malformed (a malformed one is ignored, per W3C). */
export const parseTraceparent = (value: unknown): Option.Option<Tracer.ExternalSpan> => {
  if (typeof value !== "string") return Option.none()
  const m = TRACEPARENT.exec(value.trim().toLowerCase())
  if (m === null) return Option.none()
  const [, version, traceId, spanId, flags] = m as unknown as [string, string, string, string, string]
  // Version ff is invalid; version 00 has exactly four fields; all-zero ids are invalid.
  if (version === "ff" || (version === "00" && value.trim().length !== 55)) return Option.none()
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return Option.none()
  return Option.some(Tracer.externalSpan({ traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1 }))
}

/** The `traceparent` of a span. */
export const formatTraceparent = (span: Tracer.AnySpan): string =>
  `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`

/** The `traceparent` of the current span, if there is one. */
export const currentTraceparent: Effect.Effect<Option.Option<string>> = Effect.map(
  Effect.option(Effect.currentParentSpan),
  Option.map(formatTraceparent)
)

/** Runs `self` as a child of the `traceparent` in `meta`, when there is a valid one. */
export const withRemoteParent =
  (meta: Readonly<Record<string, unknown>> | undefined) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Option.match(parseTraceparent(meta?.["traceparent"]), {
      onNone: () => self,
      onSome: (parent) => Effect.withParentSpan(self, parent)
    })
