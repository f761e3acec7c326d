/**
 * A token estimate that is never far below what the tokenizers of common local model families count (measured
 * against cl100k and o200k BPE on prompts, docs, tool schemas and JSON results: test/domain/Tokens.test.ts), in one
 * pass over the characters, without a vocabulary.
 *
 * Counted: a run of letters as one token per four letters (rounded up), digits in groups of three, a run mixing
 * letters and digits (ids, hashes) as two tokens per three characters, every other
 * printable ASCII character (punctuation, brackets, quotes) as one token, a line break or a run of spaces beyond the
 * one that joins the next word as one, and every other character (accents, CJK, emoji) as one.
 */

const isLetter = (c: number) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90)
const isDigit = (c: number) => c >= 48 && c <= 57
const isAlnum = (c: number) => isLetter(c) || isDigit(c)

export const estimateTokens = (text: string): number => {
  let tokens = 0
  let i = 0
  const n = text.length
  while (i < n) {
    const c = text.charCodeAt(i)
    if (isAlnum(c)) {
      let j = i
      let letters = 0
      let digits = 0
      while (j < n) {
        const d = text.charCodeAt(j)
        if (isLetter(d)) letters++
        else if (isDigit(d)) digits++
        else break
        j++
      }
      // Words: four letters a token; numbers: three digits a token; ids mixing both split about every one and a half.
      tokens += digits === 0
        ? Math.ceil(letters / 4)
        : letters === 0
        ? Math.ceil(digits / 3)
        : Math.ceil(((letters + digits) * 2) / 3)
      i = j
    } else if (c === 32) {
      let j = i + 1
      while (j < n && text.charCodeAt(j) === 32) j++
      // One space joins the next word; a longer run (indentation) is a token of its own.
      if (j - i > 1) tokens += 1
      i = j
    } else {
      // A line break, a tab, punctuation, or any character outside ASCII.
      tokens += 1
      i++
    }
  }
  return tokens
}

/**
 * A count the tokenizers never go below: the estimate is at most twice theirs on the measured corpus, so half of it
 * is a floor. A request is refused before sending only when even this floor does not fit (no false refusals).
 */
export const leastTokens = (text: string): number => Math.floor(estimateTokens(text) / 2)
