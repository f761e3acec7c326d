/**
 * The prompt budget of an agent run (DESIGN §6 "Context budget"): before every round, system + task + tool
 * definitions + history + the room kept for the answer must fit the context of the instance that serves the round.
 * When they do not, what matters least gives way first:
 *
 * 1. a tool result repeated later word for word collapses to a pointer to the later one;
 * 2. older results (rounds before the newest) are cut to a head and a tail with a note of what was cut, all to the
 *    same ceiling, the largest losing most (water-filling), never below a small floor;
 * 3. then the newest results the same way;
 * 4. then the oldest rounds are left out whole (a call and its results together, so the transcript stays valid),
 *    the task saying which tools they called.
 *
 * The task and system prompt are never cut: when they alone (with the tools offered) cannot fit, the answer is an
 * overflow with the numbers, and nothing is sent. Counts are the bridge's estimate (domain/Tokens.ts) times `scale`,
 * a safety factor that starts above the estimator's measured worst under-count and grows when LM Studio's own count
 * turns out higher.
 */
import { estimateTokens } from "../domain/Tokens.js"
import type { RequestedCall } from "./Loop.js"

/** One piece of the transcript after the system prompt, with its estimated tokens (template overhead included). */
export type Entry =
  | { readonly _tag: "Task"; readonly text: string; readonly tokens: number }
  | {
    readonly _tag: "Assistant"
    readonly round: number
    readonly text: string
    readonly calls: ReadonlyArray<RequestedCall>
    readonly tokens: number
  }
  | {
    readonly _tag: "Result"
    readonly round: number
    readonly call: RequestedCall
    readonly text: string
    readonly tokens: number
  }
  | { readonly _tag: "Note"; readonly text: string; readonly tokens: number }

/** Template tokens around one message (role header, end marker) and around one tool call. */
export const PER_MESSAGE = 6
const PER_CALL = 8

export const taskEntry = (text: string): Entry => ({ _tag: "Task", text, tokens: estimateTokens(text) + PER_MESSAGE })

export const noteEntry = (text: string): Entry => ({ _tag: "Note", text, tokens: estimateTokens(text) + PER_MESSAGE })

export const assistantEntry = (round: number, text: string, calls: ReadonlyArray<RequestedCall>): Entry => ({
  _tag: "Assistant",
  round,
  text,
  calls,
  tokens: estimateTokens(text) + PER_MESSAGE +
    calls.reduce((n, c) => n + estimateTokens(c.name) + estimateTokens(c.arguments) + PER_CALL, 0)
})

export const resultEntry = (round: number, call: RequestedCall, text: string): Entry => ({
  _tag: "Result",
  round,
  call,
  text,
  tokens: estimateTokens(text) + PER_MESSAGE
})

/** What a fitted prompt is: the entries to send and what was done to them. */
export interface Fitted {
  readonly entries: ReadonlyArray<Entry>
  /** Estimated tokens of the whole prompt (system, tools, entries), before `scale`. */
  readonly tokens: number
  /** Results shortened or collapsed in this fit. */
  readonly compacted: number
  /** Rounds left out whole. */
  readonly dropped: number
  /** Whether the entries are the ones given, unchanged. */
  readonly unchanged: boolean
}

export interface Overflow {
  readonly _tag: "Overflow"
  /** Tokens the task needs at least (system, task, tools offered, the answer's room), scaled. */
  readonly needed: number
  readonly available: number
}

export interface BudgetInput {
  /** The context of the instance, in tokens. */
  readonly context: number
  /** Tokens kept for the answer. */
  readonly reserve: number
  /** Estimated tokens of the system prompt and of the tool definitions offered. */
  readonly fixed: number
  readonly entries: ReadonlyArray<Entry>
  /** Safety factor on every estimate (>= 1). */
  readonly scale: number
}

/** The least a result is cut to: enough for a head, a tail and the note. */
export const MIN_RESULT_TOKENS = 96

/** The estimator's measured worst under-count (test/domain/Tokens.test.ts), and a little for template variance. */
export const INITIAL_SCALE = 1.15

/** The room for the answer: what the caller asked for, else a quarter of the context up to 1,024 tokens. */
export const answerReserve = (context: number, maxTokens: number | undefined): number =>
  Math.min(maxTokens ?? Math.min(1024, Math.floor(context / 4)), Math.floor(context / 2))

const sum = (entries: ReadonlyArray<Entry>) => entries.reduce((n, e) => n + e.tokens, 0)

/**
 * `text` cut to about `maxTokens` estimated tokens: two thirds from the head, one third from the tail, with a note of
 * how much was cut in between. Text that fits is returned as it is.
 */
export const clip = (text: string, maxTokens: number): string => {
  const total = estimateTokens(text)
  if (total <= maxTokens) return text
  const note = (cut: number) =>
    `\n[… ${cut.toLocaleString("en-US")} characters cut by the bridge to fit the model's context …]\n`
  const noteTokens = estimateTokens(note(text.length))
  const perChar = total / Math.max(1, text.length)
  let keep = Math.max(0, Math.floor((maxTokens - noteTokens) / perChar))
  for (let attempt = 0; attempt < 8; attempt++) {
    const head = Math.ceil((keep * 2) / 3)
    const tail = keep - head
    const out = text.slice(0, head) + note(text.length - keep) + (tail > 0 ? text.slice(text.length - tail) : "")
    if (estimateTokens(out) <= maxTokens || keep === 0) return out
    keep = Math.floor(keep * 0.85)
  }
  return note(text.length)
}

const withText = (e: Entry & { readonly _tag: "Result" }, text: string): Entry => resultEntry(e.round, e.call, text)

/** Results repeated later word for word, as pointers to the later one. */
const collapseRepeats = (entries: ReadonlyArray<Entry>): [ReadonlyArray<Entry>, number] => {
  const later = new Map<string, Entry & { readonly _tag: "Result" }>()
  let collapsed = 0
  const out: Array<Entry> = new Array<Entry>(entries.length)
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!
    if (e._tag !== "Result") {
      out[i] = e
      continue
    }
    const newer = later.get(e.text)
    if (newer !== undefined && e.tokens > MIN_RESULT_TOKENS / 2) {
      out[i] = withText(e, `[the same result as ${newer.call.name} gave again in round ${newer.round}, below]`)
      collapsed++
    } else {
      out[i] = e
      later.set(e.text, e)
    }
  }
  return [out, collapsed]
}

/** The largest ceiling T (>= MIN_RESULT_TOKENS) for the chosen results such that everything fits `room`, if any. */
const ceilingFor = (
  entries: ReadonlyArray<Entry>,
  chosen: (e: Entry) => boolean,
  room: number,
  scale: number
): number | undefined => {
  const cost = (t: number) =>
    entries.reduce((n, e) => n + (e._tag === "Result" && chosen(e) ? Math.min(e.tokens, t) : e.tokens), 0) * scale
  if (cost(MIN_RESULT_TOKENS) > room) return undefined
  let lo = MIN_RESULT_TOKENS
  let hi = Math.max(lo, ...entries.map((e) => (e._tag === "Result" && chosen(e) ? e.tokens : 0)))
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    if (cost(mid) <= room) lo = mid
    else hi = mid - 1
  }
  return lo
}

/** The chosen results cut to `ceiling` (their note and template included). */
const capAt = (
  entries: ReadonlyArray<Entry>,
  chosen: (e: Entry) => boolean,
  ceiling: number
): [ReadonlyArray<Entry>, number] => {
  let cut = 0
  const out = entries.map((e) => {
    if (e._tag !== "Result" || !chosen(e) || e.tokens <= ceiling) return e
    cut++
    return withText(e, clip(e.text, ceiling - PER_MESSAGE))
  })
  return [out, cut]
}

/** Fits the entries to the context, or says by how much the task alone is over. */
export const fit = (input: BudgetInput): Fitted | Overflow => {
  const { context, entries, fixed, reserve, scale } = input
  const room = context - reserve
  const task = entries.filter((e) => e._tag === "Task")
  const floor = Math.ceil((fixed + sum(task)) * scale)
  if (floor > room) return { _tag: "Overflow", needed: floor + reserve, available: context }
  const total = (es: ReadonlyArray<Entry>) => fixed + sum(es)
  const fits = (es: ReadonlyArray<Entry>) => total(es) * scale <= room
  if (fits(entries)) {
    return { entries, tokens: total(entries), compacted: 0, dropped: 0, unchanged: true }
  }
  const done = (es: ReadonlyArray<Entry>, compacted: number, dropped: number): Fitted => ({
    entries: es,
    tokens: total(es),
    compacted,
    dropped,
    unchanged: false
  })
  const roomForEntries = room - fixed * scale

  // 1. Repeats collapse.
  const [collapsed, repeats] = collapseRepeats(entries)
  if (fits(collapsed)) return done(collapsed, repeats, 0)

  // 2. Older results share a ceiling; 3. then the newest too.
  const newest = Math.max(0, ...collapsed.map((e) => (e._tag === "Result" ? e.round : 0)))
  const older = (e: Entry) => e._tag === "Result" && e.round < newest
  const olderCeiling = ceilingFor(collapsed, older, roomForEntries, scale)
  if (olderCeiling !== undefined) {
    const [out, cut] = capAt(collapsed, older, olderCeiling)
    if (fits(out)) return done(out, repeats + cut, 0)
  }
  const [floored, flooredCut] = capAt(collapsed, older, MIN_RESULT_TOKENS)
  const anyResult = (e: Entry) => e._tag === "Result"
  const allCeiling = ceilingFor(floored, anyResult, roomForEntries, scale)
  if (allCeiling !== undefined) {
    const [out, cut] = capAt(floored, anyResult, allCeiling)
    if (fits(out)) return done(out, repeats + flooredCut + cut, 0)
  }

  // 4. The oldest rounds go, whole; the task says what they called.
  let [rest, cut] = capAt(floored, anyResult, MIN_RESULT_TOKENS)
  const leftOut: Array<string> = []
  let dropped = 0
  const rounds = [...new Set(rest.flatMap((e) => (e._tag === "Assistant" ? [e.round] : [])))].sort((a, b) => a - b)
  for (const round of rounds) {
    const withNote = (es: ReadonlyArray<Entry>) => withOmitted(es, leftOut, dropped)
    if (fits(withNote(rest))) break
    for (const e of rest) if (e._tag === "Assistant" && e.round === round) leftOut.push(...e.calls.map((c) => c.name))
    rest = rest.filter((e) => !((e._tag === "Assistant" || e._tag === "Result") && e.round === round))
    dropped++
  }
  cut += repeats + flooredCut
  const final = withOmitted(rest, leftOut, dropped)
  if (fits(final)) return done(final, cut, dropped)
  // Only the task and the notes are left and they do not fit with the note of what was left out: send without it.
  return done(rest, cut, dropped)
}

/** The task entry extended with a note of the rounds left out (the transcript keeps alternating roles). */
const withOmitted = (entries: ReadonlyArray<Entry>, calls: ReadonlyArray<string>, rounds: number) =>
  rounds === 0 ? entries : entries.map((e) =>
    e._tag === "Task"
      ? taskEntry(
        `${e.text}\n\n[The bridge left out the ${rounds} earliest round(s) of tool calls to fit the model's context; ` +
          `they called: ${[...new Set(calls)].join(", ") || "no tools"}.]`
      )
      : e
  )
