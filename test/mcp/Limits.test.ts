/**
 * What the MCP face refuses before the SDK (issue 14): depth measured without recursion, the id of a message too
 * large to parse found where serialisers put it, and JSON-RPC shape checks with the right codes.
 */
import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { checkJson, checkText, MAX_DEPTH, nestedDeeperThan, sniffId } from "../../src/mcp/Limits.js"

const nest = (depth: number, kind: "array" | "object"): unknown => {
  let v: unknown = 1
  for (let i = 0; i < depth; i++) v = kind === "array" ? [v] : { k: v }
  return v
}

describe("MCP input limits", () => {
  it.prop("depth is measured exactly, for arrays and objects, however deep", {
    depth: fc.integer({ min: 0, max: 300 }),
    max: fc.integer({ min: 1, max: 200 }),
    kind: fc.constantFrom("array" as const, "object" as const)
  }, ({ depth, kind, max }) => {
    assert.strictEqual(nestedDeeperThan(nest(depth, kind), max), depth > max)
  })

  it("a million levels do not overflow the stack", () => {
    assert.isTrue(nestedDeeperThan(nest(1_000_000, "array"), MAX_DEPTH))
  })

  it.prop("the id of an oversized request is found at its start or its end", {
    id: fc.oneof(fc.integer({ min: -1e9, max: 1e9 }), fc.string({ maxLength: 30 }))
  }, ({ id }) => {
    const idJson = JSON.stringify(id)
    assert.deepStrictEqual(sniffId(`{"jsonrpc":"2.0","id":${idJson},"method":"tools/call","params":{"x":"`, ""), id)
    assert.deepStrictEqual(sniffId(`{"method":"tools/call"`, `"}},"jsonrpc":"2.0","id":${idJson}}`), id)
    // An "id" inside the arguments is not the request's.
    assert.isNull(sniffId(`{"method":"x","params":{"id":${idJson},"data":"`, `"}}`))
  })

  it("codes: not JSON -32700, empty batch and wrong shape -32600, deep request -32602; a malformed notification too (null id)", () => {
    const code = (c: ReturnType<typeof checkText>) => (c._tag === "Refused" ? c.answer.error.code : 0)
    assert.strictEqual(code(checkText("{oops")), -32700)
    assert.strictEqual(code(checkText("[]")), -32600)
    assert.strictEqual(code(checkText(JSON.stringify({ id: 1, hello: 1 }))), -32600)
    assert.strictEqual(
      code(checkJson({ jsonrpc: "2.0", id: 1, method: "m", params: { x: nest(200, "array") } })),
      -32602
    )
    assert.strictEqual(code(checkJson({ jsonrpc: "2.0", method: 5 })), -32600)
    const malformed = checkJson({ jsonrpc: "1.0", method: "notifications/x" })
    assert.strictEqual(code(malformed), -32600)
    assert.isNull(malformed._tag === "Refused" ? malformed.answer.id : "ok")
    const ok = checkText(JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/list" }))
    assert.strictEqual(ok._tag, "Ok")
  })
})
