/**
 * Instructions per `chat_completion` through the bridge (issue 15): CPU time sampled across processes on this 2-core
 * machine varies between processes by more than telemetry costs, instruction counts do not. The built bridge runs
 * under valgrind's callgrind (`node --single-threaded`, so compilation is counted where it happens); after `WARM`
 * calls (default 1,500) the counters are zeroed (`callgrind_control -z`), after `CALLS` more (default 500) dumped
 * (`-d`). Not part of `npm run bench` (it needs Debian's valgrind and takes minutes). Usage:
 *   node dist/bench/instructions.js [KEY=VALUE,...]     e.g. METRICS_PORT=0 for metrics on
 * Prints the instructions per call. Compare two builds by running each one's copy of this file.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { binPath, simulator } from "./support.js"

const WARM = Number(process.env.WARM ?? 1500)
const CALLS = Number(process.env.CALLS ?? 500)

const program = Effect.gen(function*() {
  const sim = yield* simulator()
  const dir = mkdtempSync(join(tmpdir(), "lmsb-callgrind-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  const extra = Object.fromEntries(
    (process.argv[2] ?? "").split(",").filter((kv) => kv.includes("=")).map((kv) =>
      kv.split("=", 2) as [string, string]
    )
  )
  const transport = new StdioClientTransport({
    command: "valgrind",
    args: [
      "--tool=callgrind",
      `--callgrind-out-file=${join(dir, "out")}`,
      process.execPath,
      "--single-threaded",
      binPath,
      "serve"
    ],
    env: {
      PATH: process.env.PATH ?? "",
      LMSTUDIO_BASE_URL: sim.baseUrl,
      LMSTUDIO_LIFECYCLE: "jit",
      LOG_LEVEL: "error",
      ...extra
    },
    stderr: "ignore"
  })
  const client = new Client({ name: "bench-instructions", version: "1.0.0" })
  yield* Effect.promise(() => client.connect(transport, { timeout: 600_000 }))
  yield* Effect.addFinalizer(() => Effect.promise(() => client.close()))
  const call = Effect.promise(() =>
    client.callTool(
      { name: "chat_completion", arguments: { model: "qwen/qwen3-4b", prompt: "benchmark ping", max_tokens: 16 } },
      undefined,
      { timeout: 600_000 }
    )
  )
  for (let i = 0; i < WARM; i++) yield* call
  execFileSync("callgrind_control", ["-z", String(transport.pid)], { stdio: "ignore" })
  for (let i = 0; i < CALLS; i++) yield* call
  execFileSync("callgrind_control", ["-d", String(transport.pid)], { stdio: "ignore" })
  const dump = readdirSync(dir).filter((f) => f.startsWith("out.")).sort().at(-1)
  const total = Number(/^(?:summary|totals):\s*(\d+)/m.exec(readFileSync(join(dir, dump ?? "out"), "utf8"))?.[1])
  yield* Effect.sync(() =>
    process.stdout.write(
      `instructions per chat_completion (calls ${WARM + 1}–${WARM + CALLS}, ${process.argv[2] ?? "telemetry off"}): ${
        Math.round(total / CALLS)
      }\n`
    )
  )
})

Effect.runPromise(Effect.scoped(program)).catch((e: unknown) => {
  process.stderr.write(`bench failed: ${String(e)}\n`)
  process.exitCode = 1
})
