#!/usr/bin/env node
// `npm run demo`: the bridge end to end against the embedded LM Studio simulator, with no GPU.
// 1. Starts `lmstudio-bridge simulate` on a free port with a scripted model and runs CLI commands against it.
// 2. The full story: spawns the bridge over stdio exactly as an MCP client does (SDK Client), with an mcp.json that
//    names the real @modelcontextprotocol/server-filesystem on a temp folder, and hands the local model a task whose
//    answer is in a file there. Prints the rounds and tool calls live, then the answer, and cleans everything up.
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { spawn, spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const bin = join(root, "dist", "src", "bin.js")
const work = mkdtempSync(join(tmpdir(), "lmstudio-bridge-demo-"))
process.on("exit", () => rmSync(work, { recursive: true, force: true }))

// A folder with a file whose content only a tool call can reveal, and a scripted model that reads it.
const notes = join(work, "notes.txt")
writeFileSync(notes, "Launch code: AURORA-5519\nOwner: the demo\n")
const demoScenario = JSON.parse(readFileSync(join(root, "docs", "examples", "demo-scenario.json"), "utf8"))
const scenario = join(work, "scenario.json")
writeFileSync(
  scenario,
  JSON.stringify({
    rules: [
      {
        match: { userContains: "launch code", round: 0, hasTools: true },
        reply: {
          reasoning: "I should look at the folder first.",
          toolCalls: [{ name: "files__list_directory", arguments: { path: work } }]
        }
      },
      {
        match: { userContains: "launch code", round: 1, hasTools: true },
        reply: { toolCalls: [{ name: "files__read_text_file", arguments: { path: notes } }] }
      },
      // Matches only if the file's content really came back from the tool call.
      {
        match: { userContains: "launch code", toolResultContains: "AURORA-5519" },
        reply: { think: "notes.txt has it.", content: "The launch code in notes.txt is AURORA-5519." }
      },
      ...demoScenario.rules
    ]
  })
)
const mcpJson = join(work, "mcp.json")
writeFileSync(
  mcpJson,
  JSON.stringify(
    {
      mcpServers: {
        files: {
          command: process.execPath,
          args: [join(root, "node_modules", "@modelcontextprotocol", "server-filesystem", "dist", "index.js"), work]
        }
      }
    },
    null,
    2
  )
)

const sim = spawn(process.execPath, [
  bin,
  "simulate",
  "--port",
  "0",
  "--json",
  "--token-delay-ms",
  "15",
  "--scenario",
  scenario
], {
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

const env = {
  ...process.env,
  LMSTUDIO_BASE_URL: started.base_url,
  LMS_SIM_URL: started.base_url,
  MCP_JSON_PATH: mcpJson
}
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
  step("the MCP servers an agent may use", ["mcps", "list"])

  process.stdout.write(
    `\n\x1b[1m# An MCP client spawns the bridge over stdio and hands a task to the local model\x1b[0m\n`
  )
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [bin, "serve"],
    env: {
      PATH: process.env.PATH ?? "",
      LMSTUDIO_BASE_URL: started.base_url,
      MCP_JSON_PATH: mcpJson,
      LOG_LEVEL: "warn"
    },
    stderr: "inherit"
  })
  const client = new Client({ name: "demo", version: "1.0.0" })
  await client.connect(transport)
  try {
    const task = "What is the launch code in the notes folder?"
    process.stdout.write(`autonomous_with_mcp { mcp_name: "files", task: ${JSON.stringify(task)} }\n`)
    const result = await client.callTool(
      { name: "autonomous_with_mcp", arguments: { mcp_name: "files", task } },
      undefined,
      { onprogress: (p) => process.stdout.write(`  progress: ${p.message}\n`), timeout: 120_000 }
    )
    if (result.isError) throw new Error(result.content.map((c) => c.text).join("\n"))
    const out = result.structuredContent
    process.stdout.write(
      `\nrounds: ${out.rounds}, stop reason: ${out.stop_reason}, api: ${out.api}, model: ${out.model}\n`
    )
    for (const c of out.tool_calls) {
      process.stdout.write(`  round ${c.round}: ${c.server}/${c.tool} ${c.ok ? "ok" : "error"} (${c.ms} ms)\n`)
    }
    process.stdout.write(`answer: ${out.answer}\n`)
    if (!out.answer.includes("AURORA-5519")) throw new Error("the answer does not contain what the file says")
  } finally {
    await client.close()
  }
  process.stdout.write("\nDemo finished: everything ran against the simulator; stopping it now.\n")
} catch (e) {
  process.stderr.write(`demo failed: ${e.message}\n`)
  process.exitCode = 1
} finally {
  stop()
}
