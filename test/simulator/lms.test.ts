/**
 * The `lms` shim as a real subprocess (the built executable, no shell): outputs, the stdout/stderr split, messages
 * and exit codes of protocol §6 — what the bridge's LmsCli port will face with the real CLI.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { start } from "../../src/simulator/Simulator.js"
import { j, lmsShimPath, runEffect } from "../helpers.js"

const lms = (url: string, ...args: Array<string>) => runEffect(lmsShimPath, args, { LMS_SIM_URL: url })

describe("lms shim (subprocess)", () => {
  it.scopedLive("ps --json and ls --json print JSON on stdout only, exit 0", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const ps = yield* lms(sim.baseUrl, "ps", "--json")
      assert.strictEqual(ps.code, 0)
      assert.strictEqual(ps.stderr, "")
      const instances = j(JSON.parse(ps.stdout)).arr
      assert.strictEqual(instances.length, 1)
      const first = instances[0]!
      assert.strictEqual(first.get("identifier").str, "qwen/qwen3-4b")
      assert.strictEqual(first.get("status").str, "idle")
      assert.strictEqual(first.get("ttlMs").raw, null)
      for (const key of ["modelKey", "contextLength", "queued", "parallel", "lastUsedTime", "maxContextLength"]) {
        assert.isTrue(first.has(key), key)
      }
      const ls = yield* lms(sim.baseUrl, "ls", "--json")
      assert.strictEqual(ls.code, 0)
      const models = j(JSON.parse(ls.stdout)).arr
      assert.strictEqual(models.length, 5)
      assert.strictEqual(models.find((m) => m.get("modelKey").str.includes("vl"))!.get("format").str, "safetensors")
      const llms = j(JSON.parse((yield* lms(sim.baseUrl, "ls", "--json", "--llm")).stdout)).arr
      assert.isTrue(llms.every((m) => m.get("type").str === "llm"))
    }))

  it.scopedLive("load -y --ttl prints the success lines on stderr, nothing on stdout, and LM Studio holds the TTL", () =>
    Effect.gen(function*() {
      const sim = yield* start({ loaded: [] })
      const r = yield* lms(sim.baseUrl, "load", "google/gemma-3-1b", "-y", "--ttl", "300", "--context-length", "8192")
      assert.strictEqual(r.code, 0)
      assert.strictEqual(r.stdout, "")
      assert.match(
        r.stderr,
        /^Model loaded successfully in \d+(\.\d+)?(ms|s)\.\n\(\d+\.\d\d (MiB|GiB)\)\nTo use the model in the API\/SDK, use the identifier "google\/gemma-3-1b"\.\n$/
      )
      const loaded = (yield* sim.state.get).instances
      assert.strictEqual(loaded[0]!.ttlMs, 300_000)
      assert.strictEqual(loaded[0]!.contextLength, 8192)
      const again = yield* lms(sim.baseUrl, "load", "gemma-3-1b", "-y")
      assert.include(again.stderr, "identifier \"google/gemma-3-1b:2\"")
      assert.strictEqual((yield* sim.state.get).instances[1]!.ttlMs, null)
    }))

  it.scopedLive("--keep-loaded is not a flag: commander's error on stderr, exit 1, nothing loaded", () =>
    Effect.gen(function*() {
      const sim = yield* start({ loaded: [] })
      const r = yield* lms(sim.baseUrl, "load", "google/gemma-3-1b", "-y", "--keep-loaded")
      assert.strictEqual(r.code, 1)
      assert.strictEqual(r.stdout, "")
      assert.strictEqual(r.stderr.trim(), "error: unknown option '--keep-loaded'")
      assert.strictEqual((yield* sim.state.get).instances.length, 0)
    }))

  it.scopedLive("bad option values and unknown models fail with exit 1", () =>
    Effect.gen(function*() {
      const sim = yield* start({ loaded: [] })
      const ttl = yield* lms(sim.baseUrl, "load", "google/gemma-3-1b", "-y", "--ttl", "0")
      assert.strictEqual(ttl.code, 1)
      assert.include(
        ttl.stderr,
        "error: option '--ttl <seconds>' argument '0' is invalid. Number out of range, must be at least 1"
      )
      const nan = yield* lms(sim.baseUrl, "load", "google/gemma-3-1b", "-y", "--ttl", "soon")
      assert.include(nan.stderr, "Not a number")
      const missing = yield* lms(sim.baseUrl, "load", "no-such-model-xyz", "-y")
      assert.strictEqual(missing.code, 1)
      assert.include(missing.stderr, "Model not found")
      assert.include(missing.stderr, "No model found that matches model key \"no-such-model-xyz\".")
      const exact = yield* lms(sim.baseUrl, "load", "gemma", "-y", "--exact")
      assert.strictEqual(exact.code, 1)
      assert.include(exact.stderr, "No model found with path being exactly \"gemma\".")
      const unknownCmd = yield* lms(sim.baseUrl, "frobnicate")
      assert.strictEqual(unknownCmd.code, 1)
      assert.include(unknownCmd.stderr, "error: unknown command 'frobnicate'")
    }))

  it.scopedLive("unload: unknown identifier exits 0 with 'Model Not Found'; nothing loaded exits 1; --all counts", () =>
    Effect.gen(function*() {
      const sim = yield* start({ loaded: ["qwen/qwen3-4b", "google/gemma-3-1b"] })
      const unknown = yield* lms(sim.baseUrl, "unload", "nope")
      assert.strictEqual(unknown.code, 0)
      assert.include(unknown.stderr, "Cannot find a model with the identifier \"nope\".")
      const one = yield* lms(sim.baseUrl, "unload", "qwen/qwen3-4b")
      assert.strictEqual(one.code, 0)
      assert.strictEqual(one.stderr.trim(), "Model \"qwen/qwen3-4b\" unloaded.")
      const all = yield* lms(sim.baseUrl, "unload", "--all")
      assert.strictEqual(all.code, 0)
      assert.include(all.stderr, "Unloading \"google/gemma-3-1b\"...")
      assert.include(all.stderr, "Unloaded 1 model.")
      const none = yield* lms(sim.baseUrl, "unload")
      assert.strictEqual(none.code, 1)
      assert.include(none.stderr, `You don't have any models loaded. Use "lms load" to load a model.`)
      const empty = yield* lms(sim.baseUrl, "ps")
      assert.strictEqual(empty.code, 0)
      assert.strictEqual(empty.stdout, "")
      assert.include(empty.stderr, "No models are currently loaded.")
      assert.strictEqual((yield* lms(sim.baseUrl, "ps", "--json")).stdout.trim(), "[]")
    }))

  it.scopedLive("server status --json on stdout; an unreachable server is a clear error with exit 1", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const status = yield* lms(sim.baseUrl, "server", "status", "--json")
      assert.strictEqual(status.code, 0)
      assert.deepStrictEqual(JSON.parse(status.stdout), { running: true, port: sim.port })
      const human = yield* lms(sim.baseUrl, "server", "status")
      assert.strictEqual(human.stdout, "")
      assert.strictEqual(human.stderr.trim(), `The server is running on port ${sim.port}.`)
      const down = yield* lms("http://127.0.0.1:1", "ps", "--json")
      assert.strictEqual(down.code, 1)
      assert.strictEqual(down.stdout, "")
      assert.include(down.stderr, "Failed to start or connect to local LM Studio API server.")
      const explicit = yield* lms(sim.baseUrl, "ps", "--host", "127.0.0.1", "--port", "1")
      assert.include(explicit.stderr, "The server does not appear to be running at 127.0.0.1:1")
      const version = yield* lms(sim.baseUrl, "--version")
      assert.strictEqual(version.code, 0)
      assert.match(version.stdout, /^CLI commit: /)
    }))
})
