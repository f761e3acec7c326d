/** docs/tools.md is generated from the registry; this fails when someone changes a tool and forgets `npm run docs:tools`. */
import { assert, describe, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { renderToolDocs } from "../../src/mcp/ToolDocs.js"
import { tools } from "../../src/mcp/tools/index.js"
import { repoRoot } from "../helpers.js"

describe("docs/tools.md", () => {
  it("matches the tool registry (regenerate with `npm run docs:tools`)", () => {
    const committed = readFileSync(join(repoRoot, "docs", "tools.md"), "utf8")
    assert.strictEqual(committed, renderToolDocs(tools))
    for (const t of tools) assert.include(committed, `## \`${t.name}\``)
  })
})
