// `npm run docs:tools`: writes docs/tools.md from the built tool registry.
import { writeFileSync } from "node:fs"
import { renderToolDocs } from "../dist/src/mcp/ToolDocs.js"
import { tools } from "../dist/src/mcp/tools/index.js"

writeFileSync(new URL("../docs/tools.md", import.meta.url), renderToolDocs(tools))
process.stderr.write(`docs/tools.md: ${tools.length} tools\n`)
