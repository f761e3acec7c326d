/**
 * Where LM Studio keeps its files on this machine (protocol §12.4), read once at start-up next to the configuration:
 *
 * - Home: the path in `~/.lmstudio-home-pointer`, else `~/.cache/lm-studio` (common on macOS), else `~/.lmstudio`
 *   (lmstudio-js `findLMStudioHome`). The `lms` CLI is `<home>/bin/lms`; LM Studio's own mcp.json is `<home>/mcp.json`.
 * - The running API server publishes its port in `<home>/.internal/http-server.json` (`LMS_API_SERVER_INFO_PATH`
 *   overrides the path). When LMSTUDIO_BASE_URL is not set, the bridge uses that port; a missing or unreadable file is
 *   said plainly and the default port is used. The file can be left from an earlier run: `doctor` / `diagnose` check
 *   that LM Studio answers there.
 *
 * Every finding carries its reason, so `doctor` and `diagnose` can say which home, port file and mcp.json were used
 * and why.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { Effect, Option } from "effect"
import { join } from "node:path"

export interface LmStudioHome {
  /** LM Studio's home folder, when one exists. */
  readonly home: string | undefined
  /** Why this home (or why none). */
  readonly homeReason: string
  /** The port file looked at. */
  readonly portFile: string
  /** The port it holds, when it could be read. */
  readonly port: number | undefined
  /** Why there is no port (missing file, bad JSON, no port field), when there is none. */
  readonly portProblem: string | undefined
}

type Found = { readonly home: string | undefined; readonly reason: string }

const isDirectory = (fs: FileSystem.FileSystem, path: string): Effect.Effect<boolean> =>
  Effect.orElseSucceed(Effect.map(fs.stat(path), (info) => info.type === "Directory"), () => false)

const readText = (fs: FileSystem.FileSystem, path: string): Effect.Effect<Option.Option<string>> =>
  Effect.option(fs.readFileString(path))

/** LM Studio's home in `userHome`: the pointer file's target, else ~/.cache/lm-studio, else ~/.lmstudio. */
export const findHome = (userHome: string): Effect.Effect<Found, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const pointer = join(userHome, ".lmstudio-home-pointer")
    if (!(yield* Effect.orElseSucceed(fs.exists(pointer), () => false))) return yield* findDefaultHome(fs, userHome)
    const target = Option.getOrElse(yield* readText(fs, pointer), () => "").trim()
    if (target !== "" && (yield* isDirectory(fs, target))) return { home: target, reason: `named by ${pointer}` }
    // A pointer to nowhere: say so, and look where LM Studio would look next.
    const rest = yield* findDefaultHome(fs, userHome)
    return {
      home: rest.home,
      reason: `${pointer} points to ${JSON.stringify(target)}, which is not a folder; ${rest.reason}`
    }
  })

const findDefaultHome = (fs: FileSystem.FileSystem, userHome: string): Effect.Effect<Found> =>
  Effect.gen(function*() {
    const cache = join(userHome, ".cache", "lm-studio")
    if (yield* isDirectory(fs, cache)) return { home: cache, reason: `${cache} exists` }
    const dot = join(userHome, ".lmstudio")
    if (yield* isDirectory(fs, dot)) return { home: dot, reason: `${dot} exists` }
    return {
      home: undefined,
      reason: `none of ~/.lmstudio-home-pointer, ~/.cache/lm-studio, ~/.lmstudio exists under ${userHome}`
    }
  })

/** The `port` of an http-server.json (a JSON object; other fields are not relied on). */
const portIn = (
  file: string,
  text: Option.Option<string>
): { readonly port: number } | { readonly problem: string } => {
  if (Option.isNone(text)) {
    return { problem: `${file} does not exist (LM Studio's server has not published a port here)` }
  }
  let json: unknown
  try {
    json = JSON.parse(text.value)
  } catch {
    return { problem: `${file} is not valid JSON` }
  }
  const port = typeof json === "object" && json !== null && "port" in json ? json.port : undefined
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65_535) {
    return { problem: `${file} has no valid "port" (a number from 1 to 65535)` }
  }
  return { port }
}

/** LM Studio's files as seen from `userHome`, with `LMS_API_SERVER_INFO_PATH` from `env`. */
export const discoverHome = (
  userHome: string,
  env: Readonly<Record<string, string | undefined>>
): Effect.Effect<LmStudioHome, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const { home, reason } = yield* findHome(userHome)
    const override = env.LMS_API_SERVER_INFO_PATH?.trim()
    const portFile = override !== undefined && override !== ""
      ? override
      : join(home ?? join(userHome, ".lmstudio"), ".internal", "http-server.json")
    const read = portIn(portFile, yield* readText(fs, portFile))
    return {
      home,
      homeReason: reason,
      portFile,
      port: "port" in read ? read.port : undefined,
      portProblem: "problem" in read ? read.problem : undefined
    }
  })

/** Where `lms` is in LM Studio's home, when it is there. */
export const lmsInHome = (h: LmStudioHome): Effect.Effect<string | undefined, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    if (h.home === undefined) return undefined
    const fs = yield* FileSystem.FileSystem
    const path = join(h.home, "bin", "lms")
    return (yield* Effect.orElseSucceed(fs.exists(path), () => false)) ? path : undefined
  })
