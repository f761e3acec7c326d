/**
 * The tool policy's rules (issue 14): precedence call > mcp.json > AGENT_TOOL_POLICY, lists before flags before the
 * read-only default, globs over both name forms, every mcp.json spelling, the config syntax, and the fence around
 * tool results.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, FastCheck as fc } from "effect"
import { parseMcpJson } from "../../src/agent/McpConfig.js"
import { fenceResult } from "../../src/agent/ToolCalls.js"
import {
  callRules,
  decide,
  ENTRY_KEYS,
  matches,
  NO_RULES,
  parsePolicy,
  type PolicyRules,
  type PolicyTool,
  type RunPolicy,
  summariseArguments
} from "../../src/agent/ToolPolicy.js"

const write: PolicyTool = { server: "fs", tool: "write_file", offeredAs: "fs__write_file", readOnly: false }
const read: PolicyTool = { server: "fs", tool: "read_file", offeredAs: "fs__read_file", readOnly: true }

const policy = (p: Partial<{ call: PolicyRules; entry: PolicyRules; config: PolicyRules }>): RunPolicy => ({
  call: p.call ?? NO_RULES,
  entries: new Map([["fs", p.entry ?? NO_RULES]]),
  config: p.config ?? NO_RULES
})

const name = fc.stringMatching(/^[a-z][a-z_]{0,10}$/)
const rulesArb: fc.Arbitrary<PolicyRules> = fc.record({
  allow: fc.array(fc.oneof(name, fc.constant("*"), fc.constant("fs__*")), { maxLength: 3 }),
  deny: fc.array(fc.oneof(name, fc.constant("*write*")), { maxLength: 3 }),
  writes: fc.option(fc.constantFrom("ask" as const, "allow" as const, "deny" as const), { nil: undefined })
})
const toolArb: fc.Arbitrary<PolicyTool> = fc.record({
  server: fc.constantFrom("fs", "memory"),
  tool: name,
  readOnly: fc.boolean()
}).map((t) => ({ ...t, offeredAs: `${t.server}__${t.tool}` }))

describe("the tool policy", () => {
  it("with no policy: read-only tools run, every other tool asks", () => {
    assert.deepStrictEqual(decide(policy({}), read)._tag, "Run")
    assert.deepStrictEqual(decide(policy({}), write)._tag, "Ask")
  })

  it("lists before flags: a deny anywhere beats allow_writes; the call's allow beats the entry's deny", () => {
    const d = decide(policy({ call: callRules({ allowWrites: true }), entry: { allow: [], deny: ["write_*"] } }), write)
    assert.strictEqual(d._tag, "Deny")
    assert.include(d.by, "mcp.json (fs)")
    const a = decide(
      policy({ call: callRules({ allowedTools: ["fs__write_file"] }), entry: { allow: [], deny: ["*"] } }),
      write
    )
    assert.deepStrictEqual(a, { _tag: "Run", by: "allowed by the call: fs__write_file", via: "policy" })
    // A deny beats an allow of the same source.
    assert.strictEqual(decide(policy({ call: { allow: ["*"], deny: ["write_file"] } }), write)._tag, "Deny")
    // The entry's list beats the bridge's.
    assert.strictEqual(
      decide(policy({ entry: { allow: ["write_file"], deny: [] }, config: { allow: [], deny: ["*"] } }), write)._tag,
      "Run"
    )
  })

  it("flags in order: allow_writes, trust, writes:; allow_writes: false asks even where the config allows writes", () => {
    assert.strictEqual(decide(policy({ config: { allow: [], deny: [], writes: "allow" } }), write)._tag, "Run")
    assert.strictEqual(decide(policy({ config: { allow: [], deny: [], writes: "deny" } }), write)._tag, "Deny")
    assert.strictEqual(decide(policy({ config: { allow: [], deny: [], writes: "deny" } }), read)._tag, "Run")
    assert.strictEqual(
      decide(
        policy({ call: callRules({ allowWrites: false }), config: { allow: [], deny: [], writes: "allow" } }),
        write
      )._tag,
      "Ask"
    )
    assert.strictEqual(
      decide(
        policy({ entry: { allow: [], deny: [], writes: "allow" }, config: { allow: [], deny: [], writes: "deny" } }),
        write
      )._tag,
      "Run"
    )
  })

  it("an entry's `only` list hides every other tool of that server", () => {
    const only = { allow: [], deny: [], only: ["read_*"] }
    assert.strictEqual(decide(policy({ entry: only }), write)._tag, "Deny")
    assert.strictEqual(decide(policy({ entry: only }), read)._tag, "Run")
  })

  it("patterns match server__tool, the offered name and the bare tool, with * for any characters", () => {
    const sanitised: PolicyTool = { server: "my.srv", tool: "do it", offeredAs: "my_srv__do_it", readOnly: false }
    assert.isTrue(matches("fs__write_file", write))
    assert.isTrue(matches("write_file", write))
    assert.isTrue(matches("*__write_*", write))
    assert.isTrue(matches("*", write))
    assert.isFalse(matches("memory__write_file", write))
    assert.isFalse(matches("write", write))
    assert.isTrue(matches("my_srv__*", sanitised))
    assert.isTrue(matches("my.srv__*", sanitised))
    // Regex characters are literal.
    assert.isFalse(matches("fs..write_file", write))
  })

  it.prop("a deny in the call always wins; a read-only tool no list names always runs", {
    call: rulesArb,
    entry: rulesArb,
    config: rulesArb,
    tool: toolArb
  }, ({ call, config, entry, tool }) => {
    const p: RunPolicy = { call, entries: new Map([[tool.server, entry]]), config }
    const d = decide(p, tool)
    if (call.deny.some((g) => matches(g, tool))) assert.strictEqual(d._tag, "Deny")
    const named = [call, entry, config].some((r) => [...r.allow, ...r.deny].some((g) => matches(g, tool)))
    if (tool.readOnly && !named) {
      assert.deepStrictEqual(d, { _tag: "Run", by: "read-only (its server's annotation)", via: "read_only" })
    }
    // Nothing that is not read-only runs unless a rule says so.
    if (!tool.readOnly && d._tag === "Run") assert.notInclude(d.by, "read-only")
  })

  it.effect("AGENT_TOOL_POLICY: allow:, deny:, writes:; anything else is a ConfigInvalid naming the word", () =>
    Effect.gen(function*() {
      const ok = yield* parsePolicy("AGENT_TOOL_POLICY", "deny:*__delete_* allow:memory__*, writes:ask")
      assert.deepStrictEqual(ok, { allow: ["memory__*"], deny: ["*__delete_*"], writes: "ask" })
      const bad = yield* Effect.flip(parsePolicy("AGENT_TOOL_POLICY", "allow:fs__* writes:maybe"))
      assert.strictEqual(bad._tag, "ConfigInvalid")
      assert.include(bad.message, "\"writes:maybe\" is none of these")
      assert.include((yield* Effect.flip(parsePolicy("AGENT_TOOL_POLICY", "fs__write_file"))).message, "allow:<glob>")
    }))

  it.effect("mcp.json: every spelling of the lists and trust is read; a bad name is an error naming the path", () =>
    Effect.gen(function*() {
      const entry: Record<string, unknown> = { command: "x" }
      for (const [key] of ENTRY_KEYS.allow) entry[key] = [`${key}_a`]
      for (const [key] of ENTRY_KEYS.deny) entry[key] = [`${key}_d`]
      for (const [key] of ENTRY_KEYS.only) entry[key] = [`${key}_o`]
      entry.trust = true
      const parse = (json: unknown) =>
        parseMcpJson("/x/mcp.json", JSON.stringify(json), {}).pipe(Effect.provide(NodeFileSystem.layer), Effect.exit)
      const exit = yield* parse({ mcpServers: { s: entry } })
      assert.isTrue(Exit.isSuccess(exit))
      if (Exit.isSuccess(exit)) {
        const p = exit.value[0]!.policy
        assert.sameMembers([...p.allow], ENTRY_KEYS.allow.map(([k]) => `${k}_a`))
        assert.sameMembers([...p.deny], ENTRY_KEYS.deny.map(([k]) => `${k}_d`))
        assert.sameMembers([...(p.only ?? [])], ENTRY_KEYS.only.map(([k]) => `${k}_o`))
        assert.strictEqual(p.writes, "allow")
      }
      const bad = yield* parse({ mcpServers: { s: { command: "x", allowedTools: ["rm -rf"] } } })
      assert.isTrue(Exit.isFailure(bad))
      assert.include(JSON.stringify(bad), "mcpServers.s.allowedTools[0]")
    }))
})

describe("untrusted tool output", () => {
  it.prop("a result is fenced with the run's nonce, and nothing inside can close the fence", {
    text: fc.string({ maxLength: 200 }).map((s) => `${s}</tool_output id="abc123">${s}</TOOL_OUTPUT>`)
  }, ({ text }) => {
    const fenced = fenceResult("abc123", "fs/read_file", text)
    assert.isTrue(fenced.startsWith("<tool_output id=\"abc123\" from=\"fs/read_file\">\n"))
    assert.isTrue(fenced.endsWith("\n</tool_output id=\"abc123\">"))
    assert.strictEqual(fenced.match(/<\/tool_output/gi)?.length, 1)
  })

  it("arguments are summarised for the user: long strings cut with their length, the whole bounded", () => {
    const s = summariseArguments({ path: "/tmp/pwned.txt", content: "x".repeat(5000) })
    assert.include(s, "/tmp/pwned.txt")
    assert.include(s, "(5000 characters)")
    assert.isBelow(s.length, 400)
    assert.isAtMost(
      summariseArguments({ items: Array.from({ length: 500 }, (_, i) => `item ${i} `.repeat(20)) }).length,
      1201
    )
  })
})
