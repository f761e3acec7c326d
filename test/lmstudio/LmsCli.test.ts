/**
 * LmsCli against the `lms` shim as a real subprocess (talking to the simulator), and against stand-in executables
 * that misbehave on purpose: missing, hanging, printing garbage.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, Exit, Fiber, Layer, Option, Schedule } from "effect"
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { AppConfig, type AppConfigShape } from "../../src/Config.js"
import { hostArgs, LmsCli } from "../../src/lmstudio/LmsCli.js"
import { start } from "../../src/simulator/Simulator.js"
import { fakeExecutable, isAlive, lmsShimPath, tempDir } from "../helpers.js"

const lmsFor = (config: Partial<AppConfigShape> & Pick<AppConfigShape, "baseUrl">) =>
  Layer.build(LmsCli.Default.pipe(Layer.provide(Layer.mergeAll(AppConfig.layerFrom(config), NodeContext.layer)))).pipe(
    Effect.map(Context.get(LmsCli))
  )

const failure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") {
    throw new Error(`expected a typed failure, got ${String(exit)}`)
  }
  return exit.cause.error
}

const waitUntil = (check: () => boolean) =>
  Effect.sync(check).pipe(
    Effect.filterOrFail((ok) => ok, () => "not yet" as const),
    Effect.retry(Schedule.spaced(Duration.millis(20)).pipe(Schedule.upTo(Duration.seconds(5)))),
    Effect.orDie
  )

describe("LmsCli with the lms shim (subprocess)", () => {
  it.scopedLive("ls, ps, load with a TTL held by LM Studio, unload, unload --all, server status", () =>
    Effect.gen(function*() {
      const sim = yield* start({ loaded: [] })
      const lms = yield* lmsFor({ baseUrl: sim.baseUrl, lmsCliPath: Option.some(lmsShimPath) })
      assert.isTrue(lms.available)
      const models = yield* lms.ls()
      assert.include(models.map((m) => m.modelKey), "google/gemma-3-1b")
      assert.deepStrictEqual(yield* lms.ps(), [])
      const loaded = yield* lms.load("google/gemma-3-1b", { ttlSeconds: 300, contextLength: 8192 })
      assert.strictEqual(loaded.identifier, "google/gemma-3-1b")
      const second = yield* lms.load("google/gemma-3-1b", { ttlSeconds: 60, identifier: "gemma-b" })
      assert.strictEqual(second.identifier, "gemma-b")
      const ps = yield* lms.ps()
      assert.deepStrictEqual(ps.map((i) => [i.identifier, i.ttlMs, i.contextLength]), [
        ["google/gemma-3-1b", 300_000, 8192],
        ["gemma-b", 60_000, 4096]
      ])
      assert.isTrue(yield* lms.unload("gemma-b"))
      assert.isFalse(yield* lms.unload("never-loaded"))
      assert.deepStrictEqual(yield* lms.unloadAll(), ["google/gemma-3-1b"])
      assert.deepStrictEqual(yield* lms.serverStatus(), { running: true, port: sim.port })
      assert.strictEqual((yield* lms.breaker).state, "closed")
    }))

  it.scopedLive("a refused load is LmsCliFailed carrying stderr and the exit code", () =>
    Effect.gen(function*() {
      const sim = yield* start({ loaded: [] })
      const lms = yield* lmsFor({ baseUrl: sim.baseUrl, lmsCliPath: Option.some(lmsShimPath) })
      const e = failure(yield* Effect.exit(lms.load("no-such-model-anywhere", { ttlSeconds: 60 })))
      assert.strictEqual(e._tag, "LmsCliFailed")
      if (e._tag === "LmsCliFailed") {
        assert.strictEqual(e.exitCode, 1)
        assert.include(e.stderr, "No model found that matches model key \"no-such-model-anywhere\"")
        assert.deepStrictEqual(e.args.slice(0, 5), ["load", "no-such-model-anywhere", "-y", "--ttl", "60"])
      }
    }))
})

describe("LmsCli failure modes", () => {
  it.scopedLive("bad names are rejected before any process starts", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const marker = join(dir, "ran")
      const bin = fakeExecutable(
        dir,
        "lms",
        `require("fs").writeFileSync(${JSON.stringify(marker)}, process.argv.slice(2).join(" "))`
      )
      const lms = yield* lmsFor({ baseUrl: "http://127.0.0.1:1234", lmsCliPath: Option.some(bin) })
      for (const name of ["../../etc/passwd", "--help", "", "x".repeat(10_000), "a\u0000b"]) {
        const e = failure(yield* Effect.exit(lms.load(name, { ttlSeconds: 60 })))
        assert.strictEqual(e._tag, "InvalidModelName", JSON.stringify(name).slice(0, 40))
        assert.strictEqual(failure(yield* Effect.exit(lms.unload(name)))._tag, "InvalidModelName")
      }
      assert.isFalse(existsSync(marker))
      // A valid name does start the process (the stand-in just records its arguments).
      yield* Effect.exit(lms.load("qwen/qwen3-4b", { ttlSeconds: 60 }))
      assert.strictEqual(readFileSync(marker, "utf8"), "load qwen/qwen3-4b -y --ttl 60")
    }))

  it.scopedLive("a missing lms is LmsCliUnavailable", () =>
    Effect.gen(function*() {
      const lms = yield* lmsFor({ baseUrl: "http://127.0.0.1:1234", lmsCliPath: Option.some("/nonexistent/dir/lms") })
      const e = failure(yield* Effect.exit(lms.ps()))
      assert.strictEqual(e._tag, "LmsCliUnavailable")
      assert.include(e.hint, "LMS_CLI_PATH")
    }))

  it.scopedLive("a hanging lms is killed at the timeout; interrupting a call kills it too", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const pidFile = join(dir, "pid")
      const bin = fakeExecutable(
        dir,
        "lms",
        `require("fs").writeFileSync(${
          JSON.stringify(pidFile)
        }, String(process.pid)); process.on("SIGTERM", () => {}); setInterval(() => {}, 1000)`
      )
      const lms = yield* lmsFor({
        baseUrl: "http://127.0.0.1:1234",
        lmsCliPath: Option.some(bin),
        lmsTimeout: Duration.millis(800)
      })
      const e = failure(yield* Effect.exit(lms.ps()))
      assert.strictEqual(e._tag, "LmsCliTimeout")
      const pid = Number(readFileSync(pidFile, "utf8"))
      yield* waitUntil(() => !isAlive(pid))
      assert.isFalse(isAlive(pid))

      const patient = yield* lmsFor({
        baseUrl: "http://127.0.0.1:1234",
        lmsCliPath: Option.some(bin),
        lmsTimeout: Duration.seconds(60)
      })
      const fiber = yield* Effect.fork(patient.ps())
      yield* waitUntil(() => existsSync(pidFile) && Number(readFileSync(pidFile, "utf8")) !== pid)
      const second = Number(readFileSync(pidFile, "utf8"))
      assert.isTrue(isAlive(second))
      yield* Fiber.interrupt(fiber)
      yield* waitUntil(() => !isAlive(second))
      assert.isFalse(isAlive(second))
    }))

  it.scopedLive("unreadable JSON is LmsCliOutputInvalid; a non-zero exit is LmsCliFailed", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const garbage = fakeExecutable(dir, "lms-garbage", `process.stdout.write("LOADED MODELS\\n  qwen (idle)\\n")`)
      const lms = yield* lmsFor({ baseUrl: "http://127.0.0.1:1234", lmsCliPath: Option.some(garbage) })
      const e = failure(yield* Effect.exit(lms.ps()))
      assert.strictEqual(e._tag, "LmsCliOutputInvalid")
      const crashing = fakeExecutable(
        dir,
        "lms-crash",
        `process.stderr.write("Failed to start or connect to local LM Studio API server.\\n"); process.exit(1)`
      )
      const lms2 = yield* lmsFor({ baseUrl: "http://127.0.0.1:1234", lmsCliPath: Option.some(crashing) })
      const e2 = failure(yield* Effect.exit(lms2.ls()))
      assert.strictEqual(e2._tag, "LmsCliFailed")
      assert.include(e2.message, "Failed to start or connect")
    }))

  it("points lms at a non-default server with --host/--port, and leaves the local default alone", () => {
    assert.deepStrictEqual(hostArgs("http://127.0.0.1:1234"), [])
    assert.deepStrictEqual(hostArgs("http://localhost:1234"), [])
    assert.deepStrictEqual(hostArgs("http://gpu-box:4321"), ["--host", "gpu-box", "--port", "4321"])
  })
})
