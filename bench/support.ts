/** What the benchmarks share: the simulator in its own process, percentiles, the RSS of a process, a clock. */
import { Clock, Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { type Agent, request } from "node:http"
import { fileURLToPath } from "node:url"

export const binPath = fileURLToPath(new URL("../src/bin.js", import.meta.url))

/** Milliseconds, with the nanosecond clock's precision. */
export const nowMs = Effect.map(Clock.currentTimeNanos, (n) => Number(n) / 1e6)

/** The p-th percentile (0–100) of a list of numbers. */
export const percentile = (xs: ReadonlyArray<number>, p: number): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!

const statusField = (pid: number, field: string): number => {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith(`${field}:`)) ??
    `${field}: 0 kB`
  return Number(/(\d+)/.exec(line)?.[1] ?? 0) / 1024
}

/** Resident memory of a process, from /proc. */
export const rssMiB = (pid: number): number => statusField(pid, "VmRSS")

/** The highest resident memory a process has had so far (the kernel's high-water mark), from /proc. */
export const peakRssMiB = (pid: number): number => statusField(pid, "VmHWM")

/**
 * `lmstudio-bridge simulate` as a child process, as LM Studio runs: its work does not share the measuring
 * process's event loop. Resolves with its address; stopped with the scope.
 */
export const simulator = (args: ReadonlyArray<string> = []) =>
  Effect.acquireRelease(
    Effect.async<{ readonly port: number; readonly baseUrl: string; readonly child: ChildProcess }>((resume) => {
      const child = spawn(process.execPath, [binPath, "simulate", "--port", "0", "--json", ...args], {
        stdio: ["ignore", "pipe", "ignore"]
      })
      let out = ""
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString()
        const m = /"base_url": "([^"]+)",\s*"port": (\d+)/.exec(out)
        if (m) resume(Effect.succeed({ baseUrl: m[1]!, port: Number(m[2]), child }))
      })
    }),
    (s) => Effect.sync(() => s.child.kill("SIGINT"))
  )

/** CPU time (user + system) a process has used so far, in ms, from /proc (clock ticks of 10 ms). */
export const cpuMs = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) * 10
}

/** One POST straight over node:http (keep-alive agent), body parsed with JSON.parse: the baseline of the benches. */
export const rawPost = (agent: Agent, port: number, path: string, body: string) =>
  Effect.async<unknown, Error>((resume) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: "POST",
        agent,
        headers: { "content-type": "application/json", accept: "application/json" }
      },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () => {
          try {
            resume(Effect.succeed(JSON.parse(Buffer.concat(chunks).toString("utf8"))))
          } catch (e) {
            resume(Effect.fail(e instanceof Error ? e : new Error(String(e))))
          }
        })
        res.on("error", (e) => resume(Effect.fail(e)))
      }
    )
    req.on("error", (e) => resume(Effect.fail(e)))
    req.end(body)
  })
