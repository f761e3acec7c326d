/**
 * LmsCli: LM Studio's `lms` command as a subprocess port (protocol §6), on `@effect/platform`'s Command.
 *
 * - Argument arrays only, never a shell; model names are validated before any process starts.
 * - `load` always passes `-y` (without it `lms` may open an interactive picker and hang).
 * - A timeout kills the process group; so does interrupting the call. No child outlives the call.
 * - `ls --json` / `ps --json` are decoded leniently (unknown keys pass, most fields optional).
 * - Typed errors: not installed, non-zero exit (with stderr), timeout, unreadable output; and `lms`'s odd exit
 *   codes are normalised (`unload <unknown>` prints "Model Not Found" but exits 0).
 * - Every call goes through the "lms CLI" breaker (the executable itself: hanging). The commands that talk to LM Studio's
 *   server (ls, ps, load, unload) also go through the LM Studio breaker shared with the HTTP client: a server that
 *   fails opens it whichever path saw the failures (DESIGN §6 "Circuit breaker").
 *
 * When LMSTUDIO_BASE_URL is not the local default, `--host/--port` point `lms` at the same server.
 */
import * as Command from "@effect/platform/Command"
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import { Chunk, Duration, Effect, Option, Schema, Stream } from "effect"
import { homedir } from "node:os"
import { delimiter, join } from "node:path"
import { AppConfig } from "../Config.js"
import { LmsCliFailed, LmsCliOutputInvalid, LmsCliTimeout, LmsCliUnavailable, type LmsError } from "../domain/Errors.js"
import { validateModelName } from "../domain/ModelName.js"
import { lmsInHome } from "../LmStudioHome.js"
import * as CircuitBreaker from "../resilience/CircuitBreaker.js"
import { LmStudioBreaker } from "./LmStudioBreaker.js"

const Opt = <A, I, R>(s: Schema.Schema<A, I, R>) => Schema.optional(Schema.NullOr(s))

/** One entry of `lms ls --json` (SDK ModelInfo), decoded leniently. */
export const LmsModel = Schema.Struct({
  modelKey: Schema.String,
  type: Schema.String,
  displayName: Opt(Schema.String),
  publisher: Opt(Schema.String),
  architecture: Opt(Schema.String),
  format: Opt(Schema.String),
  sizeBytes: Opt(Schema.Number),
  maxContextLength: Opt(Schema.Number),
  trainedForToolUse: Opt(Schema.Boolean),
  vision: Opt(Schema.Boolean),
  quantization: Opt(Schema.Struct({ name: Opt(Schema.String) }))
})
export type LmsModel = typeof LmsModel.Type

/** One entry of `lms ps --json`: instance info plus `status`, `queued`, `parallel` (all optional for old builds). */
export const LmsInstance = Schema.Struct({
  identifier: Schema.String,
  modelKey: Schema.String,
  type: Schema.String,
  contextLength: Opt(Schema.Number),
  maxContextLength: Opt(Schema.Number),
  ttlMs: Opt(Schema.Number),
  lastUsedTime: Opt(Schema.Number),
  status: Opt(Schema.String),
  queued: Opt(Schema.Number),
  parallel: Opt(Schema.Number),
  trainedForToolUse: Opt(Schema.Boolean),
  /** LM Link: the device the instance runs on; null means this machine (protocol §12.5). */
  deviceIdentifier: Opt(Schema.String)
})
export type LmsInstance = typeof LmsInstance.Type

const ServerStatus = Schema.Struct({ running: Schema.Boolean, port: Opt(Schema.Number) })

export interface LmsRun {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

export interface LmsLoadOptions {
  readonly ttlSeconds: number
  readonly contextLength?: number | undefined
  readonly identifier?: string | undefined
}

export interface LmsLoaded {
  /** The identifier `lms` reported ("use the identifier …"), when it printed one. */
  readonly identifier: string | undefined
  readonly output: string
}

const DEFAULT_ENDPOINTS = new Set(["127.0.0.1:1234", "localhost:1234"])

/** `--host/--port` for a non-default LM Studio address (http only: `lms` takes no protocol). */
export const hostArgs = (baseUrl: string): ReadonlyArray<string> => {
  const url = new URL(baseUrl)
  const port = url.port || (url.protocol === "https:" ? "443" : "80")
  if (url.protocol !== "http:" || DEFAULT_ENDPOINTS.has(`${url.hostname}:${port}`)) return []
  return ["--host", url.hostname, "--port", port]
}

/** Where `lms` is: LMS_CLI_PATH, else `lms` on PATH, else `<LM Studio's home>/bin/lms`, else `~/.lmstudio/bin/lms`. */
export const locate = (
  configured: Option.Option<string>,
  pathEnv: string | undefined,
  home: string,
  inLmStudioHome: string | undefined = undefined
): Effect.Effect<Option.Option<string>, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    if (Option.isSome(configured)) return configured
    const fs = yield* FileSystem.FileSystem
    const exists = (path: string) => Effect.orElseSucceed(fs.exists(path), () => false)
    for (const dir of (pathEnv ?? "").split(delimiter)) {
      if (dir !== "" && (yield* exists(join(dir, "lms")))) return Option.some(join(dir, "lms"))
    }
    if (inLmStudioHome !== undefined) return Option.some(inLmStudioHome)
    const fallback = join(home, ".lmstudio", "bin", "lms")
    return (yield* exists(fallback)) ? Option.some(fallback) : Option.none()
  })

const collect = (stream: Stream.Stream<Uint8Array, unknown>) =>
  stream.pipe(
    Stream.decodeText(),
    Stream.runCollect,
    Effect.map((chunks) => Chunk.join(chunks, "")),
    Effect.orElseSucceed(() => "")
  )

/** `lms` refused the request itself (a bad key, an identifier in use, a bad flag): LM Studio is fine. */
const refusedByLms = (stderr: string) =>
  /model not found|no model found|cannot find a model|already in use|unknown option|is invalid|invalid usage/i.test(
    stderr
  )

export class LmsCli extends Effect.Service<LmsCli>()("lmstudio-bridge/LmsCli", {
  dependencies: [LmStudioBreaker.Default],
  effect: Effect.gen(function*() {
    const config = yield* AppConfig
    const executor = yield* CommandExecutor.CommandExecutor
    const breaker = yield* CircuitBreaker.make("lms CLI")
    const server = yield* LmStudioBreaker
    const path = yield* locate(config.lmsCliPath, process.env.PATH, homedir(), yield* lmsInHome(config.lmstudioHome))
    const extraArgs = hostArgs(config.baseUrl)
    const timeoutMs = Duration.toMillis(config.lmsTimeout)

    /** Runs `lms <args>` and returns what it printed and its exit code; a non-zero exit is not an error here. */
    const exec = (args: ReadonlyArray<string>): Effect.Effect<LmsRun, LmsCliUnavailable | LmsCliTimeout> =>
      Option.match(path, {
        onNone: () =>
          Effect.fail(
            new LmsCliUnavailable({
              path: "lms",
              reason:
                "not on PATH, not in LM Studio's home (<home>/bin/lms), not at ~/.lmstudio/bin/lms; LMS_CLI_PATH is not set"
            })
          ),
        onSome: (bin) =>
          Effect.scoped(
            Effect.gen(function*() {
              const proc = yield* Command.make(bin, ...args, ...extraArgs).pipe(
                Command.stdin("pipe"),
                Command.start,
                Effect.provideService(CommandExecutor.CommandExecutor, executor),
                Effect.mapError((e) => new LmsCliUnavailable({ path: bin, reason: e.message }))
              )
              // Runs first when the scope closes (timeout, interruption): SIGKILL the group if it is still running, so a
              // process that ignores SIGTERM cannot hang the executor's own finalizer.
              yield* Effect.addFinalizer(() =>
                proc.isRunning.pipe(
                  Effect.flatMap((running) => (running ? proc.kill("SIGKILL") : Effect.void)),
                  Effect.ignore
                )
              )
              const [stdout, stderr, code] = yield* Effect.all(
                [collect(proc.stdout), collect(proc.stderr), Effect.orElseSucceed(proc.exitCode, () => -1)],
                { concurrency: 3 }
              )
              return { exitCode: Number(code), stdout, stderr }
            })
          ).pipe(
            // On timeout the scope closes and the process group is killed (SIGTERM, then awaited).
            Effect.timeoutFail({ duration: config.lmsTimeout, onTimeout: () => new LmsCliTimeout({ args, timeoutMs }) })
          )
      })

    /** `exec` behind the breaker; failures of the CLI itself (not a refused request) count against it. */
    const run = (args: ReadonlyArray<string>) =>
      breaker.protect(exec(args), (e) => e._tag === "LmsCliTimeout").pipe(
        Effect.withSpan("LmsCli.run", { captureStackTrace: false, attributes: { args: args.join(" ") } })
      )

    const failed = (args: ReadonlyArray<string>, r: LmsRun) =>
      new LmsCliFailed({ args, exitCode: r.exitCode, stderr: r.stderr })

    /**
     * A command that talks to LM Studio's server, behind the LM Studio breaker as well: a failed command or a
     * timeout counts against LM Studio, unless `lms` refused the request itself.
     */
    const onServer = <A>(effect: Effect.Effect<A, LmsError>): Effect.Effect<A, LmsError> =>
      server.protect(
        effect,
        (e) => e._tag === "LmsCliTimeout" || (e._tag === "LmsCliFailed" && !refusedByLms(e.stderr))
      )

    const json = <A, I>(args: ReadonlyArray<string>, schema: Schema.Schema<A, I>) =>
      Effect.gen(function*() {
        const r = yield* run(args)
        if (r.exitCode !== 0) return yield* failed(args, r)
        return yield* Schema.decodeUnknown(Schema.parseJson(schema))(r.stdout.trim()).pipe(
          Effect.mapError((e) =>
            new LmsCliOutputInvalid({ args, detail: `${e.message.split("\n")[0]} (output: ${r.stdout.slice(0, 120)})` })
          )
        )
      })

    /** `lms ls --json`: downloaded models. */
    const ls = Effect.fn("LmsCli.ls")(function*() {
      return yield* onServer(json(["ls", "--json"], Schema.Array(LmsModel)))
    })

    /** `lms ps --json`: loaded instances. */
    const ps = Effect.fn("LmsCli.ps")(function*() {
      return yield* onServer(json(["ps", "--json"], Schema.Array(LmsInstance)))
    })

    /** `lms load <key> -y --ttl N [--context-length C] [--identifier I]`: LM Studio itself holds the TTL. */
    const load = Effect.fn("LmsCli.load")(function*(model: string, options: LmsLoadOptions) {
      yield* validateModelName(model)
      if (options.identifier !== undefined) yield* validateModelName(options.identifier)
      const args = [
        "load",
        model,
        "-y",
        "--ttl",
        String(options.ttlSeconds),
        ...(options.contextLength !== undefined ? ["--context-length", String(options.contextLength)] : []),
        ...(options.identifier !== undefined ? ["--identifier", options.identifier] : [])
      ]
      const r = yield* onServer(Effect.filterOrFail(run(args), (r) => r.exitCode === 0, (r) => failed(args, r)))
      const identifier = /use the identifier "([^"]+)"/.exec(r.stderr)?.[1]
      return { identifier, output: r.stderr.trim() } satisfies LmsLoaded
    })

    /** `lms unload <identifier>`; false when `lms` says there is no such model (it exits 0 then). */
    const unload = Effect.fn("LmsCli.unload")(function*(identifier: string) {
      yield* validateModelName(identifier)
      const args = ["unload", identifier]
      const r = yield* onServer(Effect.filterOrFail(run(args), (r) => r.exitCode === 0, (r) => failed(args, r)))
      return !/Model Not Found|Cannot find a model/i.test(r.stderr)
    })

    /** `lms unload --all`. */
    const unloadAll = Effect.fn("LmsCli.unloadAll")(function*() {
      const args = ["unload", "--all"]
      const r = yield* onServer(Effect.filterOrFail(run(args), (r) => r.exitCode === 0, (r) => failed(args, r)))
      return [...r.stderr.matchAll(/Unloading "([^"]+)"/g)].map((m) => m[1]!)
    })

    /** `lms server status --json`. */
    const serverStatus = Effect.fn("LmsCli.serverStatus")(function*() {
      return yield* json(["server", "status", "--json"], ServerStatus)
    })

    return {
      path,
      available: Option.isSome(path),
      ls,
      ps,
      load,
      unload,
      unloadAll,
      serverStatus,
      breaker: breaker.snapshot
    } as const
  })
}) {}
