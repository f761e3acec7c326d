/**
 * The official MCP conformance kit (Node 22 from the dev dependency) against `serve --http`, with the scenarios each
 * revision requires: every failure is listed with its reason in conformance/expected-failures-<revision>.yml (the kit
 * itself fails the run on an unlisted failure or a listed scenario that passes).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import { repoRoot, runEffect } from "../helpers.js"

/** Scenarios a tools-only server must pass whole, per revision (none of them may be in the baseline). */
const MUST_PASS: Record<string, ReadonlyArray<string>> = {
  "2025-11-25": [
    "server-initialize",
    "logging-set-level",
    "ping",
    "tools-list",
    "tools-call-simple-text",
    "tools-call-error",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
    "server-session-lifecycle"
  ],
  "2026-07-28": [
    "tools-list",
    "tools-call-simple-text",
    "tools-call-error",
    "dns-rebinding-protection",
    "http-header-validation"
  ]
}

describe("MCP conformance kit", () => {
  it.live("--requirements 2025-11-25 and 2026-07-28: conformant, with only the listed expected failures", () =>
    Effect.gen(function*() {
      const r = yield* runEffect(process.execPath, [join(repoRoot, "scripts", "conformance.mjs")])
      assert.strictEqual(r.code, 0, r.stdout + r.stderr)
      assert.match(r.stdout, /^2 of 2 revisions conformant$/m)
      for (const [revision, scenarios] of Object.entries(MUST_PASS)) {
        assert.match(r.stdout, new RegExp(`^${revision}: conformant`, "m"))
        for (const scenario of scenarios) {
          assert.match(r.stdout, new RegExp(`^${revision} PASS ${scenario} \\(\\d+/\\d+ checks\\)$`, "m"), scenario)
        }
      }
      // server-stateless: all but the two checks that need the kit's test_missing_capability tool.
      assert.match(r.stdout, /^2026-07-28 LISTED server-stateless \(26\/28 checks\)$/m)
    }))
})
