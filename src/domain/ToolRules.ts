/**
 * The rules one source of a tool policy gives (the call, an mcp.json entry, `AGENT_TOOL_POLICY`), and the syntax of
 * `AGENT_TOOL_POLICY`. What they mean together is agent/ToolPolicy.ts.
 */
import { Effect, Schema } from "effect"
import { ConfigInvalid } from "./Errors.js"

/** What a tool name or glob in a policy may be: letters, digits, `_`, `-`, `.` and `*`. */
const TOOL_GLOB = /^[A-Za-z0-9_.*-]{1,200}$/

export const isToolGlob = (s: string): boolean => TOOL_GLOB.test(s)

export const TOOL_GLOB_RULE =
  "a tool name or glob is letters, digits, '_', '-', '.' and '*' (e.g. fs__write_file, memory__*)"

/** A tool name or glob, as the call, the CLI and mcp.json take it (the pattern shows in the tools' JSON Schema). */
export const ToolGlob = Schema.String.pipe(Schema.pattern(TOOL_GLOB, { message: () => TOOL_GLOB_RULE }))

/** Allow and deny lists and the rule for tools they do not name, as one source gives them. */
export interface PolicyRules {
  readonly allow: ReadonlyArray<string>
  readonly deny: ReadonlyArray<string>
  /** Tools of this server outside the list are not offered (hosts that filter: `includeTools`, `enabled_tools`). */
  readonly only?: ReadonlyArray<string> | undefined
  /** Tools not read-only and not in a list: run, ask the user, or never offer. Unset: the next source decides. */
  readonly writes?: "ask" | "allow" | "deny" | undefined
}

export const NO_RULES: PolicyRules = { allow: [], deny: [] }

const WRITES = ["ask", "allow", "deny"] as const

/**
 * `AGENT_TOOL_POLICY`: words separated by spaces, commas or semicolons — `allow:<glob>`, `deny:<glob>`,
 * `writes:ask|allow|deny`. Empty: no rules (the default applies).
 */
export const parsePolicy = (variable: string, raw: string): Effect.Effect<PolicyRules, ConfigInvalid> => {
  const allow: Array<string> = []
  const deny: Array<string> = []
  let writes: PolicyRules["writes"]
  const allowed = "words separated by spaces or commas: allow:<glob>, deny:<glob>, writes:ask|allow|deny " +
    "(e.g. \"deny:*__delete_* allow:memory__* writes:ask\")"
  for (const word of raw.split(/[\s,;]+/).filter((w) => w !== "")) {
    const at = word.indexOf(":")
    const kind = at < 0 ? "" : word.slice(0, at)
    const value = at < 0 ? "" : word.slice(at + 1)
    if ((kind === "allow" || kind === "deny") && isToolGlob(value)) {
      ;(kind === "allow" ? allow : deny).push(value)
    } else if (kind === "writes" && (WRITES as ReadonlyArray<string>).includes(value)) {
      writes = value as (typeof WRITES)[number]
    } else {
      return Effect.fail(
        new ConfigInvalid({ variable, value: raw, allowed: `${allowed}; ${JSON.stringify(word)} is none of these` })
      )
    }
  }
  return Effect.succeed({ allow, deny, writes })
}
