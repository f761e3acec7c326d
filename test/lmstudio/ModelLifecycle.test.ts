/**
 * ModelLifecycle against the simulator (real HTTP) and the lms shim (real subprocess): every backend, TTLs held by
 * LM Studio, verification, retries, fallback, concurrency, leases; plus TTL and retry-schedule properties.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, Exit, FastCheck as fc, Fiber, Layer, Option, Schedule, TestClock } from "effect"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { AppConfig, type AppConfigShape } from "../../src/Config.js"
import { LmsCli } from "../../src/lmstudio/LmsCli.js"
import { LmStudioClient } from "../../src/lmstudio/LmStudioClient.js"
import { ABSURD_TTL_SECONDS, chooseBackend, ttlFor } from "../../src/lmstudio/LoadPolicy.js"
import { ModelLifecycle } from "../../src/lmstudio/ModelLifecycle.js"
import * as NodeTransport from "../../src/lmstudio/transport/NodeTransport.js"
import { modelLoadRetry } from "../../src/resilience/Policies.js"
import { type SimulatorOptions, start } from "../../src/simulator/Simulator.js"
import { fakeExecutable, http, lmsShimPath, tempDir } from "../helpers.js"

const fast: Partial<AppConfigShape> = {
  verifyInterval: Duration.millis(10),
  verifyAttempts: 3,
  loadRetryBase: Duration.millis(10),
  lmsCliPath: Option.none()
}

const lifecycleFor = (config: Partial<AppConfigShape> & Pick<AppConfigShape, "baseUrl">) =>
  Layer.build(
    Layer.mergeAll(ModelLifecycle.Default, LmStudioClient.Default, LmsCli.Default).pipe(
      Layer.provide(
        Layer.mergeAll(NodeTransport.layer, NodeContext.layer).pipe(
          Layer.provideMerge(AppConfig.layerFrom({ ...fast, ...config }))
        )
      )
    )
  ).pipe(
    Effect.map((ctx) => ({
      lifecycle: Context.get(ctx, ModelLifecycle),
      client: Context.get(ctx, LmStudioClient),
      lms: Context.get(ctx, LmsCli)
    }))
  )

const setup = (options: SimulatorOptions, config: Partial<AppConfigShape> = {}) =>
  Effect.gen(function*() {
    const sim = yield* start(options)
    const { lifecycle, client, lms } = yield* lifecycleFor({ baseUrl: sim.baseUrl, ...config })
    const instance = (id: string) => Effect.map(sim.state.get, (d) => d.instances.find((i) => i.identifier === id))
    const hits = (path: string) => Effect.map(sim.state.get, (d) => d.counters.byPath[path] ?? 0)
    const ids = Effect.map(sim.state.get, (d) => d.instances.map((i) => i.identifier))
    return { sim, lifecycle, client, lms, instance, hits, ids }
  })

const failure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") {
    throw new Error(`expected a typed failure, got ${String(exit)}`)
  }
  return exit.cause.error
}

const eventually = <A>(read: Effect.Effect<A>, ok: (a: A) => boolean) =>
  read.pipe(
    Effect.filterOrFail(ok, () => "not yet" as const),
    Effect.retry(Schedule.spaced(Duration.millis(50)).pipe(Schedule.upTo(Duration.seconds(10)))),
    Effect.orDie
  )

describe("ModelLifecycle backends (LM Studio holds the TTL)", () => {
  it.scopedLive("cli: lms load -y --ttl; the simulator holds the TTL; the result says who enforces it", () =>
    Effect.gen(function*() {
      const { lifecycle, instance } = yield* setup({ loaded: [] }, {
        lifecycle: "cli",
        lmsCliPath: Option.some(lmsShimPath)
      })
      const r = yield* lifecycle.load({ model: "google/gemma-3-1b", ttlSeconds: 120 })
      assert.strictEqual(r.via, "cli")
      assert.strictEqual(r.identifier, "google/gemma-3-1b")
      assert.strictEqual(r.ttlEnforcedBy, "lmstudio")
      assert.isTrue(r.verified)
      assert.include(r.viaReason, "LMSTUDIO_LIFECYCLE=cli")
      assert.strictEqual((yield* instance("google/gemma-3-1b"))?.ttlMs, 120_000)
    }))

  it.scopedLive("jit: a one-token request carrying ttl; the simulator holds it", () =>
    Effect.gen(function*() {
      const { lifecycle, instance } = yield* setup({ loaded: [] }, { lifecycle: "jit" })
      const r = yield* lifecycle.load({ model: "google/gemma-3-1b", keepLoaded: true })
      assert.strictEqual(r.via, "jit")
      assert.strictEqual(r.ttlSeconds, 600)
      assert.strictEqual((yield* instance("google/gemma-3-1b"))?.ttlMs, 600_000)
      assert.isTrue(r.notes.some((n) => n.includes("auto-evict")))
      const emb = yield* lifecycle.load({ model: "text-embedding-nomic-embed-text-v1.5" })
      assert.strictEqual(emb.ttlSeconds, 300)
      assert.strictEqual((yield* instance("text-embedding-nomic-embed-text-v1.5"))?.ttlMs, 300_000)
    }))

  it.scopedLive("rest: LM Studio holds no TTL for a REST load, so the bridge enforces it and says so — unless lms ps shows LM Studio holding it", () =>
    Effect.gen(function*() {
      // LM Studio's behaviour (the simulator's default): the request is taken, `ttl` is ignored (protocol §12.1).
      const ignoring = yield* setup({ loaded: [] }, { lifecycle: "rest" })
      const i = yield* ignoring.lifecycle.load({ model: "google/gemma-3-1b", ttlSeconds: 90 })
      assert.strictEqual((yield* ignoring.instance("google/gemma-3-1b"))?.ttlMs, null)
      assert.strictEqual(i.ttlEnforcedBy, "bridge")
      assert.isTrue(i.notes.some((n) => n.includes("REST loads hold no idle TTL") && n.includes("while it runs")))
      // A server that took the field, but nothing shows it holds the TTL (no lms): still the bridge's.
      const unseen = yield* setup({ loaded: [], settings: { restLoadTtl: "accept" } }, { lifecycle: "rest" })
      assert.strictEqual(
        (yield* unseen.lifecycle.load({ model: "google/gemma-3-1b", ttlSeconds: 90 })).ttlEnforcedBy,
        "bridge"
      )
      // lms ps shows LM Studio holding exactly this TTL: then, and only then, LM Studio's.
      const seen = yield* setup({ loaded: [], settings: { restLoadTtl: "accept" } }, {
        lifecycle: "rest",
        lmsCliPath: Option.some(lmsShimPath)
      })
      const a = yield* seen.lifecycle.load({ model: "google/gemma-3-1b", ttlSeconds: 90 })
      assert.strictEqual(a.ttlEnforcedBy, "lmstudio")
      assert.strictEqual((yield* seen.instance("google/gemma-3-1b"))?.ttlMs, 90_000)
      const refusing = yield* setup({ loaded: [], settings: { restLoadTtl: "reject" } }, {
        lifecycle: "rest",
        lmsCliPath: Option.some(lmsShimPath)
      })
      const b = yield* refusing.lifecycle.load({ model: "google/gemma-3-1b", ttlSeconds: 90 })
      assert.strictEqual(b.ttlEnforcedBy, "bridge")
      assert.isTrue(b.notes.some((n) => n.includes("refused a `ttl`")))
      assert.strictEqual((yield* refusing.instance("google/gemma-3-1b"))?.ttlMs, null)
    }))

  it.scopedLive("an absurd TTL is capped at the maximum with a note, whatever the backend", () =>
    Effect.gen(function*() {
      for (const lifecycle of ["cli", "jit"] as const) {
        const s = yield* setup({ loaded: [] }, { lifecycle, lmsCliPath: Option.some(lmsShimPath) })
        const r = yield* s.lifecycle.load({ model: "google/gemma-3-1b", ttlSeconds: 999_999 })
        assert.strictEqual(r.ttlSeconds, 3600)
        assert.isTrue(r.notes.some((n) => n.includes("capped")))
        assert.strictEqual((yield* s.instance("google/gemma-3-1b"))?.ttlMs, 3_600_000)
      }
    }))

  it.scopedLive("with MODEL_VERIFY_PROBE a fresh load is also probed with a one-token request", () =>
    Effect.gen(function*() {
      const probed = yield* setup({ loaded: [], settings: { restLoadTtl: "accept" } }, {
        lifecycle: "rest",
        verifyProbe: true
      })
      yield* probed.lifecycle.load({ model: "google/gemma-3-1b" })
      assert.strictEqual(yield* probed.hits("/v1/chat/completions"), 1)
      const plain = yield* setup({ loaded: [], settings: { restLoadTtl: "accept" } }, { lifecycle: "rest" })
      yield* plain.lifecycle.load({ model: "google/gemma-3-1b" })
      assert.strictEqual(yield* plain.hits("/v1/chat/completions"), 0)
    }))

  it.scopedLive("auto with a broken lms falls back to JIT with a warning in the result", () =>
    Effect.gen(function*() {
      const s = yield* setup({ loaded: [] }, { lifecycle: "auto", lmsCliPath: Option.some("/nonexistent/lms") })
      const r = yield* s.lifecycle.load({ model: "google/gemma-3-1b" })
      assert.strictEqual(r.via, "jit")
      assert.isTrue(r.notes.some((n) => n.includes("cli load failed (LmsCliUnavailable")))
      const status = yield* s.lifecycle.status
      assert.strictEqual(status.backend, "cli")
    }))
})

describe("ModelLifecycle safety", () => {
  it.scopedLive("100 concurrent ensureLoaded of one model cause exactly one load", () =>
    Effect.gen(function*() {
      const s = yield* setup({ loaded: [] }, { lifecycle: "jit" })
      const results = yield* Effect.all(
        Array.from({ length: 100 }, () => s.lifecycle.ensureLoaded({ model: "google/gemma-3-1b" })),
        { concurrency: "unbounded" }
      )
      assert.isTrue(results.every((r) => r.identifier === "google/gemma-3-1b" && r.verified))
      assert.strictEqual(yield* s.hits("/v1/chat/completions"), 1)
      assert.strictEqual((yield* s.sim.state.get).instances.length, 1)
    }))

  it.scopedLive("a load that reports success but never appears is ModelVerificationFailed after the retries", () =>
    Effect.gen(function*() {
      const s = yield* setup({ loaded: [], faults: { loadNeverLoads: true }, settings: { restLoadTtl: "accept" } }, {
        lifecycle: "rest"
      })
      const e = failure(yield* Effect.exit(s.lifecycle.load({ model: "google/gemma-3-1b" })))
      assert.strictEqual(e._tag, "ModelVerificationFailed")
      if (e._tag === "ModelVerificationFailed") assert.strictEqual(e.attempts, 3)
      assert.strictEqual(yield* s.hits("/api/v1/models/load"), 4)
    }))

  it.scopedLive("a model already loaded by someone else is reported, not loaded again", () =>
    Effect.gen(function*() {
      const s = yield* setup({ loaded: ["qwen/qwen3-4b"] }, { lifecycle: "jit" })
      const r = yield* s.lifecycle.ensureLoaded({ model: "qwen/qwen3-4b" })
      assert.isTrue(r.alreadyLoaded)
      assert.strictEqual(r.via, "existing")
      assert.isTrue(r.notes.some((n) => n.includes("will not unload")))
      assert.strictEqual(yield* s.hits("/v1/chat/completions"), 0)
      const listed = yield* s.lifecycle.listLoaded
      assert.deepStrictEqual(listed.map((m) => [m.identifier, m.ownedByBridge]), [["qwen/qwen3-4b", false]])
    }))

  it.scopedLive("a model unloaded mid-run is re-ensured once and the work retried", () =>
    Effect.gen(function*() {
      const s = yield* setup({ loaded: [], settings: { jit: false, restLoadTtl: "accept" } }, { lifecycle: "rest" })
      let calls = 0
      const answer = yield* s.lifecycle.withModel({ model: "google/gemma-3-1b" }, (held) =>
        held.request((m) =>
          Effect.gen(function*() {
            calls++
            if (calls === 1) {
              yield* s.sim.state.unload(m.identifier)
            }
            return yield* s.client.chat({ model: m.identifier, messages: [{ role: "user", content: "still there?" }] })
          })
        ))
      assert.strictEqual(answer.content, "You said: still there?")
      assert.strictEqual(calls, 2)
      assert.strictEqual(yield* s.hits("/api/v1/models/load"), 2)
    }))

  it.scopedLive("bad names and TTLs are rejected before any process or request", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const marker = join(dir, "ran")
      const bin = fakeExecutable(dir, "lms", `require("fs").writeFileSync(${JSON.stringify(marker)}, "x")`)
      const s = yield* setup({}, { lifecycle: "cli", lmsCliPath: Option.some(bin) })
      for (const model of ["../../etc/passwd", "--help", "", "m".repeat(10_000)]) {
        assert.strictEqual(failure(yield* Effect.exit(s.lifecycle.load({ model })))._tag, "InvalidModelName")
        assert.strictEqual(failure(yield* Effect.exit(s.lifecycle.ensureLoaded({ model })))._tag, "InvalidModelName")
        assert.strictEqual(failure(yield* Effect.exit(s.lifecycle.unload(model)))._tag, "InvalidModelName")
      }
      for (const ttlSeconds of [0, -5, 1.5, Number.POSITIVE_INFINITY, ABSURD_TTL_SECONDS + 1]) {
        assert.strictEqual(
          failure(yield* Effect.exit(s.lifecycle.load({ model: "google/gemma-3-1b", ttlSeconds })))._tag,
          "InvalidTtl"
        )
      }
      assert.strictEqual((yield* s.sim.state.get).counters.requests, 0)
      assert.isFalse(existsSync(marker))
    }))

  it.scopedLive("a lease idle for its TTL unloads a model the bridge loaded, never one someone else loaded", () =>
    Effect.gen(function*() {
      const s = yield* setup({ loaded: ["qwen/qwen3-4b"], settings: { restLoadTtl: "reject" } }, { lifecycle: "rest" })
      const mine = yield* s.lifecycle.ensureLoaded({ model: "google/gemma-3-1b", ttlSeconds: 1 })
      assert.strictEqual(mine.ttlEnforcedBy, "bridge")
      const foreign = yield* s.lifecycle.ensureLoaded({ model: "qwen/qwen3-4b", ttlSeconds: 1 })
      assert.isTrue(foreign.alreadyLoaded)
      const after = yield* eventually(
        s.sim.state.get,
        (d) => !d.instances.some((i) => i.identifier === "google/gemma-3-1b")
      )
      assert.deepStrictEqual(after.instances.map((i) => i.identifier), ["qwen/qwen3-4b"])
    }))

  it.scopedLive("when the bridge stops, models whose TTL LM Studio holds stay; bridge-enforced ones are unloaded", () =>
    Effect.gen(function*() {
      for (const [restLoadTtl, survives] of [["accept", true], ["ignore", false], ["reject", false]] as const) {
        const sim = yield* start({ loaded: [], settings: { restLoadTtl } })
        yield* Effect.scoped(
          Effect.flatMap(
            lifecycleFor({ baseUrl: sim.baseUrl, lifecycle: "rest", lmsCliPath: Option.some(lmsShimPath) }),
            ({ lifecycle }) => lifecycle.ensureLoaded({ model: "google/gemma-3-1b", ttlSeconds: 600 })
          )
        )
        const left = (yield* sim.state.get).instances.map((i) => i.identifier)
        assert.deepStrictEqual(left, survives ? ["google/gemma-3-1b"] : [], restLoadTtl)
      }
    }))

  it.scopedLive("a lease held by running work is not released while the work runs", () =>
    Effect.gen(function*() {
      const s = yield* setup({ loaded: [], settings: { restLoadTtl: "reject" } }, { lifecycle: "rest" })
      const held = yield* s.lifecycle.withModel({ model: "google/gemma-3-1b", ttlSeconds: 1 }, () =>
        Effect.gen(function*() {
          yield* Effect.sleep(Duration.millis(1500))
          return (yield* s.sim.state.get).instances.map((i) =>
            i.identifier
          )
        }))
      assert.deepStrictEqual(held, ["google/gemma-3-1b"])
    }))
})

describe("ModelLifecycle truth (issue 11): what LM Studio has, not what the bridge remembers", () => {
  const cli = { lifecycle: "cli" as const, lmsCliPath: Option.some(lmsShimPath) }

  it.scopedLive("a load that does not appear after an out-of-band unload fails with ModelVerificationFailed (never a stale success)", () =>
    Effect.gen(function*() {
      const s = yield* setup({ loaded: [] }, { lifecycle: "rest" })
      assert.isFalse((yield* s.lifecycle.ensureLoaded({ model: "google/gemma-3-1b" })).alreadyLoaded)
      yield* s.sim.state.unload("google/gemma-3-1b")
      yield* s.sim.state.setFaults({ loadNeverLoads: true })
      const e = failure(yield* Effect.exit(s.lifecycle.ensureLoaded({ model: "google/gemma-3-1b" })))
      assert.strictEqual(e._tag, "ModelVerificationFailed")
    }))

  it.scopedLive("a lease a newer listing contradicts is dropped before the request: no request meets the missing model", () =>
    Effect.gen(function*() {
      // A listing is never trusted past MODEL_CACHE_TTL_SECONDS; 0 here, so each call reads a fresh one.
      const s = yield* setup({ loaded: [], settings: { jit: false } }, { lifecycle: "rest", modelCacheTtlSeconds: 0 })
      const ask = (content: string) =>
        s.lifecycle.withModel(
          { model: "google/gemma-3-1b" },
          (held) => held.request((m) => s.client.chat({ model: m.identifier, messages: [{ role: "user", content }] }))
        )
      assert.strictEqual((yield* ask("one")).content, "You said: one")
      yield* s.sim.state.unload("google/gemma-3-1b")
      assert.strictEqual((yield* ask("two")).content, "You said: two")
      assert.strictEqual(yield* s.hits("/v1/chat/completions"), 2, "the second request went to a loaded model at once")
      assert.strictEqual(yield* s.hits("/api/v1/models/load"), 2)
    }))

  it.scopedLive("loading a model that is loaded already gives the existing instance, not a key:2 copy; a new identifier makes one on purpose", () =>
    Effect.gen(function*() {
      const s = yield* setup({ loaded: [] }, cli)
      assert.isFalse((yield* s.lifecycle.load({ model: "google/gemma-3-1b" })).alreadyLoaded)
      const again = yield* s.lifecycle.load({ model: "google/gemma-3-1b", ttlSeconds: 900 })
      assert.deepStrictEqual([again.alreadyLoaded, again.via, again.identifier], [
        true,
        "existing",
        "google/gemma-3-1b"
      ])
      assert.isTrue(again.notes.some((n) => n.includes("second instance")))
      // Concurrent ensures with different TTLs are different leases, and still one load.
      yield* Effect.all(
        [300, 600, 900, 1200].map((ttlSeconds) => s.lifecycle.ensureLoaded({ model: "qwen/qwen3-4b", ttlSeconds })),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(yield* s.ids, ["google/gemma-3-1b", "qwen/qwen3-4b"])
      const copy = yield* s.lifecycle.load({ model: "google/gemma-3-1b", identifier: "gemma-copy" })
      assert.deepStrictEqual([copy.alreadyLoaded, copy.identifier], [false, "gemma-copy"])
      assert.deepStrictEqual(yield* s.ids, ["google/gemma-3-1b", "qwen/qwen3-4b", "gemma-copy"])
    }))

  it.scopedLive("context and parallel come from the loaded instance: less context than asked is reported, with a note", () =>
    Effect.gen(function*() {
      const s = yield* setup({ loaded: [], faults: { contextCap: 2048 } }, cli)
      const r = yield* s.lifecycle.load({ model: "google/gemma-3-1b", contextLength: 8192 })
      assert.deepStrictEqual([r.contextLength, r.parallel], [2048, 4])
      assert.isTrue(r.notes.some((n) => n.includes("context of 2048 tokens (8192 were asked)")))
      // An instance someone loaded with 2 parallel slots: what the bridge reports and its permits use.
      yield* s.sim.state.clearFaults
      yield* http(s.sim, "POST", "/__sim/lms/load", { model: "qwen/qwen3-4b", parallel: 2, contextLength: 16384 })
      const q = yield* s.lifecycle.ensureLoaded({ model: "qwen/qwen3-4b" })
      assert.deepStrictEqual([q.alreadyLoaded, q.contextLength, q.parallel], [true, 16384, 2])
      const held = yield* s.lifecycle.withModel({ model: "qwen/qwen3-4b" }, (h) => Effect.succeed(h.current()))
      assert.strictEqual(held.parallel, 2)
    }))

  it.scopedLive("a model someone else loaded: who holds its TTL is what lms ps shows (LM Studio, nobody), else unknown", () =>
    Effect.gen(function*() {
      const s = yield* setup({ loaded: ["qwen/qwen3-4b"] }, cli)
      yield* http(s.sim, "POST", "/__sim/lms/load", { model: "google/gemma-3-1b", ttlSeconds: 120 })
      const manual = yield* s.lifecycle.ensureLoaded({ model: "qwen/qwen3-4b" })
      assert.deepStrictEqual([manual.ttlEnforcedBy, manual.ttlSeconds], ["nobody", undefined])
      assert.isTrue(manual.notes.some((n) => n.includes("stays loaded until someone unloads it")))
      const timed = yield* s.lifecycle.ensureLoaded({ model: "google/gemma-3-1b" })
      assert.deepStrictEqual([timed.ttlEnforcedBy, timed.ttlSeconds], ["lmstudio", 120])
      const blind = yield* setup({ loaded: ["qwen/qwen3-4b"] }, { lifecycle: "jit" })
      assert.strictEqual((yield* blind.lifecycle.ensureLoaded({ model: "qwen/qwen3-4b" })).ttlEnforcedBy, "unknown")
    }))

  it.scopedLive("LM Link: an instance on another device is shown with its device", () =>
    Effect.gen(function*() {
      const s = yield* setup({ loaded: [] }, cli)
      yield* http(s.sim, "POST", "/__sim/lms/load", { model: "openai/gpt-oss-20b", device: "studio-mac" })
      const listed = yield* s.lifecycle.listLoaded
      assert.deepStrictEqual(listed.map((m) => [m.identifier, m.device]), [["openai/gpt-oss-20b", "studio-mac"]])
      assert.strictEqual((yield* s.lifecycle.ensureLoaded({ model: "openai/gpt-oss-20b" })).device, "studio-mac")
    }))

  it.scopedLive("failures seen through lms count against the LM Studio breaker shared with HTTP; a refusal by lms does not", () =>
    Effect.gen(function*() {
      const s = yield* setup({}, cli)
      for (let i = 0; i < 3; i++) yield* Effect.exit(s.lms.load("no/such-model", { ttlSeconds: 60 }))
      assert.strictEqual((yield* s.client.breaker).consecutiveFailures, 0, "lms refused a bad key: LM Studio is fine")
      yield* s.sim.state.setFaults({ failAll: { status: 500 } })
      for (let i = 0; i < 5; i++) assert.strictEqual(failure(yield* Effect.exit(s.lms.ps()))._tag, "LmsCliFailed")
      const before = (yield* s.sim.state.get).counters.requests
      const e = failure(
        yield* Effect.exit(s.client.chat({ model: "qwen/qwen3-4b", messages: [{ role: "user", content: "hi" }] }))
      )
      assert.strictEqual(e._tag, "CircuitOpen")
      assert.strictEqual((yield* s.sim.state.get).counters.requests, before)
      assert.strictEqual(failure(yield* Effect.exit(s.lms.ps()))._tag, "CircuitOpen")
      assert.deepStrictEqual([(yield* s.client.breaker).dependency, (yield* s.client.breaker).state], [
        "LM Studio",
        "open"
      ])
    }))
})

describe("TTL policy and schedules (properties, TestClock)", () => {
  const config = { modelTtlSeconds: 600, tempModelTtlSeconds: 300, maxModelTtlSeconds: 3600 }

  it.effect.prop("any integer TTL is rejected (< 1), kept (1..max), capped with a note (> max) or rejected (absurd)", {
    t: fc.integer()
  }, ({ t }) =>
    Effect.gen(function*() {
      const r = yield* Effect.either(ttlFor({ ttlSeconds: t }, config))
      if (t < 1 || t > ABSURD_TTL_SECONDS) return r._tag === "Left" && r.left._tag === "InvalidTtl"
      if (t <= 3600) return r._tag === "Right" && r.right.ttlSeconds === t && r.right.note === undefined
      return r._tag === "Right" && r.right.ttlSeconds === 3600 && r.right.note !== undefined
    }))

  it.effect("no TTL means keep (600 s) or temporary (300 s): never infinite", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* ttlFor({ keepLoaded: true }, config)).ttlSeconds, 600)
      assert.strictEqual((yield* ttlFor({}, config)).ttlSeconds, 300)
    }))

  it.effect.prop(
    "the load retry waits 1 s, 2 s, 4 s within jitter bounds and stops after 3 retries",
    { seed: fc.integer() },
    () =>
      Effect.gen(function*() {
        const attempts: Array<number> = []
        const fiber = yield* Effect.fork(
          Effect.gen(function*() {
            attempts.push(yield* TestClock.currentTimeMillis)
            return yield* Effect.fail("transient" as const)
          }).pipe(Effect.retry(modelLoadRetry()), Effect.exit)
        )
        for (let i = 0; i < 100 && attempts.length < 4; i++) yield* TestClock.adjust(Duration.millis(100))
        yield* TestClock.adjust(Duration.seconds(60))
        const exit = yield* Fiber.join(fiber)
        const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!)
        return (
          Exit.isFailure(exit) &&
          attempts.length === 4 &&
          gaps.every((gap, i) => gap >= 800 * 2 ** i && gap <= 1200 * 2 ** i + 100)
        )
      }),
    { fastCheck: { numRuns: 25 } }
  )

  it("backend order: auto is cli, jit, rest; a forced mode is that one only", () => {
    assert.deepStrictEqual(chooseBackend("auto", true, true).map((c) => c.via), ["cli", "jit", "rest"])
    assert.deepStrictEqual(chooseBackend("auto", false, false).map((c) => c.via), ["jit"])
    assert.deepStrictEqual(chooseBackend("rest", true, true).map((c) => c.via), ["rest"])
  })
})
