/**
 * The agent's prompt budget and tool choice (issue 13), property-tested: whatever the mix of history, results and
 * tool definitions, a fitted prompt never counts above the context; the newest result stays whole when it fits; the
 * transcript stays valid; find_tools finds every tool by a word of its description.
 */
import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import {
  answerReserve,
  assistantEntry,
  clip,
  type Entry,
  fit,
  MIN_RESULT_TOKENS,
  PER_MESSAGE,
  resultEntry,
  taskEntry
} from "../../src/agent/Budget.js"
import type { RequestedCall } from "../../src/agent/Loop.js"
import {
  bm25,
  byScore,
  chooseTools,
  definitionTokens,
  FIND_TOOLS,
  findToolsDefinition
} from "../../src/agent/ToolChoice.js"
import { estimateTokens } from "../../src/domain/Tokens.js"

/** Text of many kinds: prose, JSON, numbers, ids, non-ASCII. */
const textArb = (max: number) =>
  fc.oneof(
    fc.string({ maxLength: max }),
    fc.array(fc.constantFrom("the ", "quick ", "fox ", "42, ", "{\"a\": 1} ", "ä ", "数据 ", "\n", "id_7f3a9 "), {
      maxLength: Math.ceil(max / 4)
    }).map((parts) => parts.join(""))
  )

/** A transcript: a task, then rounds of an assistant turn with calls and one result per call. */
const transcriptArb = fc.record({
  task: textArb(400),
  rounds: fc.array(
    fc.record({
      text: textArb(200),
      results: fc.array(fc.oneof(textArb(300), textArb(20_000)), { minLength: 1, maxLength: 3 })
    }),
    { maxLength: 6 }
  )
}).map(({ rounds, task }) => {
  const entries: Array<Entry> = [taskEntry(task)]
  rounds.forEach((r, i) => {
    const calls: Array<RequestedCall> = r.results.map((_, k) => ({
      id: `call_${i}_${k}`,
      name: `srv__tool${k}`,
      arguments: "{}"
    }))
    entries.push(assistantEntry(i + 1, r.text, calls))
    r.results.forEach((text, k) => entries.push(resultEntry(i + 1, calls[k]!, text)))
  })
  return entries
})

/** The tokens of entries counted afresh from their texts (not trusting their cached counts). */
const recount = (entries: ReadonlyArray<Entry>): number =>
  entries.reduce((n, e) => {
    switch (e._tag) {
      case "Assistant":
        return n + assistantEntry(e.round, e.text, e.calls).tokens
      default:
        return n + estimateTokens(e.text) + PER_MESSAGE
    }
  }, 0)

describe("the prompt budget", () => {
  it.prop(
    "a fitted prompt never counts above the context, for any mix of history, results and tool definitions",
    {
      entries: transcriptArb,
      context: fc.integer({ min: 1024, max: 32_768 }),
      fixed: fc.integer({ min: 0, max: 4000 }),
      scale: fc.double({ min: 1, max: 2, noNaN: true }),
      maxTokens: fc.option(fc.integer({ min: 1, max: 8000 }), { nil: undefined })
    },
    ({ context, entries, fixed, maxTokens, scale }) => {
      const reserve = answerReserve(context, maxTokens)
      const out = fit({ context, reserve, fixed, entries, scale })
      if ("_tag" in out) {
        // Only when the task alone (with the system prompt and tools) cannot fit.
        assert.isAbove(Math.ceil((fixed + entries[0]!.tokens) * scale), context - reserve)
        return
      }
      assert.isAtMost((fixed + recount(out.entries)) * scale, context - reserve)
      // Valid transcript: the task first, each result after the call that asked for it.
      assert.strictEqual(out.entries[0]!._tag, "Task")
      const asked = new Set<string>()
      for (const e of out.entries) {
        if (e._tag === "Assistant") { for (const c of e.calls) asked.add(c.id) }
        if (e._tag === "Result") assert.isTrue(asked.has(e.call.id), `result of ${e.call.id} without its call`)
      }
      // A round is kept or left out whole.
      for (const e of out.entries) {
        if (e._tag === "Assistant") {
          for (const c of e.calls) {
            assert.isTrue(out.entries.some((r) => r._tag === "Result" && r.call.id === c.id))
          }
        }
      }
    }
  )

  it.prop(
    "the newest result stays whole when it fits, older ones being cut first",
    {
      older: fc.array(fc.integer({ min: 2000, max: 60_000 }), { minLength: 1, maxLength: 5 }),
      newest: fc.integer({ min: 1, max: 3000 })
    },
    ({ newest, older }) => {
      const entries: Array<Entry> = [taskEntry("Find the value.")]
      older.forEach((chars, i) => {
        const call = { id: `c${i}`, name: "fs__read", arguments: `{"i":${i}}` }
        entries.push(assistantEntry(i + 1, "", [call]))
        entries.push(resultEntry(i + 1, call, `older ${i} `.repeat(Math.ceil(chars / 8))))
      })
      const last = { id: "last", name: "fs__read", arguments: "{}" }
      const newestText = "newest evidence ".repeat(Math.ceil(newest / 16))
      entries.push(assistantEntry(older.length + 1, "", [last]))
      entries.push(resultEntry(older.length + 1, last, newestText))
      const out = fit({ context: 8192, reserve: 1024, fixed: 500, entries, scale: 1.15 })
      assert.notProperty(out, "_tag")
      if ("_tag" in out) return
      const kept = out.entries.find((e) => e._tag === "Result" && e.call.id === "last")
      assert.strictEqual(kept?._tag === "Result" ? kept.text : undefined, newestText)
      if (!out.unchanged) assert.isAbove(out.compacted, 0)
      assert.strictEqual(out.dropped, 0)
    }
  )

  it("a result repeated later collapses to a pointer; a prompt that fits is sent unchanged", () => {
    const big = "same listing line\n".repeat(2000)
    const calls = [0, 1].map((i) => ({ id: `c${i}`, name: "fs__list", arguments: "{}" }))
    const entries: Array<Entry> = [
      taskEntry("List it twice."),
      assistantEntry(1, "", [calls[0]!]),
      resultEntry(1, calls[0]!, big),
      assistantEntry(2, "", [calls[1]!]),
      resultEntry(2, calls[1]!, big)
    ]
    const out = fit({ context: 16_384, reserve: 1024, fixed: 300, entries, scale: 1.15 })
    assert.notProperty(out, "_tag")
    if ("_tag" in out) return
    const first = out.entries[2]!
    assert.include(first._tag === "Result" ? first.text : "", "the same result as fs__list gave again in round 2")
    assert.strictEqual(out.entries[4]!._tag === "Result" ? (out.entries[4] as { text: string }).text : "", big)
    const small = fit({ context: 16_384, reserve: 1024, fixed: 300, entries: entries.slice(0, 3), scale: 1.15 })
    assert.isTrue(!("_tag" in small) && small.unchanged)
  })

  it("rounds that cannot all fit are left out oldest first, the task saying what they called", () => {
    const entries: Array<Entry> = [taskEntry("Keep going.")]
    for (let i = 1; i <= 40; i++) {
      const call = { id: `c${i}`, name: `srv__step${i}`, arguments: JSON.stringify({ note: "x".repeat(300) }) }
      entries.push(assistantEntry(i, `Round ${i} thinking `.repeat(20), [call]))
      entries.push(resultEntry(i, call, `result ${i} `.repeat(200)))
    }
    const out = fit({ context: 4096, reserve: 1024, fixed: 900, entries, scale: 1.15 })
    assert.notProperty(out, "_tag")
    if ("_tag" in out) return
    assert.isAbove(out.dropped, 0)
    assert.include(out.entries[0]!.text, "left out the")
    assert.include(out.entries[0]!.text, "srv__step1")
    assert.strictEqual(out.entries[out.entries.length - 1]!._tag, "Result")
  })

  it("a task that cannot fit is an overflow with the numbers", () => {
    const out = fit({
      context: 4096,
      reserve: 1024,
      fixed: 200,
      entries: [taskEntry("word ".repeat(5000))],
      scale: 1.15
    })
    assert.property(out, "_tag")
    if (!("_tag" in out)) return
    assert.isAbove(out.needed, 4096)
    assert.strictEqual(out.available, 4096)
  })

  it.prop("clip keeps a head and a tail within the tokens asked, saying what was cut", {
    text: textArb(30_000),
    max: fc.integer({ min: MIN_RESULT_TOKENS, max: 4000 })
  }, ({ max, text }) => {
    const out = clip(text, max)
    if (estimateTokens(text) <= max) return assert.strictEqual(out, text)
    assert.isAtMost(estimateTokens(out), max)
    assert.include(out, "characters cut by the bridge")
    const head = out.slice(0, out.indexOf("\n[… "))
    assert.isTrue(text.startsWith(head))
  })
})

describe("the tool choice", () => {
  // Words that are their own terms (no stop word, no plural or -ing ending to strip).
  const wordArb = fc.stringMatching(/^[bcdfgjkmpqvxz][aeiou][bcdfgjkmpqvxz][aeiou][bcdfgjkmpqvxz]$/)

  it.prop("find_tools finds every tool by a word of its description", {
    tools: fc.uniqueArray(fc.tuple(wordArb, fc.array(wordArb, { maxLength: 6 })), {
      minLength: 1,
      maxLength: 150,
      selector: ([w]) => w
    })
  }, ({ tools }) => {
    // Each tool has a word of its own (first) among words other tools may share.
    const shared = new Set(tools.flatMap(([, rest]) => rest))
    const own = tools.filter(([w]) => !shared.has(w))
    const search = bm25(tools.map(([w, rest], i) => `srv__tool${i}: ${[w, ...rest].join(" ")}`))
    for (const [w] of own) {
      const i = tools.findIndex(([x]) => x === w)
      const top = byScore(search(w)).slice(0, 8)
      assert.strictEqual(top[0], i, `${w} found first`)
    }
  })

  it.prop("the tools chosen fit their share, with find_tools and every tool kept", {
    tokens: fc.array(fc.integer({ min: 20, max: 600 }), { minLength: 1, maxLength: 200 }),
    limit: fc.integer({ min: 0, max: 3000 }),
    keptEvery: fc.integer({ min: 5, max: 50 })
  }, ({ keptEvery, limit, tokens }) => {
    const names = tokens.map((_, i) => `s__t${i}`)
    const kept = new Set(names.filter((_, i) => i % keptEvery === 0 && i < keptEvery * 2))
    const order = names.map((_, i) => names.length - 1 - i)
    const offer = chooseTools({ names, tokens, order, kept, limit })
    const total = tokens.reduce((a, b) => a + b, 0)
    if (total <= limit) {
      assert.isTrue(offer.all)
      return assert.strictEqual(offer.names.length, names.length)
    }
    assert.strictEqual(offer.names[0], FIND_TOOLS)
    const sum = definitionTokens(findToolsDefinition) +
      offer.names.slice(1).reduce((n, name) => n + tokens[names.indexOf(name)]!, 0)
    assert.strictEqual(offer.tokens, sum)
    // Within the share, unless find_tools and the kept tools alone are above it (they are never left out for it).
    const floor = definitionTokens(findToolsDefinition)
    if (floor <= limit) assert.isAtMost(offer.tokens, Math.max(limit, floor))
    // Kept tools come first: each that still fits after those before it is offered.
    let used = floor
    for (const k of names.filter((n) => kept.has(n))) {
      const t = tokens[names.indexOf(k)]!
      if (used + t <= limit) {
        assert.include(offer.names, k)
        used += t
      }
    }
  })
})
