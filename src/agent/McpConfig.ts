/**
 * McpConfig: the mcp.json that names the child MCP servers an agent may use (DESIGN §4, §6 "Child servers").
 *
 * - Found by the search order `$MCP_JSON_PATH`, `./.mcp.json`, `~/.lmstudio/mcp.json`, `~/.mcp.json`; which file
 *   and why is part of every answer.
 * - Claude-style format `{"mcpServers": {name: {command, args, env, cwd} | {url, headers}}}` with `disabled` and a
 *   per-server `timeout` in ms (LM Studio's unit). Unknown keys are ignored (other hosts add their own).
 * - `${VAR}` and `${env:VAR}` are expanded from the environment in command, args, env, cwd, url and headers; a
 *   variable that is not set is an error naming where it is used.
 * - An invalid file is an error naming the file, the path inside it and the problem.
 * - An entry that starts this bridge itself is never offered (so discover-all cannot recurse into itself); nor is a
 *   remote server that signs in with OAuth (`auth`, LM Studio's format): it is listed with the reason.
 * - LM Studio's own `<home>/mcp.json` comes last in the search order when its home is not ~/.lmstudio.
 * - Re-read whenever the file changes (modification time and size are checked on every call).
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { Effect, Hash, Option, ParseResult, Ref, Schema } from "effect"
import { homedir } from "node:os"
import { join, resolve as resolvePath } from "node:path"
import { AppConfig } from "../Config.js"
import { McpConfigInvalid, McpConfigNotFound, McpServerUnknown } from "../domain/McpErrors.js"
import { basicAuthorization, credentialsOf, redactUrlsIn } from "../domain/Redact.js"
import { ToolGlob } from "../domain/ToolRules.js"
import { isSelf, type SelfIdentity, selfIdentity } from "./SelfIdentity.js"
import { ENTRY_KEYS, type PolicyRules } from "./ToolPolicy.js"

const StringMap = Schema.Record({ key: Schema.String, value: Schema.String })

/** Tool names or `*` globs in an entry's policy lists. */
const ToolNames = Schema.Array(ToolGlob)

/** The mcp.json keys of an entry's policy lists (ToolPolicy.ENTRY_KEYS, every spelling). */
type ListKey = (typeof ENTRY_KEYS)["allow" | "deny" | "only"][number][0]

const listKeys = ([...ENTRY_KEYS.allow, ...ENTRY_KEYS.deny, ...ENTRY_KEYS.only] as const).map(([k]): ListKey => k)

/** The tool policy an entry may carry: each list key, and `trust`. */
const PolicyFields = {
  ...(Object.fromEntries(listKeys.map((k) => [k, Schema.optional(ToolNames)])) as Record<
    ListKey,
    Schema.optional<typeof ToolNames>
  >),
  trust: Schema.optional(Schema.Boolean)
}

const ServerEntry = Schema.Struct({
  ...PolicyFields,
  command: Schema.optional(Schema.String.pipe(Schema.minLength(1, { message: () => "command must not be empty" }))),
  args: Schema.optional(Schema.Array(Schema.String)),
  env: Schema.optional(StringMap),
  cwd: Schema.optional(Schema.String),
  url: Schema.optional(Schema.String),
  headers: Schema.optional(StringMap),
  disabled: Schema.optional(Schema.Boolean),
  /** LM Studio's remote servers with OAuth (`{"CLIENT_ID", "CLIENT_SECRET"}`, protocol §12.4): listed, not used. */
  auth: Schema.optional(Schema.Unknown),
  timeout: Schema.optional(
    Schema.Number.pipe(
      Schema.int(),
      Schema.positive({ message: () => "timeout must be a positive number of milliseconds" })
    )
  )
})

const McpJson = Schema.Struct({
  mcpServers: Schema.Record({ key: Schema.String, value: ServerEntry })
})

export interface ChildServerConfig {
  readonly name: string
  readonly transport: "stdio" | "http"
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly env: Readonly<Record<string, string>>
  readonly cwd: string | undefined
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  /** Per-call timeout from mcp.json (ms), if any. */
  readonly timeoutMs: number | undefined
  readonly enabled: boolean
  /** Why it is not offered: disabled in the file, or it is this bridge. */
  readonly disabledReason: string | undefined
  /** The entry's tool policy (allow and deny lists, `trust`). */
  readonly policy: PolicyRules
  /** Changes whenever anything that affects the running child changes: the pool key. */
  readonly hash: number
}

export interface LoadedMcpConfig {
  readonly file: string
  readonly reason: string
  readonly servers: ReadonlyArray<ChildServerConfig>
}

const EXPANSION = /\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)\}/g

/** The mcp.json the bridge would use, and why (or why none). */
export interface McpJsonLocation {
  readonly path: string | null
  readonly reason: string
}

/**
 * mcp.json search order (DESIGN §4): `$MCP_JSON_PATH`, `./.mcp.json`, `~/.lmstudio/mcp.json`, `~/.mcp.json`, then
 * LM Studio's own `<home>/mcp.json` when its home is elsewhere (protocol §12.4).
 */
export const locateMcpJson = (
  configured: Option.Option<string>,
  cwd: string,
  home: string,
  lmstudioHome: string | undefined = undefined
): Effect.Effect<McpJsonLocation, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const exists = (path: string) => Effect.orElseSucceed(fs.exists(path), () => false)
    if (Option.isSome(configured)) {
      return (yield* exists(configured.value))
        ? { path: configured.value, reason: "MCP_JSON_PATH" }
        : { path: null, reason: `MCP_JSON_PATH points to ${configured.value}, which does not exist` }
    }
    const dotLmStudio = join(home, ".lmstudio", "mcp.json")
    const candidates: Array<readonly [string, string]> = [
      [join(cwd, ".mcp.json"), "./.mcp.json in the working directory"],
      [dotLmStudio, "LM Studio's mcp.json"],
      [join(home, ".mcp.json"), "~/.mcp.json"]
    ]
    const own = lmstudioHome === undefined ? undefined : join(lmstudioHome, "mcp.json")
    if (own !== undefined && own !== dotLmStudio) {
      candidates.push([own, `LM Studio's mcp.json in its home ${lmstudioHome}`])
    }
    for (const [path, reason] of candidates) {
      if (yield* exists(path)) {
        return { path, reason }
      }
    }
    return {
      path: null,
      reason: `none of $MCP_JSON_PATH, ./.mcp.json, ~/.lmstudio/mcp.json, ~/.mcp.json${
        own !== undefined && own !== dotLmStudio ? `, ${own}` : ""
      } exists`
    }
  })

const problemOf = (file: string, error: ParseResult.ParseError): McpConfigInvalid => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  const path = issue === undefined
    ? ""
    : issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").replace(/^\./, "")
  return new McpConfigInvalid({ file, path, problem: issue?.message ?? error.message })
}

/**
 * Parses and validates the text of an mcp.json; `env` is where `${VAR}` comes from, `self` what the running bridge is
 * (its entries are never offered).
 */
export const parseMcpJson = (
  file: string,
  text: string,
  env: Readonly<Record<string, string | undefined>>,
  self?: SelfIdentity
): Effect.Effect<ReadonlyArray<ChildServerConfig>, McpConfigInvalid, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const me = self ?? (yield* selfIdentity(process.argv[1]))
    const json = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (e) =>
        new McpConfigInvalid({
          file,
          path: "",
          problem: `not valid JSON (${e instanceof Error ? e.message : String(e)})`
        })
    })
    const decoded = yield* Schema.decodeUnknown(McpJson)(json).pipe(Effect.mapError((e) => problemOf(file, e)))
    const servers: Array<ChildServerConfig> = []
    for (const [name, entry] of Object.entries(decoded.mcpServers)) {
      const at = `mcpServers.${name}`
      const expand = (value: string, where: string): Effect.Effect<string, McpConfigInvalid> => {
        const missing = [...value.matchAll(EXPANSION)].map((m) => m[1]!).find((v) => env[v] === undefined)
        return missing !== undefined
          ? Effect.fail(
            new McpConfigInvalid({
              file,
              path: `${at}.${where}`,
              problem: `environment variable ${missing} is not set`
            })
          )
          : Effect.succeed(value.replace(EXPANSION, (_, v: string) => env[v] ?? ""))
      }
      const expandMap = (m: Readonly<Record<string, string>> | undefined, where: string) =>
        Effect.map(
          Effect.forEach(
            Object.entries(m ?? {}),
            ([k, v]) => Effect.map(expand(v, `${where}.${k}`), (x) => [k, x] as const)
          ),
          (pairs) => Object.fromEntries(pairs)
        )
      if (entry.command === undefined && entry.url === undefined) {
        return yield* new McpConfigInvalid({
          file,
          path: at,
          problem: "needs \"command\" (a local server) or \"url\" (a remote one)"
        })
      }
      if (entry.command !== undefined && entry.url !== undefined) {
        return yield* new McpConfigInvalid({ file, path: at, problem: "has both \"command\" and \"url\"; keep one" })
      }
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
        return yield* new McpConfigInvalid({
          file,
          path: at,
          problem: "a server name is 1-64 letters, digits, '_', '-' or '.'"
        })
      }
      const command = entry.command === undefined ? "" : yield* expand(entry.command, "command")
      const args = yield* Effect.forEach(entry.args ?? [], (a, i) => expand(a, `args[${i}]`))
      // An OAuth server's secrets are not expanded or kept: the bridge only lists it.
      const oauth = entry.url !== undefined && entry.auth !== undefined
      const url = entry.url === undefined ? "" : oauth ? entry.url : yield* expand(entry.url, "url")
      if (entry.url !== undefined && !/^https?:\/\/[^\s]+$/.test(url)) {
        return yield* new McpConfigInvalid({
          file,
          path: `${at}.url`,
          problem: `not an http(s) URL: ${JSON.stringify(redactUrlsIn(url))}`
        })
      }
      // Relative paths of a child resolve from its cwd (the bridge's own when the entry sets none).
      const cwd = entry.cwd === undefined ? process.cwd() : yield* expand(entry.cwd, "cwd")
      const itself = entry.command !== undefined && (yield* isSelf(command, args, me, resolvePath(process.cwd(), cwd)))
      // `user:password@` in a remote server's URL goes as Basic auth (fetch refuses URLs with credentials), unless
      // the entry sets its own Authorization header.
      const remote = credentialsOf(url)
      const headers = yield* expandMap(entry.headers, "headers")
      const auth = Object.keys(headers).some((k) => k.toLowerCase() === "authorization")
        ? {}
        : Option.match(remote.basic, { onNone: () => ({}), onSome: (b) => ({ Authorization: basicAuthorization(b) }) })
      const base = {
        name,
        transport: entry.url !== undefined ? ("http" as const) : ("stdio" as const),
        command,
        args,
        env: yield* expandMap(entry.env, "env"),
        cwd: entry.cwd === undefined ? undefined : yield* expand(entry.cwd, "cwd"),
        url: remote.url,
        headers: { ...headers, ...auth },
        timeoutMs: entry.timeout,
        enabled: entry.disabled !== true && !itself && !oauth,
        disabledReason: itself
          ? "this is lmstudio-bridge itself"
          : oauth
          ? "signs in with OAuth (`auth` in LM Studio's mcp.json), which the bridge cannot do; LM Studio's own chat can use it"
          : entry.disabled === true
          ? "disabled in mcp.json"
          : undefined
      }
      servers.push({
        ...base,
        policy: entryPolicy(entry),
        hash: Hash.string(JSON.stringify([base.transport, command, args, base.env, base.cwd, url, base.headers]))
      })
    }
    return servers
  })

/** An entry's policy: every spelling of each list, joined. */
const entryPolicy = (entry: typeof ServerEntry.Type): PolicyRules => {
  const joined = (keys: ReadonlyArray<readonly [ListKey, string]>) => keys.flatMap(([k]) => entry[k] ?? [])
  return {
    allow: joined(ENTRY_KEYS.allow),
    deny: joined(ENTRY_KEYS.deny),
    only: ENTRY_KEYS.only.some(([k]) => entry[k] !== undefined) ? joined(ENTRY_KEYS.only) : undefined,
    writes: entry.trust === true ? "allow" : undefined
  }
}

export class McpConfig extends Effect.Service<McpConfig>()("lmstudio-bridge/McpConfig", {
  effect: Effect.gen(function*() {
    const config = yield* AppConfig
    const fs = yield* FileSystem.FileSystem
    const self = yield* selfIdentity(process.argv[1])
    // The last file read, with what identified its version: read again only when it changed.
    const cache = yield* Ref.make<
      Option.Option<
        {
          readonly file: string
          readonly mtimeMs: number
          readonly size: number
          readonly servers: ReadonlyArray<ChildServerConfig>
        }
      >
    >(Option.none())
    const unreadable = (file: string) => (e: { readonly message: string }) =>
      new McpConfigInvalid({ file, path: "", problem: `cannot be read (${e.message})` })

    /** Which mcp.json the bridge uses now, and why. */
    const locate = locateMcpJson(config.mcpJsonPath, process.cwd(), homedir(), config.lmstudioHome.home).pipe(
      Effect.provideService(FileSystem.FileSystem, fs)
    )

    const load: Effect.Effect<LoadedMcpConfig, McpConfigNotFound | McpConfigInvalid> = Effect.gen(function*() {
      const found = yield* locate
      if (found.path === null) return yield* new McpConfigNotFound({ reason: found.reason })
      const file = found.path
      const info = yield* Effect.mapError(fs.stat(file), unreadable(file))
      const mtimeMs = Option.match(info.mtime, { onNone: () => 0, onSome: (d) => d.getTime() })
      const size = Number(info.size)
      const cached = yield* Ref.get(cache)
      if (
        Option.isSome(cached) && cached.value.file === file && cached.value.mtimeMs === mtimeMs &&
        cached.value.size === size
      ) {
        return { file, reason: found.reason, servers: cached.value.servers }
      }
      const text = yield* Effect.mapError(fs.readFileString(file), unreadable(file))
      const servers = yield* parseMcpJson(file, text, process.env, self).pipe(
        Effect.provideService(FileSystem.FileSystem, fs)
      )
      yield* Ref.set(cache, Option.some({ file, mtimeMs, size, servers }))
      yield* Effect.logDebug("mcp.json read").pipe(Effect.annotateLogs({ file, servers: servers.length }))
      return { file, reason: found.reason, servers }
    }).pipe(Effect.withSpan("McpConfig.load", { captureStackTrace: false }))

    return { load, locate } as const
  })
}) {}

/** The enabled servers named (in that order), or all enabled ones when `names` is undefined. */
export const selectServers = (
  loaded: LoadedMcpConfig,
  names: ReadonlyArray<string> | undefined
): Effect.Effect<ReadonlyArray<ChildServerConfig>, McpServerUnknown> => {
  const enabled = loaded.servers.filter((s) => s.enabled)
  if (names === undefined) return Effect.succeed(enabled)
  const missing = names.find((n) => !enabled.some((s) => s.name === n))
  return missing !== undefined
    ? Effect.fail(new McpServerUnknown({ name: missing, file: loaded.file, available: enabled.map((s) => s.name) }))
    : Effect.succeed(names.map((n) => enabled.find((s) => s.name === n)!))
}
