/**
 * Test helpers: a simulator on an ephemeral port per test, a real LmStudioClient pointed at it, and small HTTP and
 * subprocess utilities. Nothing here fakes LM Studio: integration tests go through real HTTP.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import type { ClientCapabilities } from "@modelcontextprotocol/sdk/types.js"
import { Context, Duration, Effect, Layer, Schedule, type Scope } from "effect"
import { spawn } from "node:child_process"
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { AppConfig, type AppConfigShape } from "../src/Config.js"
import { LmStudioClient } from "../src/lmstudio/LmStudioClient.js"
import * as NodeTransport from "../src/lmstudio/transport/NodeTransport.js"
import { type RunningSimulator, type SimulatorOptions, start } from "../src/simulator/Simulator.js"

export const repoRoot = fileURLToPath(new URL("..", import.meta.url))
export const binPath = fileURLToPath(new URL("../dist/src/bin.js", import.meta.url))
export const lmsShimPath = fileURLToPath(new URL("../dist/src/simulator/lms.js", import.meta.url))

export const clientLayer = (config: Partial<AppConfigShape> & Pick<AppConfigShape, "baseUrl">) =>
  LmStudioClient.Default.pipe(Layer.provide(Layer.provideMerge(NodeTransport.layer, AppConfig.layerFrom(config))))

export const makeClient = (
  config: Partial<AppConfigShape> & Pick<AppConfigShape, "baseUrl">
): Effect.Effect<LmStudioClient, never, Scope.Scope> =>
  Effect.map(Layer.build(clientLayer(config)), Context.get(LmStudioClient))

/** A fresh simulator and a client for it, both closed with the test's scope. */
export const simAndClient = (options: SimulatorOptions = {}, config: Partial<AppConfigShape> = {}) =>
  Effect.gen(function*() {
    const sim = yield* start(options)
    const client = yield* makeClient({ ...config, baseUrl: sim.baseUrl })
    return { sim, client }
  })

export interface HttpReply {
  readonly status: number
  readonly text: string
  readonly json: unknown
  readonly contentType: string
}

/** Plain fetch, for wire-level assertions that must not go through our client. */
export const http = (
  sim: RunningSimulator,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {}
) =>
  Effect.promise(async (): Promise<HttpReply> => {
    const res = await fetch(`${sim.baseUrl}${path}`, {
      method,
      headers: { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {})
    })
    const text = await res.text()
    let json: unknown = undefined
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: res.status, text, json, contentType: res.headers.get("content-type") ?? "" }
  })

/** The `data:` payloads of an SSE body, parsed (the `[DONE]` marker kept as a string). */
export const sseData = (text: string): Array<unknown> =>
  text
    .split("\n")
    .filter((l) => l.startsWith("data: "))
    .map((l) => l.slice(6))
    .map((d) => (d === "[DONE]" ? d : (JSON.parse(d) as unknown)))

export interface ProcessResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs a program as a real subprocess (no shell) and collects its output. */
export const run = (
  command: string,
  args: ReadonlyArray<string>,
  env: Record<string, string | undefined> = {},
  input?: string
): Promise<ProcessResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, stdout, stderr }))
    child.stdin.end(input ?? "")
  })

export const runEffect = (command: string, args: ReadonlyArray<string>, env: Record<string, string | undefined> = {}) =>
  Effect.promise(() => run(command, args, env))

/**
 * A typed navigator over decoded JSON for wire-level assertions, without `any`: `j(body).get("choices", 0).str`.
 * Reading a value of the wrong kind throws, so a shape mismatch fails the test loudly.
 */
export class J {
  constructor(readonly raw: unknown) {}
  get(...path: ReadonlyArray<string | number>): J {
    let v: unknown = this.raw
    for (const key of path) {
      if (typeof key === "number") v = Array.isArray(v) ? v[key] : undefined
      else v = typeof v === "object" && v !== null ? (v as Record<string, unknown>)[key] : undefined
    }
    return new J(v)
  }
  private kind<A>(check: (v: unknown) => v is A, what: string): A {
    if (!check(this.raw)) throw new Error(`expected ${what}, got ${JSON.stringify(this.raw)}`)
    return this.raw
  }
  get str(): string {
    return this.kind((v): v is string => typeof v === "string", "a string")
  }
  get num(): number {
    return this.kind((v): v is number => typeof v === "number", "a number")
  }
  get arr(): Array<J> {
    return this.kind((v): v is Array<unknown> => Array.isArray(v), "an array").map((x) => new J(x))
  }
  get keys(): Array<string> {
    return Object.keys(this.kind((v): v is object => typeof v === "object" && v !== null, "an object"))
  }
  has(key: string): boolean {
    return typeof this.raw === "object" && this.raw !== null && key in this.raw
  }
  get defined(): boolean {
    return this.raw !== undefined
  }
}

export const j = (raw: unknown): J => new J(raw)

/** A temporary directory removed with the test's scope. */
export const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "lmsb-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** Writes an executable node script (a stand-in `lms` that misbehaves on purpose) and returns its path. */
export const fakeExecutable = (dir: string, name: string, body: string): string => {
  const file = join(dir, name)
  writeFileSync(file, `#!/usr/bin/env node\n${body}\n`)
  chmodSync(file, 0o755)
  return file
}

export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** An MCP SDK client connected to a freshly spawned `lmstudio-bridge serve` (stdio); closed with the scope. */
export const bridgeClient = (
  baseUrl: string,
  env: Record<string, string> = {},
  options: {
    /** What the test client declares (e.g. elicitation); handlers for it go in `prepare`. */
    readonly capabilities?: ClientCapabilities
    readonly prepare?: (client: Client) => void
  } = {}
) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: [binPath, "serve"],
        env: {
          PATH: process.env.PATH ?? "",
          LMSTUDIO_BASE_URL: baseUrl,
          LMSTUDIO_LIFECYCLE: "jit",
          LOG_LEVEL: "warn",
          ...env
        },
        stderr: "pipe"
      })
      const client = new Client(
        { name: "test", version: "1.0.0" },
        options.capabilities !== undefined ? { capabilities: options.capabilities } : undefined
      )
      options.prepare?.(client)
      await client.connect(transport)
      return client
    }),
    (client) => Effect.promise(() => client.close())
  )

/** The tool names of the MCP contract (DESIGN §5). */
export const TOOL_CONTRACT = [
  "health_check",
  "list_models",
  "get_model_info",
  "chat_completion",
  "text_completion",
  "create_response",
  "generate_embeddings",
  "lms_server_status",
  "lms_list_loaded_models",
  "lms_load_model",
  "lms_unload_model",
  "lms_ensure_model_loaded",
  "list_available_mcps",
  "autonomous_with_mcp",
  "autonomous_with_multiple_mcps",
  "autonomous_discover_and_execute",
  "diagnose"
] as const

/** Polls (every 50 ms, up to `seconds`) until `read` gives a value that `ok` accepts; dies naming `what` otherwise. */
export const eventually = <A>(read: Effect.Effect<A>, ok: (a: A) => boolean, what = "condition", seconds = 15) =>
  read.pipe(
    Effect.filterOrFail(ok, () => `${what}: not reached in ${seconds} s`),
    Effect.retry(Schedule.spaced(Duration.millis(50)).pipe(Schedule.upTo(Duration.seconds(seconds)))),
    Effect.orDie
  )

/** A port that was free a moment ago (for a server that cannot listen on port 0 and say which port it got). */
export const freePort = Effect.async<number>((resume) => {
  const probe = createServer()
  probe.listen(0, "127.0.0.1", () => {
    const address = probe.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    probe.close(() => resume(Effect.succeed(port)))
  })
})

/** `lmstudio-bridge serve` over stdio with everything it writes to stderr collected; closed with the scope. */
export const bridgeWithStderr = (env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: [binPath, "serve"],
        env: { PATH: process.env.PATH ?? "", LMSTUDIO_LIFECYCLE: "jit", LOG_LEVEL: "info", ...env },
        stderr: "pipe"
      })
      const stderr: Array<string> = []
      transport.stderr?.on("data", (d: Buffer) => stderr.push(d.toString()))
      const client = new Client({ name: "test", version: "1.0.0" })
      await client.connect(transport)
      return { client, pid: transport.pid ?? 0, stderr: () => stderr.join("") }
    }),
    ({ client }) => Effect.promise(() => client.close())
  )

/** An mcp.json in `dir` with the flaky fixture server (test/support/flaky-mcp-server.mjs) as `flaky`; its path. */
export const flakyMcpJson = (dir: string): string => {
  const file = join(dir, "mcp.json")
  const server = join(repoRoot, "test", "support", "flaky-mcp-server.mjs")
  writeFileSync(
    file,
    JSON.stringify({ mcpServers: { flaky: { command: process.execPath, args: [server, dir], trust: true } } })
  )
  return file
}

/** Starts `serve --http 127.0.0.1:0` and resolves with its endpoint URL; the process is stopped with the scope. */
export const serveHttpBridge = (baseUrl: string, env: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.promise(
      () =>
        new Promise<{ url: string; kill: () => void }>((resolve, reject) => {
          const child = spawn(process.execPath, [binPath, "serve", "--http", "127.0.0.1:0"], {
            env: { ...process.env, LMSTUDIO_BASE_URL: baseUrl, LMSTUDIO_LIFECYCLE: "jit", LOG_LEVEL: "warn", ...env },
            stdio: ["ignore", "pipe", "ignore"]
          })
          let out = ""
          child.stdout.on("data", (d: Buffer) => {
            out += d.toString()
            const m = /MCP server listening on (\S+)/.exec(out)
            if (m) resolve({ url: m[1]!, kill: () => child.kill("SIGINT") })
          })
          child.on("exit", (code) => reject(new Error(`serve --http exited with ${code}`)))
        })
    ),
    (s) => Effect.sync(() => s.kill())
  )
