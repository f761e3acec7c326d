/** The official MCP conformance kit (Node 22 from the dev dependency) against `serve --http`: the applicable scenarios. */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import { repoRoot, runEffect } from "../helpers.js"

describe("MCP conformance kit", () => {
  it.live("server-initialize, ping, tools-list and dns-rebinding-protection pass", () =>
    Effect.gen(function*() {
      const r = yield* runEffect(process.execPath, [join(repoRoot, "scripts", "conformance.mjs")])
      assert.strictEqual(r.code, 0, r.stdout + r.stderr)
      for (const scenario of ["server-initialize", "ping", "tools-list", "dns-rebinding-protection"]) {
        assert.match(r.stdout, new RegExp(`^PASS ${scenario} \\(\\d+/\\d+ checks\\)$`, "m"))
      }
    }))
})
