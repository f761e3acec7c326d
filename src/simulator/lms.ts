#!/usr/bin/env node
/**
 * The `lms` shim: a stand-in for LM Studio's CLI that talks to the simulator. It reproduces what a caller of the
 * real `lms` sees (protocol §6): commander's `error: unknown option '<flag>'` with exit 1, human messages on
 * stderr and only `--json` payloads and tables on stdout, the success and error texts, and the odd exit codes
 * (`unload <unknown>` exits 0; `unload` with nothing loaded exits 1).
 *
 * Which server: `--host/--port` (hidden flags of the real CLI), else `LMS_SIM_URL`, else `LMSTUDIO_BASE_URL`,
 * else http://127.0.0.1:1234. Kept free of Effect so it starts as fast as a CLI should; it is not part of the bridge.
 */
import { Schema } from "effect"

const out = (s: string): void => {
  process.stdout.write(s.endsWith("\n") ? s : `${s}\n`)
}
const err = (s: string): void => {
  process.stderr.write(s.endsWith("\n") ? s : `${s}\n`)
}

class Exit {
  constructor(readonly code: number) {}
}
const fail = (message: string, code = 1): never => {
  err(message)
  throw new Exit(code)
}

const box = (title: string, body: string): string => {
  const lines = body.split("\n")
  const width = Math.max(title.length + 2, ...lines.map((l) => l.length)) + 2
  return [
    `╭ ${title} ${"─".repeat(Math.max(0, width - title.length - 2))}╮`,
    ...lines.map((l) => `│ ${l.padEnd(width - 1)}│`),
    `╰${"─".repeat(width)}╯`
  ].join("\n")
}

// ---------------------------------------------------------------------------------------------------------------
// commander-like option parsing
// ---------------------------------------------------------------------------------------------------------------

interface OptionSpec {
  readonly long: string
  readonly short?: string
  readonly arg?: string
  readonly parse?: (value: string) => string | number
}

class InvalidArgument {
  constructor(readonly reason: string) {}
}

const intAtLeast1 = (v: string): number => {
  const n = Number(v)
  if (v.trim() === "" || Number.isNaN(n)) throw new InvalidArgument("Not a number")
  if (!Number.isInteger(n)) throw new InvalidArgument("Not an integer")
  if (n < 1) throw new InvalidArgument("Number out of range, must be at least 1")
  return n
}

const gpuRatio = (v: string): number => {
  if (v === "off") return 0
  if (v === "max") return 1
  const n = Number(v)
  if (v.trim() === "" || Number.isNaN(n)) throw new InvalidArgument("Not a number")
  if (n < 0 || n > 1) throw new InvalidArgument("Number out of range, must be between 0 and 1")
  return n
}

const GLOBAL: ReadonlyArray<OptionSpec> = [
  { long: "host", arg: "host" },
  { long: "port", arg: "port", parse: intAtLeast1 },
  { long: "log-level", arg: "level" },
  { long: "quiet" },
  { long: "verbose" }
]

interface Parsed {
  readonly positionals: Array<string>
  readonly options: Map<string, string | number | true>
}

const parse = (argv: ReadonlyArray<string>, specs: ReadonlyArray<OptionSpec>): Parsed => {
  const all = [...specs, ...GLOBAL]
  const positionals: Array<string> = []
  const options = new Map<string, string | number | true>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--") {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (!a.startsWith("-") || a === "-") {
      positionals.push(a)
      continue
    }
    const [flag, inline] = a.startsWith("--") && a.includes("=")
      ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)]
      : [a, undefined]
    const spec = all.find((s) => `--${s.long}` === flag || (s.short !== undefined && `-${s.short}` === flag))
    if (!spec) fail(`error: unknown option '${flag}'`)
    const known = spec!
    if (known.arg === undefined) {
      options.set(known.long, true)
      continue
    }
    const value = inline ?? argv[++i]
    if (value === undefined) fail(`error: option '--${known.long} <${known.arg}>' argument missing`)
    try {
      options.set(known.long, known.parse ? known.parse(value!) : value!)
    } catch (e) {
      if (e instanceof InvalidArgument) {
        fail(`error: option '--${known.long} <${known.arg}>' argument '${value}' is invalid. ${e.reason}`)
      }
      throw e
    }
  }
  return { positionals, options }
}

// ---------------------------------------------------------------------------------------------------------------
// Talking to the simulator
// ---------------------------------------------------------------------------------------------------------------

const serverUrl = (p: Parsed): { url: string; explicit: boolean; shown: string } => {
  const host = p.options.get("host")
  const port = p.options.get("port")
  if (typeof host === "string") {
    if (host.includes("://")) fail("Host should not include the protocol.")
    if (/:\d+$/.test(host)) fail("Host should not include the port number. Use --port instead.")
    const prt = typeof port === "number" ? port : 1234
    return { url: `http://${host}:${prt}`, explicit: true, shown: `${host}:${prt}` }
  }
  const fromEnv = [process.env.LMS_SIM_URL, process.env.LMSTUDIO_BASE_URL].find((v) =>
    v !== undefined && v.trim() !== ""
  )
  const base = (fromEnv ?? "http://127.0.0.1:1234").trim().replace(/\/+$/, "")
  if (!URL.canParse(base)) {
    fail(`Error: ${JSON.stringify(base)} is not a server URL (from LMS_SIM_URL / LMSTUDIO_BASE_URL).`)
  }
  if (typeof port === "number") {
    const u = new URL(base)
    u.port = String(port)
    return { url: u.origin, explicit: true, shown: `${u.hostname}:${port}` }
  }
  return { url: base, explicit: false, shown: new URL(base).host }
}

const Json = Schema.parseJson(Schema.Unknown)
const ModelList = Schema.Array(
  Schema.Struct({ modelKey: Schema.String, type: Schema.String, sizeBytes: Schema.Number })
)
const InstanceList = Schema.Array(
  Schema.Struct({
    identifier: Schema.String,
    modelKey: Schema.String,
    type: Schema.String,
    sizeBytes: Schema.Number,
    status: Schema.String,
    contextLength: Schema.Number,
    parallel: Schema.NullOr(Schema.Number),
    deviceIdentifier: Schema.optional(Schema.NullOr(Schema.String)),
    ttlMs: Schema.NullOr(Schema.Number),
    lastUsedTime: Schema.NullOr(Schema.Number)
  })
)
const LoadResult = Schema.Struct({
  identifier: Schema.String,
  modelKey: Schema.String,
  sizeBytes: Schema.Number,
  loadTimeMs: Schema.Number
})

interface Reply {
  readonly status: number
  readonly body: unknown
}

const connectionFailure = (server: ReturnType<typeof serverUrl>): never =>
  server.explicit
    ? fail(
      `The server does not appear to be running at ${server.shown}. Please make sure the server is running and accessible.`
    )
    : fail("Failed to start or connect to local LM Studio API server.")

const call = async (
  server: ReturnType<typeof serverUrl>,
  method: "GET" | "POST",
  path: string,
  body?: unknown
): Promise<Reply> => {
  let res: Response
  try {
    res = await fetch(`${server.url}${path}`, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } } : {})
    })
  } catch {
    return connectionFailure(server)
  }
  const text = await res.text()
  // LM Studio itself failing (5xx): the command fails, as the real CLI does when the server cannot serve it.
  if (res.status >= 500) {
    return fail(`Error: LM Studio failed to handle the request (HTTP ${res.status}). Check LM Studio's server log.`)
  }
  const decoded = Schema.decodeUnknownEither(Json)(text)
  if (decoded._tag === "Left") return fail(`Error: unexpected answer from the server at ${server.shown}.`)
  return { status: res.status, body: decoded.right }
}

const decode = <A, I>(schema: Schema.Schema<A, I>, value: unknown): A => {
  const r = Schema.decodeUnknownEither(schema)(value)
  return r._tag === "Right"
    ? r.right
    : fail(`Error: unexpected answer from the server: ${r.left.message.split("\n")[0]}`)
}

const checkServer = async (server: ReturnType<typeof serverUrl>): Promise<boolean> => {
  try {
    const res = await fetch(`${server.url}/lmstudio-greeting`)
    const body: unknown = await res.json()
    return res.status === 200 && typeof body === "object" && body !== null && "lmstudio" in body &&
      body.lmstudio === true
  } catch {
    return false
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Formatting (protocol §6.2, §6.4)
// ---------------------------------------------------------------------------------------------------------------

const formatElapsed = (ms: number): string => {
  if (ms < 1000) return `${ms.toFixed(2)}ms`
  const totalSeconds = ms / 1000
  const h = Math.floor(totalSeconds / 3600)
  const m = Math.floor((totalSeconds % 3600) / 60)
  const s = (totalSeconds % 60).toFixed(2)
  if (h > 0) return `${h}h ${m}m ${s}s`
  if (m > 0) return `${m}m ${s}s`
  return `${s}s`
}

/** `formatSizeBytes1024` (load messages, GiB) and the base-1000 table sizes of `ls`/`ps` (GB), protocol §6.2. */
const formatSize = (bytes: number, base: 1000 | 1024): string => {
  const units = base === 1024 ? ["Bytes", "KiB", "MiB", "GiB", "TiB"] : ["B", "KB", "MB", "GB", "TB"]
  let v = bytes
  let u = 0
  while (v >= base && u < units.length - 1) {
    v /= base
    u++
  }
  return `${base === 1024 && u === 0 ? v : v.toFixed(2)} ${units[u]}`
}

const table = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => c.padEnd(widths[i]!)).join("    ").trimEnd()
  return [line(headers), "", ...rows.map(line)].join("\n")
}

/** Fuzzy match as `lms load` does: the characters of the query appear in order in the key. */
const fuzzy = (query: string, key: string): boolean => {
  const q = query.toLowerCase()
  const k = key.toLowerCase()
  let j = 0
  for (let i = 0; i < k.length && j < q.length; i++) if (k[i] === q[j]) j++
  return j === q.length
}

// ---------------------------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------------------------

const HELP = `Usage: lms [options] [command]

LM Studio CLI (simulator shim)

Options:
  -v, --version   output the CLI commit
  -h, --help      display help for command

Local models:
  chat, get, load, unload, ls, ps, import
Serve:
  server, log`

const ls = async (argv: ReadonlyArray<string>) => {
  const p = parse(argv, [{ long: "llm" }, { long: "embedding" }, { long: "json" }, { long: "variants" }, {
    long: "detailed"
  }])
  const server = serverUrl(p)
  const models = (await call(server, "GET", "/__sim/lms/ls")).body
  const list = Array.isArray(models) ? models : []
  const typed = decode(ModelList, list)
  const keep = (t: string) =>
    (p.options.has("llm") ? t === "llm" : false) || (p.options.has("embedding") ? t === "embedding" : false) ||
    (!p.options.has("llm") && !p.options.has("embedding"))
  const filtered = list.filter((_, i) => keep(typed[i]!.type))
  if (p.options.has("json")) return out(JSON.stringify(filtered))
  const rows = typed.filter((m) => keep(m.type)).map((
    m
  ) => [m.modelKey, formatSize(m.sizeBytes, 1000), m.type.toUpperCase()])
  out(
    `You have ${rows.length} models, taking up ${
      formatSize(typed.reduce((n, m) => n + m.sizeBytes, 0), 1000)
    } of disk space.\n`
  )
  out(table(["MODEL", "SIZE", "TYPE"], rows))
}

const ps = async (argv: ReadonlyArray<string>) => {
  const p = parse(argv, [{ long: "json" }])
  const server = serverUrl(p)
  const instances = (await call(server, "GET", "/__sim/lms/ps")).body
  const list = Array.isArray(instances) ? instances : []
  if (p.options.has("json")) return out(JSON.stringify(list))
  const typed = decode(InstanceList, list)
  if (typed.length === 0) {
    err("No models are currently loaded.\n\nTo load a model, run:\n\n    lms load <model path>")
    return
  }
  const now = Date.now()
  const ttl = (i: (typeof typed)[number]) => {
    if (i.ttlMs === null) return ""
    const left = i.lastUsedTime === null ? i.ttlMs : Math.max(0, i.ttlMs - (now - i.lastUsedTime))
    return `${Math.round(left / 60000)}m / ${Math.round(i.ttlMs / 60000)}m`
  }
  out(
    table(
      ["IDENTIFIER", "MODEL", "STATUS", "SIZE", "CONTEXT", "PARALLEL", "DEVICE", "TTL"],
      typed.map((
        i
      ) => [
        i.identifier,
        i.modelKey,
        i.status.toUpperCase(),
        formatSize(i.sizeBytes, 1000),
        String(i.contextLength),
        i.parallel === null ? "" : String(i.parallel),
        i.deviceIdentifier ?? "Local",
        ttl(i)
      ])
    )
  )
}

const load = async (argv: ReadonlyArray<string>) => {
  const p = parse(argv, [
    { long: "gpu", arg: "offload-ratio", parse: gpuRatio },
    { long: "context-length", short: "c", arg: "length", parse: intAtLeast1 },
    { long: "parallel", arg: "count", parse: intAtLeast1 },
    { long: "ttl", arg: "seconds", parse: intAtLeast1 },
    { long: "identifier", arg: "identifier" },
    { long: "estimate-only" },
    { long: "yes", short: "y" },
    { long: "exact" },
    { long: "local" }
  ])
  const server = serverUrl(p)
  const query = p.positionals[0]
  const yes = p.options.has("yes")
  if (query === undefined) {
    if (yes) fail(box("Model not found", "No model key given. Usage: lms load <model-key> -y"))
    fail("! Please specify a model key (an interactive picker would open here; none in this shim).")
  }
  const models = decode(ModelList, (await call(server, "GET", "/__sim/lms/ls")).body)
  const exact = models.find((m) => m.modelKey === query)
  const matches = p.options.has("exact")
    ? models.filter((m) => m.modelKey === query)
    : exact
    ? [exact]
    : models.filter((m) => fuzzy(query!, m.modelKey))
  if (matches.length === 0) {
    if (p.options.has("exact")) fail(`No model found with path being exactly "${query}".`)
    if (yes) fail(box("Model not found", `No model found that matches model key "${query}".`))
    fail(`! Cannot find a model matching the provided model key (${query}). An interactive picker would open here.`)
  }
  if (matches.length > 1 && !yes) fail("! Multiple models match the provided model key. Please select one.")
  const model = matches[0]!
  if (p.options.has("estimate-only")) {
    err(`Model: ${model.modelKey}`)
    const ctx = p.options.get("context-length")
    if (ctx !== undefined) err(`Context Length: ${ctx}`)
    err(`Estimated GPU Memory:   ${formatSize(model.sizeBytes * 1.1, 1024)}`)
    err(`Estimated Total Memory: ${formatSize(model.sizeBytes * 1.2, 1024)}`)
    err("\nEstimate: This model may be loaded based on your resource guardrails settings.")
    return
  }
  const ttl = p.options.get("ttl")
  const identifier = p.options.get("identifier")
  const contextLength = p.options.get("context-length")
  const parallel = p.options.get("parallel")
  const res = await call(server, "POST", "/__sim/lms/load", {
    model: model.modelKey,
    ...(typeof identifier === "string" ? { identifier } : {}),
    ...(typeof ttl === "number" ? { ttlSeconds: ttl } : {}),
    ...(typeof contextLength === "number" ? { contextLength } : {}),
    ...(typeof parallel === "number" ? { parallel } : {})
  })
  if (res.status === 409) {
    fail(`Error: Identifier "${String(identifier)}" is already in use. Please choose a different identifier.`)
  }
  if (res.status !== 200) fail(box("Model not found", `No model found that matches model key "${query}".`))
  const loaded = decode(LoadResult, res.body)
  err(`Model loaded successfully in ${formatElapsed(loaded.loadTimeMs)}.`)
  err(`(${formatSize(loaded.sizeBytes, 1024)})`)
  err(`To use the model in the API/SDK, use the identifier "${loaded.identifier}".`)
}

const unload = async (argv: ReadonlyArray<string>) => {
  const p = parse(argv, [{ long: "all", short: "a" }])
  const server = serverUrl(p)
  const id = p.positionals[0]
  if (p.options.has("all") && id !== undefined) {
    err(box("Invalid Usage", "You cannot specify a model identifier together with --all."))
    return
  }
  const instances = decode(InstanceList, (await call(server, "GET", "/__sim/lms/ps")).body)
  const unloadOne = async (identifier: string) => {
    await call(server, "POST", "/__sim/lms/unload", { identifier })
  }
  if (p.options.has("all")) {
    if (instances.length === 0) return err("No models to unload.")
    for (const i of instances) {
      err(`Unloading "${i.identifier}"...`)
      await unloadOne(i.identifier)
    }
    return err(`Unloaded ${instances.length} model${instances.length === 1 ? "" : "s"}.`)
  }
  if (id === undefined) {
    if (instances.length === 0) fail(`You don't have any models loaded. Use "lms load" to load a model.`)
    if (instances.length > 1) {
      fail("! Multiple models are loaded. Please select one (an interactive picker would open here).")
    }
    await unloadOne(instances[0]!.identifier)
    return err(`Model "${instances[0]!.identifier}" unloaded.`)
  }
  if (!instances.some((i) => i.identifier === id)) {
    // The real CLI returns (exit 0) after this message (protocol §6.3, §9.9).
    return err(box("Model Not Found", `Cannot find a model with the identifier "${id}".`))
  }
  await unloadOne(id)
  err(`Model "${id}" unloaded.`)
}

const serverCmd = async (argv: ReadonlyArray<string>) => {
  const sub = argv[0]
  const rest = argv.slice(1)
  if (sub === "status") {
    const p = parse(rest, [{ long: "json" }])
    const server = serverUrl(p)
    const running = await checkServer(server)
    const port = Number(new URL(server.url).port || 80)
    if (p.options.has("json")) return out(JSON.stringify(running ? { running: true, port } : { running: false }))
    return err(running ? `The server is running on port ${port}.` : "The server is not running.")
  }
  if (sub === "start") {
    const p = parse(rest, [{ long: "port", short: "p", arg: "port", parse: intAtLeast1 }, {
      long: "bind",
      arg: "address"
    }, { long: "cors" }])
    const server = serverUrl(p)
    if (await checkServer(server)) return err(`Success! Server is now running on port ${new URL(server.url).port}`)
    fail("Failed to verify the server is running. Please try to use another port.")
  }
  if (sub === "stop") {
    const p = parse(rest, [])
    const server = serverUrl(p)
    if (!(await checkServer(server))) fail("The server is not running.")
    fail("The simulator cannot be stopped through lms; stop `lmstudio-bridge simulate` instead.")
  }
  fail(sub === undefined ? "error: missing required argument 'command'" : `error: unknown command '${sub}'`)
}

const main = async (argv: ReadonlyArray<string>): Promise<void> => {
  const [command, ...rest] = argv
  switch (command) {
    case undefined:
      out(`lms - LM Studio CLI (simulator shim)\n\n${HELP}`)
      return
    case "-v":
    case "--version":
    case "version":
      out("CLI commit: simulator")
      return
    case "-h":
    case "--help":
      out(HELP)
      return
    case "ls":
      return ls(rest)
    case "ps":
      return ps(rest)
    case "load":
      return load(rest)
    case "unload":
      return unload(rest)
    case "server":
      return serverCmd(rest)
    default:
      if (command.startsWith("-")) fail(`error: unknown option '${command}'`)
      fail(`error: unknown command '${command}'`)
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e: unknown) => {
    if (e instanceof Exit) process.exit(e.code)
    err(e instanceof Error ? (e.stack ?? e.message) : String(e))
    process.exit(1)
  }
)
