/** Logging: JSON lines on the error channel (stderr), never stdout; the level filter applies. */
import { assert, describe, it } from "@effect/vitest"
import { Console, Effect } from "effect"
import * as Logging from "../../src/observability/Logging.js"

/** A Console, derived from the current one, that records what goes to log (stdout) and to error (stderr). */
const recordingConsole = Effect.map(Effect.console, (base) => {
  const stdout: Array<string> = []
  const stderr: Array<string> = []
  const console: Console.Console = {
    ...base,
    log: (...args) => Effect.sync(() => void stdout.push(args.map(String).join(" "))),
    error: (...args) => Effect.sync(() => void stderr.push(args.map(String).join(" "))),
    unsafe: {
      ...base.unsafe,
      log: (...args) => void stdout.push(args.map(String).join(" ")),
      error: (...args) => void stderr.push(args.map(String).join(" "))
    }
  }
  return { console, stdout, stderr }
})

describe("Logging", () => {
  it.effect("writes JSON lines with message, level and annotations to stderr only, filtered by level", () =>
    Effect.gen(function*() {
      const { console, stdout, stderr } = yield* recordingConsole
      yield* Effect.gen(function*() {
        yield* Effect.logDebug("hidden at info")
        yield* Effect.logInfo("model loaded").pipe(Effect.annotateLogs({ model: "qwen/qwen3-4b" }))
        yield* Effect.logWarning("retrying")
      }).pipe(Effect.provide(Logging.make("json", "info")), Effect.withConsole(console))
      assert.deepStrictEqual(stdout, [])
      assert.strictEqual(stderr.length, 2)
      const first = JSON.parse(stderr[0]!) as {
        message: unknown
        logLevel: unknown
        annotations: Record<string, unknown>
      }
      assert.strictEqual(first.message, "model loaded")
      assert.strictEqual(first.logLevel, "INFO")
      assert.strictEqual(first.annotations.model, "qwen/qwen3-4b")
      assert.strictEqual((JSON.parse(stderr[1]!) as { logLevel: unknown }).logLevel, "WARN")
    }))

  it.effect("installing the logging layer twice (binary, then command) still logs each line once", () =>
    Effect.gen(function*() {
      const { console, stderr } = yield* recordingConsole
      yield* Effect.logInfo("once").pipe(
        Effect.provide(Logging.make("json", "info")),
        Effect.provide(Logging.make("json", "info")),
        Effect.withConsole(console)
      )
      assert.strictEqual(stderr.length, 1)
    }))

  it.effect("level none silences everything", () =>
    Effect.gen(function*() {
      const { console, stdout, stderr } = yield* recordingConsole
      yield* Effect.logError("boom").pipe(Effect.provide(Logging.make("json", "none")), Effect.withConsole(console))
      assert.deepStrictEqual([...stdout, ...stderr], [])
    }))
})
