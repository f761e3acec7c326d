// After tsc: bundle the executable into one file and give it a V8 code cache, then make the executables runnable.
// Start-up is dominated by loading the module graph: a bundle loads it in one read, and the code cache spares V8
// compiling the bundle again on every start (docs/benchmarks.md, "start-up"). Node 20 has no built-in compile cache
// for ES modules, so the bundle is CommonJS, run through `vm.Script` with `cachedData` by a small loader that takes
// the place of dist/src/bin.js. The unbundled modules stay in dist/ for tests and scripts.
import { build } from "esbuild"
import { spawnSync } from "node:child_process"
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { builtinModules } from "node:module"

const entry = "dist/src/bin.js"
const bundle = "dist/src/bin.bundle.cjs"
const cache = `${bundle}.v8cache`

const marker = "// lmstudio-bridge loader:"
const loader = `#!/usr/bin/env node
${marker} runs the bundled bridge (bin.bundle.cjs) with the V8 code cache made at build time
// (scripts/postbuild.mjs). A cache from another Node version is refused by V8 and the bundle is compiled as usual.
import { readFileSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname } from "node:path"
import { fileURLToPath } from "node:url"
import { constants, Script } from "node:vm"

const file = fileURLToPath(new URL("./bin.bundle.cjs", import.meta.url))
const cacheFile = file + ".v8cache"
let cachedData
try {
  cachedData = readFileSync(cacheFile)
} catch {
  cachedData = undefined
}
const script = new Script("(function (exports, require, module, __filename, __dirname) {" + readFileSync(file, "utf8") + "\\n})", {
  filename: file,
  cachedData,
  importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER
})
const hadCache = cachedData !== undefined
cachedData = undefined // 3 MB that V8 has consumed: let it go
if (process.env.LMSTUDIO_BRIDGE_CODE_CACHE_CHECK === "1") {
  process.stdout.write(!hadCache ? "absent\\n" : script.cachedDataRejected ? "rejected\\n" : "accepted\\n")
  process.exit(0)
}
if (process.env.LMSTUDIO_BRIDGE_WRITE_CODE_CACHE === "1") {
  process.once("exit", () => writeFileSync(cacheFile, script.createCachedData()))
}
const module = { exports: {} }
script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file))
`

// Run twice without tsc in between, the entry is already the loader: bundling it again would bundle the loader.
if (existsSync(entry) && !readFileSync(entry, "utf8").includes(marker)) {
  await build({
    entryPoints: [entry],
    outfile: bundle,
    bundle: true,
    // Everything, the OpenTelemetry SDK and exporters included: the package has no dependencies to install. The
    // exporters' code sits in the bundle behind the lazy import of src/observability/Telemetry.ts: it is run (and,
    // past V8's pre-parse, compiled) only when metrics or traces are turned on.
    platform: "node",
    format: "cjs",
    target: "node20",
    legalComments: "none",
    // Whitespace and syntax only: names stay readable in logs and stack traces; a third less to read and parse.
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: "error",
    // The sources are ES modules; in the CommonJS bundle import.meta.url is the bundle's own URL (same folder).
    define: { "import.meta.url": "__bridgeImportMetaUrl" },
    banner: { js: "const __bridgeImportMetaUrl = require(\"node:url\").pathToFileURL(__filename).href;" }
  })
  // The loader wraps the bundle in a function: the entry's `#!` line must go (the line stays, to keep positions).
  // And inside the loader's vm.Script, Node 20 fails a dynamic `import()` of a built-in module (the OTLP exporter's
  // `await import("http")`: it then sends nothing); in a CommonJS bundle `require` gives the same named exports.
  writeFileSync(
    bundle,
    readFileSync(bundle, "utf8")
      .replace(/^#!.*/, "")
      .replace(
        /\bimport\("((?:node:)?[a-z_]+)"\)/g,
        (whole, name) =>
          builtinModules.includes(name.replace(/^node:/, "")) ? `Promise.resolve(require("${name}"))` : whole
      )
  )
  writeFileSync(entry, loader)
  rmSync(`${entry}.map`, { force: true })

  // Make the code cache from a real run (so it holds what start-up compiles), then check that V8 takes it in a
  // fresh process. Run with the same Node as the bridge will be (see scripts/unshadow-node.mjs).
  rmSync(cache, { force: true })
  const env = { ...process.env, LMSTUDIO_BASE_URL: "http://127.0.0.1:9", LOG_LEVEL: "error" }
  const made = spawnSync(process.execPath, [entry, "--help"], {
    env: { ...env, LMSTUDIO_BRIDGE_WRITE_CODE_CACHE: "1" },
    stdio: "ignore",
    timeout: 60_000
  })
  const check = spawnSync(process.execPath, [entry], {
    env: { ...env, LMSTUDIO_BRIDGE_CODE_CACHE_CHECK: "1" },
    encoding: "utf8",
    timeout: 60_000
  })
  const verdict = (check.stdout ?? "").trim()
  if (made.status !== 0 || verdict !== "accepted") {
    // Not fatal: without the cache the bridge starts as before, only slower.
    rmSync(cache, { force: true })
    process.stderr.write(
      `postbuild: no usable code cache (run exit ${made.status}, cache ${
        verdict || "unchecked"
      }); the bridge works, starting slower\n`
    )
  }
}
// The lms shim runs as its own process (the simulator names it in LMS_CLI_PATH): bundled too, so an installed package
// without node_modules runs it. An ES module like its source; `require` for the CommonJS parts of its dependencies.
const shim = "dist/src/simulator/lms.js"
if (existsSync(shim) && !readFileSync(shim, "utf8").includes("// lmstudio-bridge bundled shim")) {
  await build({
    entryPoints: [shim],
    outfile: shim,
    allowOverwrite: true,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    legalComments: "none",
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: "error",
    banner: {
      js: "// lmstudio-bridge bundled shim\nimport { createRequire as __bridgeCreateRequire } from \"node:module\";\n" +
        "const require = __bridgeCreateRequire(import.meta.url);"
    }
  })
}
for (const file of [entry, shim]) {
  if (existsSync(file)) chmodSync(file, 0o755)
}
