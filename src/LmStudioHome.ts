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
import { existsSync, readFileSync, statSync } from "node:fs"
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

const isDirectory = (path: string): boolean => {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

/** LM Studio's home in `userHome`: the pointer file's target, else ~/.cache/lm-studio, else ~/.lmstudio. */
export const findHome = (userHome: string): { readonly home: string | undefined; readonly reason: string } => {
  const pointer = join(userHome, ".lmstudio-home-pointer")
  if (existsSync(pointer)) {
    let target = ""
    try {
      target = readFileSync(pointer, "utf8").trim()
    } catch {
      target = ""
    }
    if (target !== "" && isDirectory(target)) return { home: target, reason: `named by ${pointer}` }
    // A pointer to nowhere: say so, and look where LM Studio would look next.
    const rest = findDefaultHome(userHome)
    return {
      home: rest.home,
      reason: `${pointer} points to ${JSON.stringify(target)}, which is not a folder; ${rest.reason}`
    }
  }
  return findDefaultHome(userHome)
}

const findDefaultHome = (userHome: string): { readonly home: string | undefined; readonly reason: string } => {
  const cache = join(userHome, ".cache", "lm-studio")
  if (isDirectory(cache)) return { home: cache, reason: `${cache} exists` }
  const dot = join(userHome, ".lmstudio")
  if (isDirectory(dot)) return { home: dot, reason: `${dot} exists` }
  return {
    home: undefined,
    reason: `none of ~/.lmstudio-home-pointer, ~/.cache/lm-studio, ~/.lmstudio exists under ${userHome}`
  }
}

/** The `port` of an http-server.json (a JSON object; other fields are not relied on). */
const readPortFile = (file: string): { readonly port: number } | { readonly problem: string } => {
  let text: string
  try {
    text = readFileSync(file, "utf8")
  } catch {
    return { problem: `${file} does not exist (LM Studio's server has not published a port here)` }
  }
  let json: unknown
  try {
    json = JSON.parse(text)
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
export const discoverHome = (userHome: string, env: Readonly<Record<string, string | undefined>>): LmStudioHome => {
  const { home, reason } = findHome(userHome)
  const override = env.LMS_API_SERVER_INFO_PATH?.trim()
  const portFile = override !== undefined && override !== ""
    ? override
    : join(home ?? join(userHome, ".lmstudio"), ".internal", "http-server.json")
  const read = readPortFile(portFile)
  return {
    home,
    homeReason: reason,
    portFile,
    port: "port" in read ? read.port : undefined,
    portProblem: "problem" in read ? read.problem : undefined
  }
}

/** Where `lms` is in LM Studio's home, when it is there. */
export const lmsInHome = (h: LmStudioHome): string | undefined => {
  if (h.home === undefined) return undefined
  const path = join(h.home, "bin", "lms")
  return existsSync(path) ? path : undefined
}
