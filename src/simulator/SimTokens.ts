/**
 * How the simulator counts a prompt: with a real BPE vocabulary (cl100k, which Llama 3's and Qwen's tokenizers grew
 * from), over what a chat template renders — each message's text and tool calls plus four tokens of template, and
 * the tool definitions as JSON — so the simulator's context errors and `prompt_tokens` are those of a real model,
 * independent of the bridge's own estimate (src/domain/Tokens.ts).
 *
 * The vocabulary (~2 MB) is loaded on the first count; counts of long texts are cached, since an agent resends the
 * same history and tool definitions every round.
 */
import { Effect, Predicate } from "effect"

type Counter = (text: string) => number

let counter: Promise<Counter> | undefined

const load = (): Promise<Counter> => (counter ??= import("gpt-tokenizer/encoding/cl100k_base").then((m) => {
  // Text is data here: `<|endoftext|>` in a prompt is counted as characters, never refused.
  const options = { disallowedSpecial: new Set<string>() }
  return (text: string) => m.countTokens(text, options)
}))

const CACHED_FROM = 256
const CACHE_SIZE = 4096
const cache = new Map<string, number>()

const countWith = (count: Counter, text: string): number => {
  if (text.length < CACHED_FROM) return count(text)
  const hit = cache.get(text)
  if (hit !== undefined) return hit
  const n = count(text)
  if (cache.size >= CACHE_SIZE) cache.clear()
  cache.set(text, n)
  return n
}

/** Template tokens around each message (role header and end marker). */
const PER_MESSAGE = 4

/** The text a template renders of one message or input item: every string in it but its role and type tags. */
const renderedText = (item: unknown): string => {
  if (typeof item === "string") return item
  if (Array.isArray(item)) return item.map(renderedText).join("")
  if (!Predicate.isRecord(item)) return item === null || item === undefined ? "" : String(item)
  return Object.entries(item)
    .filter(([k]) => k !== "role" && k !== "type" && k !== "id" && k !== "call_id" && k !== "tool_call_id")
    .map(([, v]) => renderedText(v))
    .join("")
}

/**
 * The tokens of a prompt: `messages` (chat messages, Responses items or plain strings) and `tools` (definitions,
 * rendered as JSON as templates do).
 */
export const promptTokens = (
  messages: ReadonlyArray<unknown>,
  tools: ReadonlyArray<unknown> | null | undefined
): Effect.Effect<number> =>
  Effect.map(
    Effect.promise(load),
    (count) =>
      messages.reduce<number>((n, m) => n + countWith(count, renderedText(m)) + PER_MESSAGE, 0) +
      (tools === null || tools === undefined || tools.length === 0 ? 0 : countWith(count, JSON.stringify(tools)))
  )
