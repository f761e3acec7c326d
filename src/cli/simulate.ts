/**
 * `lmstudio-bridge simulate`: run the LM Studio simulator until interrupted (Ctrl-C). The simulator (its HTTP
 * server, catalog and scenarios) is loaded when this command runs, not by every other command's start-up.
 */
import { Command, Options } from "@effect/cli"
import * as FileSystem from "@effect/platform/FileSystem"
import { Effect, Option, Schema } from "effect"
import { fileURLToPath } from "node:url"
import { ConfigInvalid } from "../domain/Errors.js"
import { json, note, printJson, printLine } from "./Shared.js"

const port = Options.integer("port").pipe(
  Options.withAlias("p"),
  Options.withDescription("Port (0 = any free port)"),
  Options.withDefault(1234)
)
const host = Options.text("host").pipe(Options.withDescription("Address to bind"), Options.withDefault("127.0.0.1"))
const scenario = Options.file("scenario", { exists: "yes" }).pipe(
  Options.withDescription("Scenario JSON: scripted replies matched on the conversation"),
  Options.optional
)
const models = Options.text("models").pipe(
  Options.withDescription("Comma-separated model keys to offer (default: a built-in catalog)"),
  Options.optional
)
const loaded = Options.text("loaded").pipe(
  Options.withDescription("Comma-separated keys loaded at start, or 'none' (default: the first LLM)"),
  Options.optional
)
const noJit = Options.boolean("no-jit").pipe(Options.withDescription("Turn JIT loading off"))
const apiToken = Options.text("api-token").pipe(Options.withDescription("Require this Bearer token"), Options.optional)
const latency = Options.integer("latency-ms").pipe(
  Options.withDescription("Delay before every answer"),
  Options.withDefault(0)
)
const tokenDelay = Options.integer("token-delay-ms").pipe(
  Options.withDescription("Delay between streamed tokens"),
  Options.withDefault(0)
)

const list = (s: string): Array<string> =>
  s
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x !== "")

const simulator = Effect.promise(() =>
  Promise.all([
    import("../simulator/Simulator.js"),
    import("../simulator/Scenario.js"),
    import("../simulator/Catalog.js")
  ])
)

const readScenario = (path: string) =>
  Effect.gen(function*() {
    const [, { ScenarioJson }] = yield* simulator
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((e) =>
        new ConfigInvalid({ variable: "--scenario", value: path, allowed: `a readable file (${e.message})` })
      )
    )
    return yield* Schema.decodeUnknown(ScenarioJson)(text).pipe(
      Effect.mapError(
        (e) =>
          new ConfigInvalid({
            variable: "--scenario",
            value: path,
            allowed: `scenario JSON {"rules":[{"match":{…},"reply":{…}}]} (${
              e.message.split("\n").slice(0, 3).join(" ")
            })`
          })
      )
    )
  })

/** The shim next to this module (dist/src/cli/) or next to the bundled executable (dist/src/). */
const lmsShimPath = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const candidates = [new URL("../simulator/lms.js", import.meta.url), new URL("./simulator/lms.js", import.meta.url)]
    .map(
      (u) => fileURLToPath(u)
    )
  for (const path of candidates) {
    if (yield* Effect.orElseSucceed(fs.exists(path), () => false)) return path
  }
  return candidates[0]!
})

export const simulateCommand = Command.make(
  "simulate",
  { port, host, scenario, models, loaded, noJit, apiToken, latency, tokenDelay, json },
  (flags) =>
    Effect.scoped(
      Effect.gen(function*() {
        if (flags.port < 0 || flags.port > 65535) {
          return yield* new ConfigInvalid({
            variable: "--port",
            value: String(flags.port),
            allowed: "an integer from 0 to 65535"
          })
        }
        const [{ start }, , { modelFromKey }] = yield* simulator
        const script = Option.isSome(flags.scenario) ? yield* readScenario(flags.scenario.value) : undefined
        const sim = yield* start({
          port: flags.port,
          host: flags.host,
          scenario: script,
          models: Option.map(flags.models, (m) => list(m).map(modelFromKey)).pipe(Option.getOrUndefined),
          loaded: Option.map(flags.loaded, (l) => (l.trim() === "none" ? [] : list(l))).pipe(Option.getOrUndefined),
          settings: { jit: !flags.noJit, apiToken: Option.getOrNull(flags.apiToken) },
          faults: { latencyMs: flags.latency, tokenDelayMs: flags.tokenDelay }
        })
        const lms = yield* lmsShimPath
        if (flags.json) yield* printJson({ base_url: sim.baseUrl, port: sim.port, lms })
        else yield* printLine(`LM Studio simulator listening on ${sim.baseUrl}`)
        yield* note(`lms shim: LMS_CLI_PATH=${lms} LMS_SIM_URL=${sim.baseUrl}`)
        yield* note("Press Ctrl-C to stop.")
        return yield* Effect.never
      })
    )
).pipe(Command.withDescription("Run the LM Studio simulator (no GPU needed) until interrupted"))
