/**
 * Think blocks (domain/Think.ts): inline `<think>…</think>` moves to reasoning, also unterminated, whatever the chunk
 * boundaries of a stream; a text without a think block is untouched.
 */
import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { joinReasoning, splitThink, ThinkSplitter } from "../../src/domain/Think.js"

/** Feeds `text` cut at `cuts` and returns what the splitter released in all. */
const streamed = (text: string, cuts: ReadonlyArray<number>) => {
  const splitter = new ThinkSplitter()
  const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b)
  let answer = ""
  let reasoning = ""
  let from = 0
  for (const to of [...at, text.length]) {
    const p = splitter.push(text.slice(from, to))
    answer += p.answer
    reasoning += p.reasoning
    from = to
  }
  const end = splitter.end()
  return { answer: answer + end.answer, reasoning: reasoning + end.reasoning }
}

describe("think blocks", () => {
  it("closed, unterminated, leading, in the middle, several", () => {
    assert.deepStrictEqual(splitThink("<think>plan it</think>\n\nThe answer."), {
      answer: "The answer.",
      reasoning: "plan it"
    })
    assert.deepStrictEqual(splitThink("<think>still thinking when the tokens ran out"), {
      answer: "",
      reasoning: "still thinking when the tokens ran out"
    })
    assert.deepStrictEqual(splitThink("Done.\n<think>unfinished"), { answer: "Done.", reasoning: "unfinished" })
    assert.deepStrictEqual(splitThink("Hello <think>aside</think> world"), {
      answer: "Hello world",
      reasoning: "aside"
    })
    assert.deepStrictEqual(splitThink("<think>a</think>A <think>b</think> B"), { answer: "A B", reasoning: "ab" })
    assert.strictEqual(
      joinReasoning("from the server", splitThink("<think> inline </think>x").reasoning),
      "from the server\ninline"
    )
    assert.strictEqual(joinReasoning("", "  "), undefined)
  })

  it("a text without a think block is left exactly as it is (also streamed)", () => {
    for (const text of ["  indented\n", "a < b and <thin ice>", "ends with <thi", "<", ""]) {
      assert.deepStrictEqual(splitThink(text), { answer: text, reasoning: "" })
      assert.deepStrictEqual(streamed(text, [1, 3, 5]), { answer: text, reasoning: "" })
    }
  })

  it.prop(
    "a stream cut anywhere (also inside a tag) splits as the whole text does",
    {
      parts: fc.array(
        fc.oneof(fc.constantFrom("<think>", "</think>", " ", "\n", "<", "think", ">"), fc.string({ maxLength: 8 })),
        { maxLength: 20 }
      ),
      cuts: fc.array(fc.nat(), { maxLength: 12 })
    },
    ({ parts, cuts }) => {
      const text = parts.join("")
      const whole = splitThink(text)
      assert.deepStrictEqual(streamed(text, cuts), whole)
      // Nothing is invented or doubled: every character of answer and reasoning comes from the text.
      const counts = new Map<string, number>()
      for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1)
      for (const ch of whole.answer + whole.reasoning) {
        const left = (counts.get(ch) ?? 0) - 1
        assert.isAtLeast(left, 0, `character ${JSON.stringify(ch)} appears more often than in the text`)
        counts.set(ch, left)
      }
    }
  )
})
