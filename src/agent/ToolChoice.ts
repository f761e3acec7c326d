/**
 * Which tools a round offers the model (DESIGN §6 "Context budget"). When the definitions of every tool fit their
 * share of the context (AGENT_TOOLS_BUDGET_SHARE), all are offered. Otherwise the round offers, within that share:
 * the bridge's `find_tools` (so no tool is ever out of reach), every tool the model already used or found, then the
 * rest by relevance to the task and the conversation so far — by an embedding model's similarity when one is
 * available (ToolRanking in AgentLoop), else by BM25 over names and descriptions.
 */
import type { ToolDefinition } from "../domain/Messages.js"
import { estimateTokens } from "../domain/Tokens.js"

/** The bridge's own tool: a search over the tools not offered. Its name has no `__`, so no child tool can take it. */
export const FIND_TOOLS = "find_tools"

export const findToolsDefinition: ToolDefinition = {
  name: FIND_TOOLS,
  description: "Search all available tools by what they do, including those not offered yet. Returns the best " +
    "matches with their names and descriptions; the tools found can be called from the next round on.",
  parameters: {
    type: "object",
    properties: {
      query: { type: "string", description: "What the tool should do, in a few words" },
      limit: { type: "integer", minimum: 1, maximum: 20, description: "How many tools to return (default 8)" }
    },
    required: ["query"]
  }
}

/** Estimated tokens of one definition as a template renders it. */
export const definitionTokens = (t: ToolDefinition): number => estimateTokens(JSON.stringify(t)) + 8

/** Lower-case terms of a text: identifiers split at `_`, `-`, `.` and case changes; plural `s` and `ing` off. */
export const terms = (text: string): Array<string> =>
  (text.replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase().match(/[a-z0-9]+/g) ?? [])
    .filter((w) => !STOP.has(w))
    .map((
      w
    ) => (w.length > 5 && w.endsWith("ing") ? w.slice(0, -3) : w.length > 3 && w.endsWith("s") ? w.slice(0, -1) : w))

const STOP = new Set([
  "a",
  "an",
  "and",
  "are",
  "as",
  "at",
  "be",
  "by",
  "for",
  "from",
  "in",
  "is",
  "it",
  "of",
  "on",
  "or",
  "that",
  "the",
  "this",
  "to",
  "with",
  "mcp",
  "server",
  "tool"
])

/** A BM25 index (k1 1.2, b 0.75) over documents: scores of every document for a query, in document order. */
export const bm25 = (docs: ReadonlyArray<string>): (query: string) => ReadonlyArray<number> => {
  const tf = docs.map((d) => {
    const m = new Map<string, number>()
    for (const t of terms(d)) m.set(t, (m.get(t) ?? 0) + 1)
    return m
  })
  const lengths = tf.map((m) => [...m.values()].reduce((a, b) => a + b, 0))
  const avg = lengths.reduce((a, b) => a + b, 0) / Math.max(1, docs.length)
  const df = new Map<string, number>()
  for (const m of tf) for (const t of m.keys()) df.set(t, (df.get(t) ?? 0) + 1)
  const n = docs.length
  const k1 = 1.2
  const b = 0.75
  return (query) => {
    const q = [...new Set(terms(query))]
    return tf.map((m, i) => {
      let score = 0
      for (const t of q) {
        const f = m.get(t)
        if (f === undefined) continue
        const idf = Math.log(1 + (n - df.get(t)! + 0.5) / (df.get(t)! + 0.5))
        score += idf * ((f * (k1 + 1)) / (f + k1 * (1 - b + (b * lengths[i]!) / (avg || 1))))
      }
      return score
    })
  }
}

/** A vector scaled to length 1 (all zeros stays zeros), so that cosine similarity is a dot product. */
export const unit = (v: ReadonlyArray<number>): Float64Array => {
  let n = 0
  for (const x of v) n += x * x
  const out = new Float64Array(v.length)
  const k = n === 0 ? 0 : 1 / Math.sqrt(n)
  for (let i = 0; i < v.length; i++) out[i] = v[i]! * k
  return out
}

/** The dot product of two unit vectors: their cosine similarity (0 when their sizes differ). */
export const similarity = (a: Float64Array, b: Float64Array): number => {
  if (a.length !== b.length) return 0
  let dot = 0
  for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!
  return dot
}

/** Indices of `scores` from the highest score down; ties keep their order. */
export const byScore = (scores: ReadonlyArray<number>): ReadonlyArray<number> =>
  scores.map((s, i) => [s, i] as const).sort((x, y) => y[0] - x[0] || x[1] - y[1]).map(([, i]) => i)

export interface Offer {
  /** Names offered, in the order given to the model. */
  readonly names: ReadonlyArray<string>
  readonly tokens: number
  /** Whether every tool is offered (no choice was needed). */
  readonly all: boolean
}

/**
 * The tools one round offers: all when they fit `limit` tokens; else find_tools, the tools `kept` (used or found)
 * and then the most relevant by `order`, as long as each still fits.
 */
export const chooseTools = (input: {
  readonly names: ReadonlyArray<string>
  readonly tokens: ReadonlyArray<number>
  readonly order: ReadonlyArray<number>
  readonly kept: ReadonlySet<string>
  readonly limit: number
}): Offer => {
  const total = input.tokens.reduce((a, b) => a + b, 0)
  if (total <= input.limit) return { names: input.names, tokens: total, all: true }
  const chosen = new Set<number>()
  let used = definitionTokens(findToolsDefinition)
  const take = (i: number) => {
    if (chosen.has(i) || used + input.tokens[i]! > input.limit) return
    chosen.add(i)
    used += input.tokens[i]!
  }
  input.names.forEach((name, i) => {
    if (input.kept.has(name)) take(i)
  })
  for (const i of input.order) take(i)
  return {
    names: [FIND_TOOLS, ...[...chosen].sort((a, b) => a - b).map((i) => input.names[i]!)],
    tokens: used,
    all: false
  }
}

/** What find_tools answers: the best matches, one a line, new ones marked. */
export const findToolsAnswer = (
  matches: ReadonlyArray<ToolDefinition>,
  offered: ReadonlySet<string>
): string =>
  matches.length === 0
    ? "No tool matches; try other words."
    : `Tools matching the query (call them by name from now on):\n${
      matches.map((t) => `- ${t.name}${offered.has(t.name) ? "" : " (new)"}: ${(t.description ?? "").slice(0, 160)}`)
        .join("\n")
    }`
