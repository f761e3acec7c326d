/**
 * The tool policy of an autonomous run (DESIGN §6 "Tool policy"): which child tools the local model may use, which
 * need the user's approval, and which it never sees. Pure: the AgentLoop decides once per tool when a run starts.
 *
 * Three sources, in this order of precedence:
 * 1. the call: `allowed_tools`, `denied_tools`, `allow_writes`;
 * 2. the server's mcp.json entry: allow and deny lists under the spellings the common hosts use (`ENTRY_KEYS`),
 *    `trust: true` (every tool of the server runs);
 * 3. the bridge's `AGENT_TOOL_POLICY`: `allow:<glob>`, `deny:<glob>` and `writes:ask|allow|deny`.
 *
 * Lists decide first: the first source whose list names a tool decides it (a deny beats an allow of the same
 * source). Then the flags, in the same order: `allow_writes`, `trust`, `writes:`. Then the default: a tool its server
 * annotates `readOnlyHint: true` runs; any other tool (destructive, or not annotated) needs approval.
 *
 * Patterns match a tool as `server__tool` or as `tool`, with `*` for any run of characters; an entry's lists name its
 * own server's tools, so `write_file` and `fs__write_file` mean the same there.
 */
import type { Effect } from "effect"
import { NO_RULES, type PolicyRules } from "../domain/ToolRules.js"

export { NO_RULES, parsePolicy, type PolicyRules } from "../domain/ToolRules.js"

/** The three sources of a run's policy; `entries` by server name. */
export interface RunPolicy {
  readonly call: PolicyRules
  readonly entries: ReadonlyMap<string, PolicyRules>
  readonly config: PolicyRules
}

/** What the policy says about one tool, and the rule that said it (for the report and the model). */
export type Decision =
  | { readonly _tag: "Run"; readonly by: string; readonly via: "read_only" | "policy" }
  | { readonly _tag: "Ask"; readonly by: string }
  | { readonly _tag: "Deny"; readonly by: string }

/** The tool as the policy sees it: its server, its own name, the name the model sees, and its read-only hint. */
export interface PolicyTool {
  readonly server: string
  readonly tool: string
  readonly offeredAs: string
  readonly readOnly: boolean
}

/**
 * The mcp.json keys read as a server's policy, by meaning, with the hosts that spell them so:
 * allow = runs without asking; deny = never offered; only = nothing else offered; trust = every tool runs.
 */
export const ENTRY_KEYS = {
  allow: [
    ["allowedTools", "Claude Code, this bridge"],
    ["alwaysAllow", "Cline, Roo Code"],
    ["autoApprove", "Cline"],
    ["allowed_tools", "LM Studio (ephemeral MCP), mcp-use"]
  ],
  deny: [
    ["disabledTools", "Claude Desktop, Roo Code, this bridge"],
    ["deniedTools", "this bridge"],
    ["disallowedTools", "Claude Code, mcp-use"],
    ["excludeTools", "Gemini CLI"],
    ["excludedTools", "mcphost"],
    ["disabled_tools", "Codex"]
  ],
  only: [
    ["includeTools", "Gemini CLI"],
    ["enabled_tools", "Codex"]
  ],
  trust: [["trust", "Gemini CLI"]]
} as const

const globCache = new Map<string, RegExp>()

/** A `*` glob as an anchored regular expression (everything else literal). */
const globOf = (pattern: string): RegExp => {
  const hit = globCache.get(pattern)
  if (hit !== undefined) return hit
  const re = new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`)
  globCache.set(pattern, re)
  return re
}

/** Whether a pattern names the tool, as `server__tool` (raw or as offered) or as `tool`. */
export const matches = (pattern: string, t: PolicyTool): boolean => {
  const re = globOf(pattern.trim())
  return re.test(`${t.server}__${t.tool}`) || re.test(t.offeredAs) || re.test(t.tool)
}

const first = (patterns: ReadonlyArray<string>, t: PolicyTool) => patterns.find((p) => matches(p, t))

/** Decides one tool. */
export const decide = (policy: RunPolicy, t: PolicyTool): Decision => {
  const entry = policy.entries.get(t.server) ?? NO_RULES
  const sources: ReadonlyArray<readonly [string, PolicyRules]> = [
    ["the call", policy.call],
    [`mcp.json (${t.server})`, entry],
    ["AGENT_TOOL_POLICY", policy.config]
  ]
  for (const [where, rules] of sources) {
    const denied = first(rules.deny, t)
    if (denied !== undefined) return { _tag: "Deny", by: `denied by ${where}: ${denied}` }
    const allowed = first(rules.allow, t)
    if (allowed !== undefined) return { _tag: "Run", by: `allowed by ${where}: ${allowed}`, via: "policy" }
    if (rules.only !== undefined && first(rules.only, t) === undefined) {
      return { _tag: "Deny", by: `not in the tools ${where} includes` }
    }
  }
  if (t.readOnly) return { _tag: "Run", by: "read-only (its server's annotation)", via: "read_only" }
  for (const [where, rules] of sources) {
    if (rules.writes === "allow") {
      return {
        _tag: "Run",
        by: where === "the call" ? "allow_writes in the call" : `writes allowed by ${where}`,
        via: "policy"
      }
    }
    if (rules.writes === "deny") return { _tag: "Deny", by: `writes denied by ${where}` }
    if (rules.writes === "ask") return { _tag: "Ask", by: `writes need approval (${where})` }
  }
  return { _tag: "Ask", by: "not annotated read-only: needs approval" }
}

/** The call's arguments as rules. `allow_writes: false` asks even where a later source would allow writes. */
export const callRules = (input: {
  readonly allowedTools?: ReadonlyArray<string> | undefined
  readonly deniedTools?: ReadonlyArray<string> | undefined
  readonly allowWrites?: boolean | undefined
}): PolicyRules => ({
  allow: input.allowedTools ?? [],
  deny: input.deniedTools ?? [],
  writes: input.allowWrites === undefined ? undefined : input.allowWrites ? "allow" : "ask"
})

/** What the user is asked about a tool call that needs approval. */
export interface ApprovalRequest {
  readonly server: string
  readonly tool: string
  /** The name the model called. */
  readonly offeredAs: string
  /** The arguments, summarised (long values cut). */
  readonly arguments: string
  /** What the model said in the round it asked (its reason), or that it gave none. */
  readonly why: string
  /** Why the call needs approval (the rule that decided it). */
  readonly rule: string
}

/** The user's answer: run it this once, run this tool for the rest of the run, no, or asking failed (with why). */
export type ApprovalAnswer =
  | { readonly _tag: "Once" }
  | { readonly _tag: "Run" }
  | { readonly _tag: "Decline" }
  | { readonly _tag: "Failed"; readonly reason: string }

/** Asks the user (the MCP client's elicitation); the AgentLoop bounds the wait by the run's budget. */
export type Approver = (request: ApprovalRequest) => Effect.Effect<ApprovalAnswer>

const VALUE_CHARS = 200
const SUMMARY_CHARS = 1200

/** Arguments as the user reads them: JSON with every long string cut to its start and its length. */
export const summariseArguments = (args: Readonly<Record<string, unknown>>): string => {
  const cut = (v: unknown, depth: number): unknown =>
    typeof v === "string"
      ? v.length <= VALUE_CHARS ? v : `${v.slice(0, VALUE_CHARS)}… (${v.length} characters)`
      : Array.isArray(v)
      ? depth > 3 ? `[${v.length} items]` : v.slice(0, 20).map((x) => cut(x, depth + 1))
      : typeof v === "object" && v !== null
      ? depth > 3
        ? "{…}"
        : Object.fromEntries(Object.entries(v).slice(0, 30).map(([k, x]) => [k, cut(x, depth + 1)]))
      : v
  const text = JSON.stringify(cut(args, 0))
  return text.length <= SUMMARY_CHARS ? text : `${text.slice(0, SUMMARY_CHARS)}…`
}
