/**
 * Start-up and idle memory of the built bridge beside other builds, in one run (issue 16): this machine's speed moves
 * by a third from one hour to the next, so builds compare only when measured interleaved.
 * - spawn → the answer to `initialize` sent as a raw JSON-RPC line on stdin (no SDK client in the way), LM Studio
 *   unreachable so only the bridge is timed; every build spawned in turn, BENCH_SPAWNS times (default 41); bare
 *   `node` answering one line on stdin is the floor;
 * - idle RSS: each build started side by side, `initialize` and `tools/list` answered, then read after 15 s and after
 *   BENCH_IDLE_SECONDS (default 50; V8 gives memory back after some idle seconds).
 * Usage: node dist/bench/startup.js [<other build>/dist/src/bin.js ...]   (e.g. a worktree of 857521a, the last 1.x SDK)
 */
import { Effect } from "effect"
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { binPath, nowMs, percentile, rssMiB } from "./support.js"

const SPAWNS = Number(process.env.BENCH_SPAWNS ?? 41)
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 50)
const FLOOR = "node"

const line = (message: unknown) => `${JSON.stringify(message)}\n`
const INITIALIZE = line({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "bench-startup", version: "1" } }
})
const LIST = line({ jsonrpc: "2.0", method: "notifications/initialized" }) +
  line({ jsonrpc: "2.0", id: 2, method: "tools/list" })

const env = { PATH: process.env.PATH ?? "", LMSTUDIO_BASE_URL: "http://127.0.0.1:9", LOG_LEVEL: "error" }

const start = (bin: string): ChildProcessWithoutNullStreams =>
  bin === FLOOR
    ? spawn(process.execPath, [
      "-e",
      "process.stdin.once('data', () => { process.stdout.write('x\\n'); process.exit(0) })"
    ], {
      env
    })
    : spawn(process.execPath, [bin, "serve"], { env })

const stop = (child: ChildProcessWithoutNullStreams) =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
    child.kill()
  })

/** Spawn → the first line on stdout, in ms. */
const once = (bin: string) =>
  Effect.gen(function*() {
    const t0 = yield* nowMs
    const child = start(bin)
    child.stderr.resume()
    yield* Effect.async<void>((resume) => {
      child.stdout.once("data", () => resume(Effect.void))
      child.stdin.write(INITIALIZE)
    })
    const ms = (yield* nowMs) - t0
    yield* stop(child)
    return ms
  })

const program = Effect.gen(function*() {
  const builds = [binPath, ...process.argv.slice(2)]
  const subjects = [FLOOR, ...builds]
  const times = subjects.map(() => [] as Array<number>)
  for (let i = 0; i < SPAWNS; i++) {
    for (const [k, bin] of subjects.entries()) times[k]!.push(yield* once(bin))
  }
  const lines = [`spawn → initialize answer on raw stdio, ${SPAWNS} spawns each, interleaved (ms):`]
  for (const [k, bin] of subjects.entries()) {
    lines.push(
      `  ${bin === FLOOR ? "bare node" : bin}: median ${percentile(times[k]!, 50).toFixed(0)}, p25 ${
        percentile(times[k]!, 25).toFixed(0)
      }, min ${Math.min(...times[k]!).toFixed(0)}`
    )
  }

  const running = builds.map(start)
  for (const child of running) {
    child.stdout.resume()
    child.stderr.resume()
    child.stdin.write(INITIALIZE + LIST)
  }
  yield* Effect.sleep("15 seconds")
  const early = running.map((c) => rssMiB(c.pid ?? 0))
  yield* Effect.sleep(`${Math.max(0, IDLE_SECONDS - 15)} seconds`)
  const late = running.map((c) => rssMiB(c.pid ?? 0))
  yield* Effect.forEach(running, stop, { discard: true })
  lines.push(`idle RSS after initialize and tools/list (MiB), started side by side:`)
  for (const [k, bin] of builds.entries()) {
    lines.push(`  ${bin}: ${early[k]!.toFixed(1)} after 15 s, ${late[k]!.toFixed(1)} after ${IDLE_SECONDS} s`)
  }
  yield* Effect.sync(() => process.stdout.write(`${lines.join("\n")}\n`))
})

Effect.runPromise(program).catch((e: unknown) => {
  process.stderr.write(`bench failed: ${String(e)}\n`)
  process.exitCode = 1
})
