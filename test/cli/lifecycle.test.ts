/**
 * The lifecycle commands of the built binary against the simulator, with each backend: after
 * `models load X --ttl 999999` exits, the simulator still holds X with a TTL of at most 3600 s.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { start } from "../../src/simulator/Simulator.js"
import { binPath, j, lmsShimPath, runEffect } from "../helpers.js"

const cli = (baseUrl: string, lifecycle: string, ...args: Array<string>) =>
  runEffect(process.execPath, [binPath, ...args], {
    LMSTUDIO_BASE_URL: baseUrl,
    LMSTUDIO_LIFECYCLE: lifecycle,
    LMS_CLI_PATH: lmsShimPath,
    LOG_LEVEL: undefined,
    DEFAULT_MODEL: undefined
  })

describe("models load / loaded / ensure / unload (CLI)", () => {
  for (const backend of ["cli", "jit"] as const) {
    it.scopedLive(`${backend}: the TTL outlives the command, capped at 3600 s`, () =>
      Effect.gen(function*() {
        const sim = yield* start({ loaded: [] })
        const r = yield* cli(sim.baseUrl, backend, "models", "load", "google/gemma-3-1b", "--ttl", "999999", "--json")
        assert.strictEqual(r.code, 0, r.stderr)
        const result = j(JSON.parse(r.stdout))
        assert.strictEqual(result.get("via").str, backend)
        assert.strictEqual(result.get("ttl_seconds").num, 3600)
        assert.strictEqual(result.get("ttl_enforced_by").str, "lmstudio")
        assert.strictEqual(result.get("verified").raw, true)
        const held = (yield* sim.state.get).instances.find((i) => i.identifier === "google/gemma-3-1b")
        assert.isDefined(held)
        assert.isNotNull(held!.ttlMs)
        assert.isAtMost(held!.ttlMs!, 3_600_000)
      }))
  }

  it.scopedLive("rest: LM Studio holds no TTL for a REST load, so a one-shot command never leaves it loaded without one", () =>
    Effect.gen(function*() {
      // LM Studio's behaviour: the load is taken, its `ttl` ignored. The bridge says it enforces the TTL, and as the
      // command exits it unloads the model rather than leave it resident forever.
      const ignoring = yield* start({ loaded: [] })
      const r = yield* cli(ignoring.baseUrl, "rest", "models", "load", "google/gemma-3-1b", "--ttl", "600", "--json")
      assert.strictEqual(r.code, 0, r.stderr)
      const result = j(JSON.parse(r.stdout))
      assert.strictEqual(result.get("ttl_enforced_by").str, "bridge")
      assert.isTrue(result.get("notes").arr.some((n) => n.str.includes("one-shot command unloads it as it exits")))
      assert.deepStrictEqual((yield* ignoring.state.get).instances, [])
      // A server seen holding the TTL (lms ps shows it): LM Studio's, and it outlives the command.
      const accepting = yield* start({ loaded: [], settings: { restLoadTtl: "accept" } })
      const kept = j(
        JSON.parse(
          (yield* cli(accepting.baseUrl, "rest", "models", "load", "google/gemma-3-1b", "--ttl", "999999", "--json"))
            .stdout
        )
      )
      assert.strictEqual(kept.get("ttl_enforced_by").str, "lmstudio")
      assert.strictEqual(kept.get("ttl_seconds").num, 3600)
      assert.strictEqual(
        (yield* accepting.state.get).instances.find((i) => i.identifier === "google/gemma-3-1b")?.ttlMs,
        3_600_000
      )
    }))

  it.scopedLive("loaded lists instances with TTL and ownership; ensure does not load twice; unload --all empties", () =>
    Effect.gen(function*() {
      const sim = yield* start({ loaded: ["qwen/qwen3-4b"] })
      const ensure = j(
        JSON.parse((yield* cli(sim.baseUrl, "cli", "models", "ensure", "google/gemma-3-1b", "--keep", "--json")).stdout)
      )
      assert.strictEqual(ensure.get("already_loaded").raw, false)
      assert.strictEqual(ensure.get("ttl_seconds").num, 600)
      const again = j(
        JSON.parse((yield* cli(sim.baseUrl, "cli", "models", "ensure", "google/gemma-3-1b", "--json")).stdout)
      )
      assert.strictEqual(again.get("already_loaded").raw, true)
      const loaded =
        j(JSON.parse((yield* cli(sim.baseUrl, "cli", "models", "loaded", "--json")).stdout)).get("instances").arr
      assert.deepStrictEqual(
        loaded.map((i) => [i.get("identifier").str, i.get("ttl_seconds").raw]),
        [
          ["qwen/qwen3-4b", null],
          ["google/gemma-3-1b", 600]
        ]
      )
      const table = yield* cli(sim.baseUrl, "cli", "models", "loaded")
      assert.match(table.stdout, /^IDENTIFIER\s+MODEL\s+TYPE\s+CONTEXT\s+TTL\s+TTL LEFT\s+STATUS\s+DEVICE/)
      const unloaded = j(JSON.parse((yield* cli(sim.baseUrl, "cli", "models", "unload", "--all", "--json")).stdout))
      assert.deepStrictEqual(unloaded.get("unloaded").raw, ["qwen/qwen3-4b", "google/gemma-3-1b"])
      assert.strictEqual((yield* sim.state.get).instances.length, 0)
    }))

  it.scopedLive("bad input fails with one clear line: a bad name, a bad TTL, --keep with --temp, unload without a target", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const cases: ReadonlyArray<[ReadonlyArray<string>, string]> = [
        [["models", "load", "../../etc/passwd"], "InvalidModelName"],
        [["models", "load", "google/gemma-3-1b", "--ttl", "0"], "InvalidTtl"],
        [["models", "load", "google/gemma-3-1b", "--keep", "--temp"], "InvalidArguments"],
        [["models", "unload"], "InvalidArguments"],
        [["models", "ensure", "qwen/qwen3-4"], "ModelNotFound"]
      ]
      for (const [args, tag] of cases) {
        const r = yield* cli(sim.baseUrl, "auto", ...args)
        assert.strictEqual(r.code, 1, args.join(" "))
        assert.strictEqual(r.stdout, "")
        assert.match(r.stderr.trim(), new RegExp(`^lmstudio-bridge: ${tag}: .+ \\(hint: .+\\)$`))
      }
      assert.strictEqual((yield* sim.state.get).instances.map((i) => i.identifier).join(), "qwen/qwen3-4b")
    }))
})
