/**
 * Think blocks: many models (and LM Studio with "separate reasoning" off) write their reasoning inline, as
 * `<think>…</think>` in the answer text. The bridge moves it to `reasoning` everywhere (chat, completions, responses,
 * streams, the agent loop), so `content` is the answer only.
 *
 * Rules: text inside `<think>…</think>` is reasoning; an unterminated `<think>` makes the rest of the text reasoning;
 * whitespace before a think block is dropped, and so is whitespace after one when no answer came before it
 * (`<think>…</think>\n\nAnswer` answers `Answer`, `Hello <think>…</think> world` answers `Hello world`); text
 * without a think block is left exactly as it is. The same splitter serves whole texts and streams: a tag split across chunks is
 * recognised, and feeding a text in any pieces gives the same answer and reasoning as feeding it whole.
 */

const OPEN = "<think>"
const CLOSE = "</think>"

/** How many characters at the end of `text` could be the start of `tag` (to hold back until the next chunk). */
const partialTagAt = (text: string, tag: string): number => {
  for (let n = Math.min(tag.length - 1, text.length); n > 0; n--) {
    if (text.endsWith(tag.slice(0, n))) return n
  }
  return 0
}

export interface ThinkPieces {
  readonly answer: string
  readonly reasoning: string
}

/** A streaming splitter: `push` chunks, then `end`; each call gives the answer and reasoning text it can release. */
export class ThinkSplitter {
  private inThink = false
  /** Text not released yet: a possible partial tag, or whitespace that may touch a think block. */
  private pending = ""
  /** Right after a think block closed (leading answer whitespace may be dropped). */
  private afterBlock = false
  /** Some answer text (not only whitespace) was released. */
  private answered = false
  private sawBlock = false

  /** Whitespace after a block is dropped only while nothing of the answer came yet. */
  private lead(text: string): string {
    return this.afterBlock && !this.answered ? text.trimStart() : text
  }

  private release(text: string): string {
    if (text.trim() !== "") this.answered = true
    return text
  }

  get foundThink(): boolean {
    return this.sawBlock
  }

  push(chunk: string): ThinkPieces {
    let text = this.pending + chunk
    this.pending = ""
    let answer = ""
    let reasoning = ""
    while (text !== "") {
      if (this.inThink) {
        const close = text.indexOf(CLOSE)
        if (close >= 0) {
          reasoning += text.slice(0, close)
          text = text.slice(close + CLOSE.length)
          this.inThink = false
          this.afterBlock = true
          continue
        }
        const hold = partialTagAt(text, CLOSE)
        reasoning += text.slice(0, text.length - hold)
        this.pending = text.slice(text.length - hold)
        break
      }
      const open = text.indexOf(OPEN)
      if (open >= 0) {
        // Whitespace before the block is dropped; anything else before it is answer.
        answer += this.release(this.lead(text.slice(0, open)).trimEnd())
        text = text.slice(open + OPEN.length)
        this.inThink = true
        this.sawBlock = true
        this.afterBlock = false
        continue
      }
      const hold = partialTagAt(text, OPEN)
      const ready = this.lead(text.slice(0, text.length - hold))
      const tail = text.slice(text.length - hold)
      // Trailing whitespace waits: a `<think>` may follow it.
      const body = ready.trimEnd()
      if (body !== "") this.afterBlock = false
      answer += this.release(body)
      this.pending = ready.slice(body.length) + tail
      break
    }
    return { answer, reasoning }
  }

  /** The end of the text: whatever was held back is released (a partial tag is plain text after all). */
  end(): ThinkPieces {
    const rest = this.pending
    this.pending = ""
    if (this.inThink) return { answer: "", reasoning: rest }
    return { answer: this.release(this.lead(rest)), reasoning: "" }
  }
}

/** Splits a whole text into its answer and its reasoning, exactly as a stream of it would be split. */
export const splitThink = (text: string): ThinkPieces => {
  if (!text.includes(OPEN)) return { answer: text, reasoning: "" }
  const splitter = new ThinkSplitter()
  const a = splitter.push(text)
  const b = splitter.end()
  return { answer: a.answer + b.answer, reasoning: a.reasoning + b.reasoning }
}

/** Joins reasoning from several sources (the server's reasoning field, inline think blocks); undefined when empty. */
export const joinReasoning = (...parts: ReadonlyArray<string | undefined>): string | undefined => {
  const kept = parts.map((p) => (p ?? "").trim()).filter((p) => p !== "")
  return kept.length > 0 ? kept.join("\n") : undefined
}
