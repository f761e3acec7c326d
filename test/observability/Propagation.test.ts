/** W3C trace context: what a `traceparent` in `_meta` makes the parent of, and what goes out. */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { formatTraceparent, parseTraceparent, withRemoteParent } from "../../src/observability/Propagation.js"

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
const SPAN = "00f067aa0ba902b7"

describe("traceparent", () => {
  it("a valid header names its trace, span and sampling; formatting gives the header back", () => {
    const parent = Option.getOrThrow(parseTraceparent(`00-${TRACE}-${SPAN}-01`))
    assert.strictEqual(parent.traceId, TRACE)
    assert.strictEqual(parent.spanId, SPAN)
    assert.isTrue(parent.sampled)
    assert.strictEqual(formatTraceparent(parent), `00-${TRACE}-${SPAN}-01`)
    assert.isFalse(Option.getOrThrow(parseTraceparent(`00-${TRACE}-${SPAN}-00`)).sampled)
    // Upper case and a future version with more fields are read (W3C: parse what you can of a higher version).
    assert.isTrue(Option.isSome(parseTraceparent(`00-${TRACE.toUpperCase()}-${SPAN}-01`)))
    assert.isTrue(Option.isSome(parseTraceparent(`01-${TRACE}-${SPAN}-01-future`)))
  })

  it("anything malformed is ignored (no parent), never an error", () => {
    for (
      const bad of [
        undefined,
        42,
        "",
        "garbage",
        `ff-${TRACE}-${SPAN}-01`,
        `00-${"0".repeat(32)}-${SPAN}-01`,
        `00-${TRACE}-${"0".repeat(16)}-01`,
        `00-${TRACE}-${SPAN}-01-extra`,
        `00-${TRACE.slice(1)}-${SPAN}-01`,
        `00-${TRACE}-${SPAN}`
      ]
    ) {
      assert.isTrue(Option.isNone(parseTraceparent(bad)), String(bad))
    }
  })

  it.effect("the span of a request with a traceparent in its _meta is a child of it; without, a root", () =>
    Effect.gen(function*() {
      const child = yield* Effect.currentSpan.pipe(
        Effect.withSpan("served"),
        withRemoteParent({ traceparent: `00-${TRACE}-${SPAN}-01` })
      )
      assert.strictEqual(child.traceId, TRACE)
      assert.strictEqual(Option.getOrThrow(child.parent).spanId, SPAN)
      const root = yield* Effect.currentSpan.pipe(Effect.withSpan("served"), withRemoteParent({ traceparent: "nope" }))
      assert.notStrictEqual(root.traceId, TRACE)
      assert.isTrue(Option.isNone(root.parent))
    }))
})
