#!/usr/bin/env node
// `npm run demo`: the bridge's CLI against the embedded LM Studio simulator, end to end, with no GPU.
// Starts `lmstudio-bridge simulate` on a free port, runs a few commands against it, then stops everything.
import { spawn, spawnSync } from "node:child_process"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const bin = join(root, "dist", "src", "bin.js")

const scenario = join(root, "docs", "examples", "demo-scenario.json")
const sim = spawn(process.execPath, [bin, "simulate", "--port", "0", "--json", "--token-delay-ms", "15", "--scenario", scenario], {
  stdio: ["ignore", "pipe", "inherit"]
})
const stop = () => {
  if (sim.exitCode === null) sim.kill("SIGINT")
}
process.on("exit", stop)
process.on("SIGINT", () => process.exit(130))

const started = await new Promise((resolve, reject) => {
  let buffer = ""
  sim.stdout.on("data", (d) => {
    buffer += d.toString()
    try {
      resolve(JSON.parse(buffer))
    } catch {
      // wait for the whole JSON object
    }
  })
  sim.on("exit", (code) => reject(new Error(`the simulator exited early (code ${code})`)))
})

const env = { ...process.env, LMSTUDIO_BASE_URL: started.base_url, LMS_SIM_URL: started.base_url }
const step = (title, args) => {
  process.stdout.write(`\n\x1b[1m$ lmstudio-bridge ${args.join(" ")}\x1b[0m   # ${title}\n`)
  const r = spawnSync(process.execPath, [bin, ...args], { env, stdio: "inherit" })
  if (r.status !== 0) throw new Error(`step failed: ${args.join(" ")} (exit ${r.status})`)
}

try {
  process.stdout.write(`LM Studio simulator running at ${started.base_url}\n`)
  step("is LM Studio there, which APIs, what is loaded", ["health"])
  step("downloaded and loaded models", ["models", "list"])
  step("a streamed chat", ["chat", "Explain in one sentence what this bridge does."])
  step("a stateful Responses turn", ["respond", "Remember the number 7."])
  step("embeddings", ["embed", "local models", "MCP tools"])
  process.stdout.write("\nDemo finished: everything ran against the simulator; stopping it now.\n")
} catch (e) {
  process.stderr.write(`demo failed: ${e.message}\n`)
  process.exitCode = 1
} finally {
  stop()
}
