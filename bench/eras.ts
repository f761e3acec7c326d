/**
 * Both MCP revisions through the built bridge (issue 16), in one run: a 2025-11-25 client (SDK 1.x, `initialize`
 * first) and a 2026-07-28 client (SDK v2 pinned to that revision, no handshake), each on its own `serve` over stdio.
 * - start-up: spawn → the first answer to `tools/list` (for 2025 that includes `initialize`), median of 9 per era;
 * - per call: `chat_completion` p50/p99 and the bridge's p50 over a raw HTTP request to the simulator, batches of
 *   100 interleaved between the two eras and the raw request;
 * - idle RSS of each bridge after the calls and BENCH_IDLE_SECONDS (default 30) idle.
 * With BENCH_BASELINE=<another build's dist/src/bin.js> (e.g. a worktree of the last SDK 1.x commit, 857521a), that
 * build is a third subject with the 2025 client (BENCH_BASELINE_ERA=2026: the 2026 one), measured in the same run, interleaved with the others: this
 * machine's speed drifts by more than the differences between builds from one hour to the next.
 * Usage: node dist/bench/eras.js   (BENCH_ERAS=2025 for the 2025 client alone)
 */
import { Client as ModernClient } from "@modelcontextprotocol/client"
import { StdioClientTransport as ModernStdio } from "@modelcontextprotocol/client/stdio"
import { Client as LegacyClient } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport as LegacyStdio } from "@modelcontextprotocol/sdk/client/stdio.js"
import { Effect } from "effect"
import { Agent } from "node:http"
import { binPath, nowMs, percentile, rawPost, rssMiB, simulator } from "./support.js"

const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 30)
const TOTAL = Number(process.env.BENCH_ERAS_REQUESTS ?? 2000)
const BATCH = 100
const REVISION = "2026-07-28"
/** Which eras to run (BENCH_ERAS=2025 runs the 1.x-era client only, e.g. against a build from before the move). */
const ERAS = (process.env.BENCH_ERAS ?? "2025,2026").split(",").filter((e): e is Era => e === "2025" || e === "2026")
const BASELINE = process.env.BENCH_BASELINE
/** The era of the baseline's client (2025 by default: the build before the move served no other). */
const BASELINE_ERA: Era = process.env.BENCH_BASELINE_ERA === "2026" ? "2026" : "2025"

type Era = "2025" | "2026"

/** What is measured: this build with a client of either era, or the baseline build with the 2025 client. */
interface Subject {
  readonly label: string
  readonly era: Era
  readonly bin: string
}

const SUBJECTS: ReadonlyArray<Subject> = [
  ...ERAS.map((era) => ({
    label: era === "2025" ? "2025-11-25 (initialize)" : "2026-07-28 (no handshake)",
    era,
    bin: binPath
  })),
  ...(BASELINE !== undefined
    ? [{ label: `baseline ${BASELINE}, ${BASELINE_ERA}`, era: BASELINE_ERA, bin: BASELINE }]
    : [])
]

interface Bridge {
  readonly pid: number
  readonly listTools: () => Promise<unknown>
  readonly chat: () => Promise<unknown>
  readonly close: () => Promise<void>
}

const ARGS = {
  name: "chat_completion",
  arguments: { model: "qwen/qwen3-4b", prompt: "benchmark ping", max_tokens: 16 }
}

const open = ({ bin, era }: Subject, env: Record<string, string>): Promise<Bridge> => {
  if (era === "2025") {
    const transport = new LegacyStdio({ command: process.execPath, args: [bin, "serve"], env, stderr: "ignore" })
    const client = new LegacyClient({ name: "bench-2025", version: "1.0.0" })
    return client.connect(transport).then(() => ({
      pid: transport.pid ?? 0,
      listTools: () => client.listTools(),
      chat: () => client.callTool(ARGS),
      close: () => client.close()
    }))
  }
  const transport = new ModernStdio({ command: process.execPath, args: [bin, "serve"], env, stderr: "ignore" })
  const client = new ModernClient({ name: "bench-2026", version: "1.0.0" }, {
    versionNegotiation: { mode: { pin: REVISION } }
  })
  return client.connect(transport).then(() => ({
    pid: transport.pid ?? 0,
    listTools: () => client.listTools(undefined, { cacheMode: "bypass" }),
    chat: () => client.callTool(ARGS),
    close: () => client.close()
  }))
}

const program = Effect.gen(function*() {
  const sim = yield* simulator()
  const env = {
    PATH: process.env.PATH ?? "",
    LMSTUDIO_BASE_URL: sim.baseUrl,
    LMSTUDIO_LIFECYCLE: "jit",
    LOG_LEVEL: "error"
  }
  const agent = new Agent({ keepAlive: true, maxSockets: 8 })
  yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
  const raw = rawPost(
    agent,
    sim.port,
    "/v1/chat/completions",
    JSON.stringify({ model: "qwen/qwen3-4b", messages: [{ role: "user", content: "benchmark ping" }], max_tokens: 16 })
  )

  const startup = SUBJECTS.map(() => [] as Array<number>)
  for (let i = 0; i < 9; i++) {
    for (const [k, subject] of SUBJECTS.entries()) {
      const s0 = yield* nowMs
      const b = yield* Effect.promise(() => open(subject, env))
      yield* Effect.promise(() => b.listTools())
      startup[k]!.push((yield* nowMs) - s0)
      yield* Effect.promise(() => b.close())
    }
  }

  const bridges: Array<Bridge> = []
  for (const subject of SUBJECTS) {
    bridges.push(yield* Effect.acquireRelease(Effect.promise(() => open(subject, env)), (b) => Effect.promise(b.close)))
  }
  const rawTimes: Array<number> = []
  const times = SUBJECTS.map(() => [] as Array<number>)
  const batch = (effect: Effect.Effect<unknown>, into: Array<number>) =>
    Effect.gen(function*() {
      for (let i = 0; i < BATCH; i++) {
        const s = yield* nowMs
        yield* effect
        into.push((yield* nowMs) - s)
      }
    })
  const callOf = (k: number) => Effect.promise(() => bridges[k]!.chat())
  for (let i = 0; i < 300; i++) {
    yield* raw
    for (const k of SUBJECTS.keys()) yield* callOf(k)
  }
  for (let done = 0; done < TOTAL; done += BATCH) {
    yield* batch(raw.pipe(Effect.orDie), rawTimes)
    for (const k of SUBJECTS.keys()) yield* batch(callOf(k), times[k]!)
  }
  yield* Effect.sleep(`${IDLE_SECONDS} seconds`)
  const rawP50 = percentile(rawTimes, 50)
  const lines = [
    `MCP revisions through the bridge (stdio; ${TOTAL} chat_completion per subject, batches of ${BATCH} interleaved):`,
    `  raw HTTP to the simulator: p50 ${rawP50.toFixed(3)} ms`,
    ...SUBJECTS.map((subject, k) =>
      `  ${subject.label}: start-up (spawn → tools/list) ${
        percentile(startup[k]!, 50).toFixed(0)
      } ms median of 9; chat_completion p50 ${percentile(times[k]!, 50).toFixed(3)} ms, p99 ${
        percentile(times[k]!, 99).toFixed(3)
      } ms; over raw p50 ${(percentile(times[k]!, 50) - rawP50).toFixed(3)} ms; idle RSS ${
        rssMiB(bridges[k]!.pid).toFixed(0)
      } MiB after ${IDLE_SECONDS} s`
    )
  ]
  yield* Effect.sync(() => process.stdout.write(`${lines.join("\n")}\n`))
})

Effect.runPromise(Effect.scoped(program)).catch((e: unknown) => {
  process.stderr.write(`bench failed: ${String(e)}\n`)
  process.exitCode = 1
})
