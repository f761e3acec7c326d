/**
 * `lmstudio-bridge simulate` and `npm run demo` as users run them: real subprocesses, real HTTP, clean shutdown on
 * Ctrl-C (SIGINT) with no process left behind.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { binPath, j, repoRoot, run } from "../helpers.js"

interface Started {
  readonly info: { readonly base_url: string; readonly port: number; readonly lms: string }
  readonly stop: () => Promise<number | null>
}

/** Starts `simulate --json` and resolves once it printed where it listens; `stop` sends SIGINT and awaits the exit. */
const simulate = (args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.promise(
      () =>
        new Promise<Started>((resolve, reject) => {
          const child = spawn(process.execPath, [binPath, "simulate", "--port", "0", "--json", ...args], {
            stdio: ["ignore", "pipe", "pipe"]
          })
          let out = ""
          const exited = new Promise<number | null>((done) =>
            child.on("exit", (code, signal) => done(code ?? (signal ? -1 : null)))
          )
          child.stdout.on("data", (d: Buffer) => {
            out += d.toString()
            try {
              const info = JSON.parse(out) as Started["info"]
              resolve({ info, stop: () => (child.kill("SIGINT"), exited) })
            } catch {
              // not complete yet
            }
          })
          child.on("exit", (code) => reject(new Error(`simulate exited early with ${code}`)))
        })
    ),
    (s) => Effect.promise(() => s.stop())
  )

describe("simulate command", () => {
  it.scopedLive("serves LM Studio's API with the given scenario and models, and stops on SIGINT", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "lmsb-sim-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const scenario = join(dir, "scenario.json")
      writeFileSync(
        scenario,
        JSON.stringify({ rules: [{ match: { userContains: "ping" }, reply: { content: "pong" } }] })
      )
      const sim = yield* simulate([
        "--scenario",
        scenario,
        "--models",
        "acme/tiny-1b,acme/embed-small",
        "--loaded",
        "acme/tiny-1b"
      ])
      const greeting = yield* Effect.promise(() =>
        fetch(`${sim.info.base_url}/lmstudio-greeting`).then((r) => r.json() as Promise<unknown>)
      )
      assert.deepStrictEqual(greeting, { lmstudio: true })
      const models = yield* Effect.promise(() =>
        fetch(`${sim.info.base_url}/api/v1/models`).then((r) => r.json() as Promise<unknown>)
      )
      assert.deepStrictEqual(j(models).get("models").arr.map((m) => [m.get("key").str, m.get("type").str]), [
        ["acme/tiny-1b", "llm"],
        ["acme/embed-small", "embedding"]
      ])
      const chat = yield* Effect.promise(() =>
        run(process.execPath, [binPath, "chat", "ping"], { LMSTUDIO_BASE_URL: sim.info.base_url })
      )
      assert.strictEqual(chat.stdout, "pong\n")
      const lms = yield* Effect.promise(() => run(sim.info.lms, ["ps", "--json"], { LMS_SIM_URL: sim.info.base_url }))
      assert.strictEqual(j(JSON.parse(lms.stdout)).get(0, "identifier").str, "acme/tiny-1b")
      const code = yield* Effect.promise(() => sim.stop())
      assert.isTrue(code === 0 || code === 130, `exit code ${code}`)
      const after = yield* Effect.promise(() =>
        fetch(`${sim.info.base_url}/lmstudio-greeting`).then(() => "up", () => "down")
      )
      assert.strictEqual(after, "down")
    }))

  it.live("a bad scenario file is a one-line ConfigInvalid naming the file", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "lmsb-sim-"))
      const scenario = join(dir, "bad.json")
      writeFileSync(scenario, JSON.stringify({ rules: [{ reply: { toolCalls: "not a list" } }] }))
      const r = yield* Effect.promise(() =>
        run(process.execPath, [binPath, "simulate", "--port", "0", "--scenario", scenario])
      )
      rmSync(dir, { recursive: true, force: true })
      assert.strictEqual(r.code, 1)
      assert.strictEqual(r.stdout, "")
      assert.match(
        r.stderr.trim(),
        /^lmstudio-bridge: ConfigInvalid: Invalid --scenario=".*bad\.json": expected scenario JSON/
      )
    }))
})

describe("npm run demo", () => {
  it.live("runs the CLI against the embedded simulator end to end and stops it", () =>
    Effect.gen(function*() {
      const r = yield* Effect.promise(() => run(process.execPath, [join(repoRoot, "scripts", "demo.mjs")]))
      assert.strictEqual(r.code, 0, r.stderr)
      assert.include(r.stdout, "LM Studio is reachable at http://127.0.0.1:")
      assert.include(r.stdout, "qwen/qwen3-4b")
      assert.include(r.stdout, "lmstudio-bridge lets an MCP client")
      assert.include(r.stdout, "Demo finished")
    }))
})
