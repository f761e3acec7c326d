/**
 * Scripted models. A scenario (JSON) lists rules; the first rule whose `match` fits the conversation decides the
 * reply: text, native tool calls, text-formatted tool calls, reasoning, think blocks. Without a matching rule the
 * model answers deterministically from the last user message, so tests and demos are reproducible.
 *
 * Example:
 * {"rules":[
 *   {"match":{"userContains":"weather","afterToolResult":false},
 *    "reply":{"toolCalls":[{"name":"get_weather","arguments":{"city":"Paris"}}]}},
 *   {"match":{"afterToolResult":true},"reply":{"content":"It is sunny.","reasoning":"The tool said so."}}]}
 */
import { Schema } from "effect"

export const ToolCallSpec = Schema.Struct({
  name: Schema.String,
  arguments: Schema.optionalWith(Schema.Unknown, { default: () => ({}) })
})
export type ToolCallSpec = typeof ToolCallSpec.Type

export const TextToolCallFormat = Schema.Literal("tool_call", "tool_request", "bare", "tools")

export const Reply = Schema.Struct({
  content: Schema.optional(Schema.String),
  /** Goes to the model's reasoning field (`reasoning_content` or `reasoning`, per model). */
  reasoning: Schema.optional(Schema.String),
  /** Wrapped as `<think>…</think>` at the start of the content (models without a reasoning parser). */
  think: Schema.optional(Schema.String),
  /** Native tool calls (`tool_calls` / `function_call` items). */
  toolCalls: Schema.optional(Schema.Array(ToolCallSpec)),
  /** A tool call written as text in the content, as models without native tool use do (protocol §9.6). */
  textToolCall: Schema.optional(Schema.Struct({ format: TextToolCallFormat, call: ToolCallSpec })),
  /** Arguments are streamed in pieces of this many characters; 0 sends them whole (protocol §2.2). */
  argsChunkSize: Schema.optional(Schema.Number),
  finishReason: Schema.optional(Schema.Literal("stop", "length", "tool_calls"))
})
export type Reply = typeof Reply.Type

export const Match = Schema.Struct({
  /** Substring of the model key or identifier. */
  model: Schema.optional(Schema.String),
  /** Substring of the last user message (case-insensitive). */
  userContains: Schema.optional(Schema.String),
  /** Regular expression tested on the last user message. */
  userMatches: Schema.optional(Schema.String),
  /** Whether the conversation ends with a tool result. */
  afterToolResult: Schema.optional(Schema.Boolean),
  /** Substring of the last tool result. */
  toolResultContains: Schema.optional(Schema.String),
  /** Number of assistant turns so far (0 on the first request). */
  round: Schema.optional(Schema.Number),
  /** Whether the request offered tools. */
  hasTools: Schema.optional(Schema.Boolean)
})

export const Rule = Schema.Struct({
  match: Schema.optionalWith(Match, { default: () => ({}) }),
  reply: Reply
})

export const Scenario = Schema.Struct({
  rules: Schema.Array(Rule)
})
export type Scenario = typeof Scenario.Type

export const ScenarioJson = Schema.parseJson(Scenario)

/** The conversation, normalised from chat messages, prompts or Responses input items. */
export interface Turn {
  readonly role: "system" | "user" | "assistant" | "tool"
  readonly text: string
}

export interface Conversation {
  readonly turns: ReadonlyArray<Turn>
  readonly hasTools: boolean
}

const lastOf = (c: Conversation, role: Turn["role"]): string | undefined => {
  for (let i = c.turns.length - 1; i >= 0; i--) {
    const t = c.turns[i]!
    if (t.role === role) return t.text
  }
  return undefined
}

const matches = (m: typeof Match.Type, c: Conversation, model: string): boolean => {
  const user = lastOf(c, "user") ?? ""
  const last = c.turns[c.turns.length - 1]
  const rounds = c.turns.filter((t) => t.role === "assistant").length
  if (m.model !== undefined && !model.toLowerCase().includes(m.model.toLowerCase())) return false
  if (m.userContains !== undefined && !user.toLowerCase().includes(m.userContains.toLowerCase())) return false
  if (m.userMatches !== undefined && !new RegExp(m.userMatches, "i").test(user)) return false
  if (m.afterToolResult !== undefined && (last?.role === "tool") !== m.afterToolResult) return false
  if (m.toolResultContains !== undefined && !(lastOf(c, "tool") ?? "").includes(m.toolResultContains)) return false
  if (m.round !== undefined && rounds !== m.round) return false
  if (m.hasTools !== undefined && c.hasTools !== m.hasTools) return false
  return true
}

/** What the default model says when no rule matches: deterministic and derived from the conversation. */
const defaultReply = (c: Conversation, model: string): Reply => {
  const user = lastOf(c, "user")
  const tool = c.turns[c.turns.length - 1]?.role === "tool" ? lastOf(c, "tool") : undefined
  if (tool !== undefined) return { content: `The tool returned: ${tool}` }
  if (user === undefined) return { content: `Hello from ${model}.` }
  return { content: `You said: ${user.trim()}` }
}

export const reply = (scenario: Scenario, c: Conversation, model: string): Reply =>
  scenario.rules.find((r) => matches(r.match, c, model))?.reply ?? defaultReply(c, model)

/** Renders a tool call as text in one of the formats models use without native tool calling. */
const renderTextToolCall = (format: typeof TextToolCallFormat.Type, call: ToolCallSpec): string => {
  const json = JSON.stringify({ name: call.name, arguments: call.arguments })
  switch (format) {
    case "tool_call":
      return `<tool_call>${json}</tool_call>`
    case "tool_request":
      return `[TOOL_REQUEST]${json}[END_TOOL_REQUEST]`
    case "tools":
      return `<tools>${json}</tools>`
    case "bare":
      return json
  }
}

/** The visible text of a reply: think block, content, text tool call. */
export const replyText = (r: Reply): string => {
  const parts: Array<string> = []
  if (r.think !== undefined) parts.push(`<think>${r.think}</think>\n`)
  if (r.content !== undefined) parts.push(r.content)
  if (r.textToolCall !== undefined) parts.push(renderTextToolCall(r.textToolCall.format, r.textToolCall.call))
  return parts.join("")
}

/** Splits text into tokens the way the simulator streams and counts them: each word with its leading space. */
export const tokenize = (text: string): Array<string> => text.match(/\s*\S+|\s+$/g) ?? []

export const countTokens = (text: string): number => tokenize(text).length

const fnv = (text: string, seed = 2166136261): number => {
  let h = seed
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619)
  return h >>> 0
}

/** Lower-case words of a text, identifiers split at `_`, `-` and case changes; endings `s`, `es`, `ing`, `ed` off. */
const wordsOf = (text: string): Array<string> =>
  (text.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase().match(/[a-z0-9]+/g) ?? [])
    .map((w) => (w.length > 5 ? w.replace(/(ing|ed|es|s)$/, "") : w.length > 3 ? w.replace(/s$/, "") : w))

/**
 * A deterministic unit vector for a text, with a semantic model's main property: texts sharing words point the
 * same way (each word adds a signed hashed direction, as feature hashing does), so similarity search over the
 * simulator ranks like a real embedding model would on lexical overlap. The same text always embeds the same.
 */
export const embed = (text: string, dimensions: number): Array<number> => {
  const v: Array<number> = new Array<number>(dimensions).fill(0)
  // A faint direction of the whole text, so that texts with no words in common still differ.
  let h = fnv(text)
  for (let i = 0; i < dimensions; i++) {
    h = Math.imul(h ^ (h >>> 15), 2246822507) ^ Math.imul(h ^ (h >>> 13), 3266489909)
    v[i] = (((h >>> 0) / 4294967296) * 2 - 1) * 0.05
  }
  for (const w of wordsOf(text)) {
    const a = fnv(w)
    for (let k = 0; k < 4; k++) {
      const b = fnv(w, a + k)
      v[b % dimensions]! += b & 1 ? 1 : -1
    }
  }
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1
  return v.map((x) => Math.round((x / norm) * 1e6) / 1e6)
}
