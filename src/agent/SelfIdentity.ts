/**
 * What the running bridge is on disk, so that an mcp.json entry that would start it again is never offered (an agent
 * that discovers "all servers" must not recurse into itself). Recognised by the bin name, and by real paths (symlinks
 * and relative paths resolved) of the files that start this bridge or any other copy of the package; a folder's name
 * proves nothing.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { Effect, Option } from "effect"
import { basename, dirname, isAbsolute, join, resolve as resolvePath } from "node:path"

export interface SelfIdentity {
  /** Real paths of the files that start this bridge (the entry that runs, the package's bin, bundle and source). */
  readonly files: ReadonlySet<string>
}

const ENTRY_FILES = ["dist/src/bin.js", "dist/src/bin.bundle.cjs", "src/bin.ts"] as const

const BIN_NAME = /^lmstudio-bridge(@[^/\\]*)?(\.cmd|\.exe)?$/

/** Does this command or argument name the bridge's bin (`lmstudio-bridge`, also as an npx package spec)? */
const isBinName = (part: string): boolean => BIN_NAME.test(basename(part))

const realPath = (fs: FileSystem.FileSystem, p: string) => Effect.option(fs.realPath(p))

/** The package root above a file: the nearest folder whose package.json is this package's. */
const packageRootOf = (fs: FileSystem.FileSystem, file: string): Effect.Effect<Option.Option<string>> =>
  Effect.gen(function*() {
    for (let dir = dirname(file);; dir = dirname(dir)) {
      const text = yield* Effect.option(fs.readFileString(join(dir, "package.json")))
      if (Option.isSome(text)) {
        const name = Option.getOrUndefined(parseName(text.value))
        if (name === "lmstudio-bridge") return Option.some(dir)
      }
      if (dirname(dir) === dir) return Option.none()
    }
  })

const parseName = (text: string): Option.Option<unknown> => {
  try {
    const pkg: unknown = JSON.parse(text)
    return typeof pkg === "object" && pkg !== null && "name" in pkg ? Option.some(pkg.name) : Option.none()
  } catch {
    return Option.none()
  }
}

/** The real paths of a package's entry files. */
const entriesOf = (fs: FileSystem.FileSystem, root: string) =>
  Effect.map(
    Effect.forEach(ENTRY_FILES, (f) => realPath(fs, join(root, f))),
    (found) => found.flatMap((o) => (Option.isSome(o) ? [o.value] : []))
  )

/** The identity of the bridge started by `entry` (process.argv[1]): whatever folder it sits in, whatever it is called. */
export const selfIdentity = (entry: string | undefined): Effect.Effect<SelfIdentity, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const real = entry === undefined ? Option.none() : yield* realPath(fs, entry)
    if (Option.isNone(real)) return { files: new Set<string>() }
    const root = yield* packageRootOf(fs, real.value)
    const entries = Option.isSome(root) ? yield* entriesOf(fs, root.value) : []
    return { files: new Set([real.value, ...entries]) }
  })

/** Is this file how some copy of lmstudio-bridge starts (another checkout or install would recurse the same way)? */
const isBridgeEntry = (fs: FileSystem.FileSystem, real: string): Effect.Effect<boolean> => {
  if (!/[\\/](bin\.js|bin\.bundle\.cjs|bin\.ts)$/.test(real)) return Effect.succeed(false)
  return Effect.flatMap(
    packageRootOf(fs, real),
    (root) =>
      Option.isNone(root)
        ? Effect.succeed(false)
        : Effect.map(entriesOf(fs, root.value), (entries) => entries.includes(real))
  )
}

/**
 * Is this entry the bridge itself? By its bin name, or by a command or argument that is, after resolving symlinks and
 * relative paths (from the entry's cwd), one of the files that start this very bridge or another copy of it.
 */
export const isSelf = (
  command: string,
  args: ReadonlyArray<string>,
  self: SelfIdentity,
  cwd: string
): Effect.Effect<boolean, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    for (const part of [command, ...args]) {
      if (isBinName(part)) return true
      if (self.files.size === 0 || part === "" || part.startsWith("-")) continue
      const real = yield* realPath(fs, isAbsolute(part) ? part : resolvePath(cwd, part))
      if (Option.isSome(real) && (self.files.has(real.value) || (yield* isBridgeEntry(fs, real.value)))) return true
    }
    return false
  })
