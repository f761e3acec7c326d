// After tsc: bundle the executable into one file (start-up is dominated by loading the module graph; a bundle loads
// it in one read), and make the executables runnable. The unbundled modules stay in dist/ for tests and scripts.
import { build } from "esbuild"
import { chmodSync, existsSync, renameSync } from "node:fs"

if (existsSync("dist/src/bin.js")) {
  await build({
    entryPoints: ["dist/src/bin.js"],
    outfile: "dist/src/bin.bundle.js",
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    legalComments: "none",
    logLevel: "warning",
    banner: { js: "import { createRequire as __bridgeCreateRequire } from 'node:module'; const require = __bridgeCreateRequire(import.meta.url);" }
  })
  renameSync("dist/src/bin.bundle.js", "dist/src/bin.js")
}
for (const file of ["dist/src/bin.js", "dist/src/simulator/lms.js"]) {
  if (existsSync(file)) chmodSync(file, 0o755)
}
