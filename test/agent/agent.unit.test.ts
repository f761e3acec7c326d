/**
 * Unit tests of the agent's parts: name sanitising and the text fallback parser (property-based), mcp.json parsing,
 * and the loop's logic over scripted turns with TestClock for the budget.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import type * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, FastCheck as fc, Fiber, TestClock } from "effect"
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { ChildTool } from "../../src/agent/ChildServers.js"
import { type LoopPorts, type RequestedCall, runLoop, type Turn } from "../../src/agent/Loop.js"
import { parseMcpJson } from "../../src/agent/McpConfig.js"
import { isSelf, selfIdentity } from "../../src/agent/SelfIdentity.js"
import { capResult, compactSchema, namespace, parseTextToolCalls } from "../../src/agent/ToolCalls.js"

const toolArb = fc.record({
  server: fc.string({ minLength: 1, maxLength: 40 }),
  name: fc.string({ minLength: 1, maxLength: 80 })
})

describe("namespacing", () => {
  it.prop("names are always valid and never collide", { tools: fc.array(toolArb, { maxLength: 60 }) }, ({ tools }) => {
    const child: Array<ChildTool> = tools.map((t) => ({
      ...t,
      description: "",
      inputSchema: { type: "object" },
      readOnly: true
    }))
    const named = namespace(child)
    assert.strictEqual(named.length, child.length)
    for (const n of named) assert.match(n.name, /^[A-Za-z0-9_-]{1,64}$/)
    assert.strictEqual(new Set(named.map((n) => n.name)).size, named.length)
    named.forEach((n, i) => assert.strictEqual(n.tool, child[i]))
  })

  it("a plain server__tool name is kept as is", () => {
    const [n] = namespace([{ server: "fs", name: "read_text_file", description: "", inputSchema: {}, readOnly: true }])
    assert.strictEqual(n!.name, "fs__read_text_file")
  })
})

describe("the text fallback parser", () => {
  const known = new Set(["fs__read", "memory__store"])
  const formats = [
    (j: string) => `<tool_call>${j}</tool_call>`,
    (j: string) => `[TOOL_REQUEST]${j}[END_TOOL_REQUEST]`,
    (j: string) => `<tools>${j}</tools>`,
    (j: string) => "```json\n" + j + "\n```",
    (j: string) => j
  ]

  it.prop(
    "finds a call to a real tool in every format, with its arguments, wherever prose surrounds it",
    {
      name: fc.constantFrom("fs__read", "memory__store"),
      args: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.oneof(fc.string(), fc.integer(), fc.boolean())),
      format: fc.integer({ min: 0, max: 4 }),
      before: fc.string({ maxLength: 30 }).filter((s) => !/[{}[\]<>`]/.test(s)),
      after: fc.string({ maxLength: 30 }).filter((s) => !/[{}[\]<>`]/.test(s))
    },
    ({ name, args, format, before, after }) => {
      const json = JSON.stringify({ name, arguments: args })
      const text = format === 4 ? json : `${before}${formats[format]!(json)}${after}`
      const calls = parseTextToolCalls(text, known)
      assert.strictEqual(calls.length, 1)
      assert.strictEqual(calls[0]!.name, name)
      assert.deepStrictEqual(JSON.parse(calls[0]!.arguments), args)
    }
  )

  it.prop("never invents a call: unknown names and plain prose give nothing", {
    text: fc.string({ maxLength: 200 }),
    name: fc.string()
  }, ({ text, name }) => {
    fc.pre(!known.has(name))
    assert.deepStrictEqual(
      parseTextToolCalls(text, known),
      parseTextToolCalls(text, known).filter((c) => known.has(c.name))
    )
    assert.deepStrictEqual(
      parseTextToolCalls(`<tool_call>${JSON.stringify({ name, arguments: {} })}</tool_call>`, known),
      []
    )
  })

  it("long results are cut with a note", () => {
    assert.include(capResult("x".repeat(150), 100), "[… 50 more characters cut by the bridge]")
    assert.strictEqual(capResult("short", 100), "short")
  })
})

describe("mcp.json", () => {
  const onDisk = <A, E>(effect: Effect.Effect<A, E, FileSystem.FileSystem>) =>
    Effect.provide(effect, NodeFileSystem.layer)
  const parse = (json: unknown, env: Record<string, string> = {}) =>
    Effect.exit(onDisk(parseMcpJson("/x/mcp.json", JSON.stringify(json), env)))

  it.effect("stdio and http entries, ${VAR} and ${env:VAR}, disabled, timeout, the bridge itself", () =>
    Effect.gen(function*() {
      const exit = yield* parse(
        {
          mcpServers: {
            fs: {
              command: "npx",
              args: ["-y", "server-fs", "${HOME_DIR}"],
              env: { TOKEN: "${env:SECRET}" },
              timeout: 5000
            },
            web: { url: "https://example.test/mcp", headers: { Authorization: "Bearer ${SECRET}" } },
            off: { command: "x", disabled: true },
            me: { command: "node", args: [join(process.cwd(), "src", "bin.ts"), "serve"] },
            named: { command: "node", args: ["/opt/lmstudio-bridge/tools/server.js"] },
            me2: { command: "lmstudio-bridge", args: ["serve"] }
          }
        },
        { HOME_DIR: "/home/a", SECRET: "s3" }
      )
      assert.isTrue(Exit.isSuccess(exit))
      if (!Exit.isSuccess(exit)) return
      const by = Object.fromEntries(exit.value.map((s) => [s.name, s]))
      assert.deepStrictEqual(by.fs!.args, ["-y", "server-fs", "/home/a"])
      assert.deepStrictEqual(by.fs!.env, { TOKEN: "s3" })
      assert.strictEqual(by.fs!.timeoutMs, 5000)
      assert.strictEqual(by.web!.transport, "http")
      assert.deepStrictEqual(by.web!.headers, { Authorization: "Bearer s3" })
      assert.strictEqual(by.off!.enabled, false)
      assert.strictEqual(by.me!.enabled, false)
      // A folder's name proves nothing: only the bridge's own files do.
      assert.strictEqual(by.named!.enabled, true)
      assert.strictEqual(by.me2!.disabledReason, "this is lmstudio-bridge itself")
      assert.notStrictEqual(by.fs!.hash, by.web!.hash)
    }))

  it.effect("errors name the file, the path inside it and the problem", () =>
    Effect.gen(function*() {
      const problem = (json: unknown, env: Record<string, string> = {}) =>
        Effect.map(parse(json, env), (exit) => {
          if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") return assert.fail("expected a failure")
          return exit.cause.error.message
        })
      assert.include(
        yield* problem({ mcpServers: { a: { command: "x", args: "y" } } }),
        "/x/mcp.json at mcpServers.a.args"
      )
      assert.include(yield* problem({ mcpServers: { a: {} } }), "mcpServers.a: needs \"command\"")
      assert.include(
        yield* problem({ mcpServers: { a: { command: "x", args: ["${NOPE}"] } } }),
        "mcpServers.a.args[0]: environment variable NOPE is not set"
      )
      assert.include(yield* problem({ mcpServers: { a: { url: "ftp://x" } } }), "not an http(s) URL")
      assert.include(yield* problem({ servers: {} }), "mcpServers")
      assert.include(
        yield* problem({ mcpServers: { a: { command: "x", timeout: -1 } } }),
        "timeout must be a positive number"
      )
      const notJson = yield* Effect.exit(onDisk(parseMcpJson("/x/mcp.json", "{oops", {})))
      assert.isTrue(Exit.isFailure(notJson))
    }))

  it.effect("the bridge recognises itself by its real files, from a checkout in a folder of any name and through symlinks", () =>
    onDisk(Effect.gen(function*() {
      const root = mkdtempSync(join(tmpdir(), "any-folder-name-"))
      try {
        mkdirSync(join(root, "checkout", "dist", "src"), { recursive: true })
        mkdirSync(join(root, "checkout", "node_modules", "other"), { recursive: true })
        writeFileSync(join(root, "checkout", "package.json"), JSON.stringify({ name: "lmstudio-bridge" }))
        for (const f of ["dist/src/bin.js", "dist/src/bin.bundle.cjs", "node_modules/other/index.js"]) {
          writeFileSync(join(root, "checkout", f), "")
        }
        symlinkSync(join(root, "checkout"), join(root, "linked-checkout"))
        symlinkSync(join(root, "checkout", "dist", "src", "bin.js"), join(root, "bridge-link.js"))
        // Started as node <checkout>/dist/src/bin.js, from wherever the checkout is.
        const self = yield* selfIdentity(join(root, "checkout", "dist", "src", "bin.js"))
        const bin = join(root, "checkout", "dist", "src", "bin.js")
        assert.isTrue(yield* isSelf("node", [bin, "serve"], self, "/"))
        assert.isTrue(
          yield* isSelf("node", [join(root, "linked-checkout", "dist", "src", "bin.js"), "serve"], self, "/")
        )
        assert.isTrue(yield* isSelf("node", [join(root, "bridge-link.js"), "serve"], self, "/"))
        assert.isTrue(yield* isSelf("node", ["dist/src/bin.bundle.cjs"], self, join(root, "checkout")))
        assert.isTrue(yield* isSelf(bin, ["serve"], self, "/"))
        assert.isTrue(yield* isSelf("npx", ["-y", "lmstudio-bridge@0.1.0", "serve"], self, "/"))
        assert.isTrue(yield* isSelf("lmstudio-bridge", ["serve"], yield* selfIdentity(undefined), "/"))
        // Other programs, also ones inside the same checkout, are not the bridge.
        assert.isFalse(yield* isSelf("node", [join(root, "checkout", "node_modules", "other", "index.js")], self, "/"))
        assert.isFalse(yield* isSelf("node", ["server.js"], self, root))
        assert.isFalse(yield* isSelf("node", [join(root, "lmstudio-bridge-tools", "server.js")], self, "/"))
        // Through parseMcpJson: the entry is listed, not offered, with the reason.
        const parsed = yield* (
          parseMcpJson(
            "/x/mcp.json",
            JSON.stringify({
              mcpServers: {
                me: { command: "node", args: [join(root, "linked-checkout", "dist", "src", "bin.js"), "serve"] }
              }
            }),
            {},
            self
          )
        )
        assert.deepStrictEqual(parsed.map((p) => [p.name, p.enabled, p.disabledReason]), [[
          "me",
          false,
          "this is lmstudio-bridge itself"
        ]])
      } finally {
        rmSync(root, { recursive: true, force: true })
      }
    })))
})

// ---------------------------------------------------------------------------------------------------------------
// The loop over scripted turns
// ---------------------------------------------------------------------------------------------------------------

const turn = (calls: ReadonlyArray<[string, unknown]>, text = ""): Turn => ({
  text,
  reasoning: undefined,
  calls: calls.map(([name, args], i): RequestedCall => ({ id: `c${i}`, name, arguments: JSON.stringify(args) })),
  model: "m",
  usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2 }
})

/** Ports whose turns come from `script(round, toolsOn)`; every tool call succeeds after `toolMs`. */
const scripted = (
  script: (round: number, toolsOn: boolean) => Turn,
  toolMs = 0,
  turnMs = 0
): LoopPorts<never> & { readonly log: Array<string> } => {
  let round = 0
  const log: Array<string> = []
  return {
    log,
    known: new Set(["t__a", "t__b"]),
    turn: ({ toolsOn }) =>
      Effect.sync(() => {
        round++
        log.push(`turn ${round} tools=${toolsOn}`)
        return script(round, toolsOn)
      }).pipe(Effect.delay(Duration.millis(turnMs))),
    execute: (call) =>
      Effect.as(Effect.sleep(Duration.millis(toolMs)), {
        ok: true,
        text: `ran ${call.name}`,
        server: "t",
        tool: call.name
      })
  }
}

const limits = {
  maxRounds: 25,
  budget: Duration.seconds(600),
  concurrency: 4,
  resultChars: 1000,
  requireToolFirst: false
}

describe("the loop (scripted LLM, TestClock)", () => {
  it.effect.prop(
    "max_rounds is honoured exactly for a model that never stops, and the last round has tools off",
    { max: fc.integer({ min: 1, max: 12 }) },
    ({ max }) =>
      Effect.gen(function*() {
        const ports = scripted((r, on) => (on ? turn([["t__a", { n: r }]]) : turn([], "final")))
        const out = yield* runLoop(ports, { ...limits, maxRounds: max })
        assert.strictEqual(out.stopReason, "max_rounds")
        assert.strictEqual(out.rounds, max)
        assert.strictEqual(out.toolCalls.length, max)
        assert.strictEqual(out.answer, "final")
        assert.strictEqual(ports.log.at(-1), `turn ${max + 1} tools=false`)
        assert.strictEqual(out.usage.totalTokens, 2 * (max + 1))
      })
  )

  it.effect("the same call a third time stops with repeated_call", () =>
    Effect.gen(function*() {
      const out = yield* runLoop(scripted((_, on) => (on ? turn([["t__a", { x: 1 }]]) : turn([], "gave up"))), limits)
      assert.strictEqual(out.stopReason, "repeated_call")
      assert.strictEqual(out.toolCalls.length, 2)
      assert.strictEqual(out.answer, "gave up")
    }))

  it.effect("the wall-clock budget stops a slow run, then the tools-off round answers (TestClock)", () =>
    Effect.gen(function*() {
      const ports = scripted((r, on) => (on ? turn([["t__a", { r }]]) : turn([], "out of time")), 40_000, 1_000)
      const fiber = yield* Effect.fork(runLoop(ports, { ...limits, budget: Duration.seconds(100) }))
      yield* TestClock.adjust(Duration.seconds(200))
      const out = yield* Fiber.join(fiber)
      assert.strictEqual(out.stopReason, "budget")
      // Rounds start at 0, 41, 82 s; the fourth would start past 100 s.
      assert.strictEqual(out.rounds, 3)
      assert.strictEqual(out.answer, "out of time")
    }))

  it.effect("a first turn that fails fails the run; a later one ends it with stop reason error and keeps the work", () =>
    Effect.gen(function*() {
      const failing = (from: number): LoopPorts<string> => {
        let n = 0
        return {
          known: new Set(["t__a"]),
          turn: () =>
            Effect.suspend(
              () => (++n >= from ? Effect.fail("LM Studio went away") : Effect.succeed(turn([["t__a", { n }]])))
            ),
          execute: (c) => Effect.succeed({ ok: true, text: "ok", server: "t", tool: c.name })
        }
      }
      assert.deepStrictEqual(yield* Effect.flip(runLoop(failing(1), limits)), "LM Studio went away")
      const out = yield* runLoop(failing(3), limits)
      assert.strictEqual(out.stopReason, "error")
      assert.strictEqual(out.toolCalls.length, 2)
      assert.include(out.error ?? "", "LM Studio went away")
    }))

  it.effect("require_tool_first reminds a model that answers without tools, once", () =>
    Effect.gen(function*() {
      const ports = scripted((r) => (r === 2 ? turn([["t__b", {}]]) : turn([], `answer ${r}`)))
      const out = yield* runLoop(ports, { ...limits, requireToolFirst: true })
      assert.strictEqual(out.stopReason, "completed")
      assert.strictEqual(out.answer, "answer 3")
      assert.strictEqual(out.toolCalls.length, 1)
    }))
})

describe("compact tool schemas", () => {
  it("drop what tells the model nothing, keep what the schema accepts, trim long descriptions", () => {
    const schema = {
      $schema: "http://json-schema.org/draft-07/schema#",
      type: "object",
      title: "ReadArgs",
      properties: {
        title: { type: "string", title: "Title", description: "d".repeat(500), examples: ["x"] },
        nested: { type: "array", items: { $comment: "c", type: "object", properties: { $id: { type: "number" } } } }
      },
      required: ["title"],
      additionalProperties: false
    }
    const compact = compactSchema(schema)
    assert.deepStrictEqual(compact, {
      type: "object",
      properties: {
        title: { type: "string", description: `${"d".repeat(199)}…` },
        nested: { type: "array", items: { type: "object", properties: { $id: { type: "number" } } } }
      },
      required: ["title"],
      additionalProperties: false
    })
    assert.isBelow(JSON.stringify(compact).length, JSON.stringify(schema).length)
  })

  it.prop(
    "compaction is idempotent and keeps every property name and required list",
    { value: fc.jsonValue() },
    ({ value }) => {
      const schema = { type: "object", properties: { a: value, title: value }, required: ["a"] }
      const once = compactSchema(schema)
      assert.deepStrictEqual(compactSchema(once), once)
      assert.deepStrictEqual(Object.keys((once as { properties: object }).properties), ["a", "title"])
      assert.deepStrictEqual((once as { required: unknown }).required, ["a"])
    }
  )
})
