/**
 * ChildServers: connections to the MCP servers of mcp.json through the SDK `Client` (stdio and Streamable HTTP).
 *
 * - Pooled by (name, config hash) in an `RcMap` with an idle TTL: repeated runs reuse a running child, and an
 *   edited entry gets a new child on the next call (the old one is stopped when idle). The key carries the entry.
 * - Start-up (`connect` + `initialize` + `tools/list`) is bounded by MCP_CHILD_START_TIMEOUT_SECONDS, and at most
 *   `START_CONCURRENCY` children start at a time, however many servers a run names.
 * - Each tool call has a timeout (the entry's `timeout` in ms, else AGENT_TOOL_TIMEOUT_SECONDS) and a circuit
 *   breaker per server. Interrupting a call aborts it (the SDK sends `notifications/cancelled` to the child).
 * - A child that crashed (its connection closed) is started again and the call retried once; one that hangs past
 *   the timeout is stopped (the next call starts a fresh one) and the call fails with `McpServerTimeout`.
 * - Closing a connection ends the child: stdin closed, then SIGTERM, then SIGKILL (the SDK's close). Every pooled
 *   child is closed when the bridge's scope closes: on exit, SIGINT/SIGTERM and when the MCP host closes stdin.
 * - A child's stderr is drained into the bridge's debug log; its last lines explain a failed start.
 * - The SDK's client is loaded when the first child starts, not with the bridge: most sessions start none, and
 *   loading it took ~10 % of the bridge's start-up (docs/benchmarks.md).
 */
import type { CallToolResult, Client } from "@modelcontextprotocol/client"
import { Data, Duration, Effect, Equal, Exit, Hash, Option, RcMap, Ref, Runtime } from "effect"
import { AppConfig } from "../Config.js"
import { type ChildServerError, McpServerFailed, McpServerTimeout } from "../domain/McpErrors.js"
import { redactUrlsIn } from "../domain/Redact.js"
import { errorTypeOfExit, record, timed } from "../observability/Metrics.js"
import { currentTraceparent } from "../observability/Propagation.js"
import { tracingEnabled } from "../observability/Tracing.js"
import * as CircuitBreaker from "../resilience/CircuitBreaker.js"
import type { ChildServerConfig } from "./McpConfig.js"

export interface ChildTool {
  readonly server: string
  readonly name: string
  readonly description: string
  readonly inputSchema: Readonly<Record<string, unknown>>
  /** The server annotates it `readOnlyHint: true` (the tool policy lets such tools run without asking). */
  readonly readOnly: boolean
}

/** What a tool call gave back, as text for the model. */
export interface ToolOutcome {
  readonly ok: boolean
  readonly text: string
}

interface Connection {
  readonly client: Client
  readonly tools: ReadonlyArray<ChildTool>
  readonly pid: number | null
  /** Set when the child went away (crash, exit, closed connection). */
  readonly closed: Ref.Ref<boolean>
}

/** At most this many child servers start at once (each is a process; this machine class has two cores). */
export const START_CONCURRENCY = 4

/** Internal: the child's connection closed under a call (it crashed or exited). */
class ChildGone extends Data.TaggedError("ChildGone")<{ readonly reason: string }> {}

/** Internal: the SDK's call failed (the child answered with a JSON-RPC error, or the request broke). */
class CallFailed extends Data.TaggedError("CallFailed")<{ readonly reason: string }> {}

/** A pool key: the entry, equal to another by name and config hash (an edited entry is another key). */
class PoolKey implements Equal.Equal {
  constructor(readonly cfg: ChildServerConfig) {}
  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof PoolKey && that.cfg.name === this.cfg.name && that.cfg.hash === this.cfg.hash
  }
  [Hash.symbol](): number {
    return Hash.combine(this.cfg.hash)(Hash.string(this.cfg.name))
  }
}

/** The SDK's client and its transports (loaded by the first child's start; later starts find them loaded). */
const clientSdk = Effect.promise(() =>
  Promise.all([import("@modelcontextprotocol/client"), import("@modelcontextprotocol/client/stdio")])
)

const reasonOf = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/** The text of a tool result: its text parts, and a note for each part that is not text. */
const resultText = (r: CallToolResult): string =>
  r.content
    .map((c) => (c.type === "text"
      ? c.text
      : c.type === "resource" && "text" in c.resource
      ? String(c.resource.text)
      : `[${c.type} content]`)
    )
    .join("\n") || (r.structuredContent !== undefined ? JSON.stringify(r.structuredContent) : "")

/** Records a lifecycle event of a child server (`lmstudio_bridge.child.events`). */
const childEvent = (server: string) => (event: string) => record((r) => r.update("childEvents", 1, [server, event]))

export class ChildServers extends Effect.Service<ChildServers>()("lmstudio-bridge/ChildServers", {
  scoped: Effect.gen(function*() {
    const config = yield* AppConfig
    const tracing = tracingEnabled(config)
    const runtime = yield* Effect.runtime<never>()
    const breakers = new Map<string, CircuitBreaker.CircuitBreaker>()
    // Making a breaker is an effect: callers racing for a new server's breaker take turns, so there is one per server.
    const breakerLock = yield* Effect.makeSemaphore(1)
    const startPermits = yield* Effect.makeSemaphore(START_CONCURRENCY)

    const breakerOf = (name: string) =>
      Effect.suspend(() => {
        const existing = breakers.get(name)
        if (existing !== undefined) return Effect.succeed(existing)
        return breakerLock.withPermits(1)(
          Effect.suspend(() => {
            const again = breakers.get(name)
            if (again !== undefined) return Effect.succeed(again)
            return Effect.tap(
              CircuitBreaker.make(`MCP server ${name}`),
              (b) => Effect.sync(() => breakers.set(name, b))
            )
          })
        )
      })

    const startTimeoutMs = Duration.toMillis(config.childStartTimeout)

    const connect = (cfg: ChildServerConfig) =>
      Effect.gen(function*() {
        const [{ Client, StreamableHTTPClientTransport }, { getDefaultEnvironment, StdioClientTransport }] =
          yield* clientSdk
        const closed = yield* Ref.make(false)
        const stderrTail: Array<string> = []
        // Either era: the SDK probes with `server/discover` (2026-07-28) and falls back to `initialize` (2025-11-25).
        const client = new Client({ name: "lmstudio-bridge", version: "1" }, {
          capabilities: {},
          versionNegotiation: { mode: "auto", probe: { timeoutMs: Math.min(startTimeoutMs, 10_000) } }
        })
        const transport = cfg.transport === "stdio"
          ? new StdioClientTransport({
            command: cfg.command,
            args: [...cfg.args],
            env: { ...getDefaultEnvironment(), ...cfg.env },
            ...(cfg.cwd !== undefined ? { cwd: cfg.cwd } : {}),
            stderr: "pipe"
          })
          : new StreamableHTTPClientTransport(new URL(cfg.url), { requestInit: { headers: { ...cfg.headers } } })
        if (transport instanceof StdioClientTransport) {
          transport.stderr?.on("data", (chunk: Buffer) => {
            for (const line of chunk.toString("utf8").split("\n")) {
              if (line.trim() === "") continue
              stderrTail.push(line)
              if (stderrTail.length > 5) stderrTail.shift()
              Runtime.runFork(runtime)(
                Effect.logDebug("child server stderr").pipe(Effect.annotateLogs({ server: cfg.name, line }))
              )
            }
          })
        }
        client.onclose = () => Runtime.runSync(runtime)(Ref.set(closed, true))
        const failed = (operation: string) => (e: unknown) =>
          new McpServerFailed({
            server: cfg.name,
            operation,
            reason: redactUrlsIn(
              reasonOf(e) + (stderrTail.length > 0 ? ` (stderr: ${stderrTail.join(" | ").slice(-400)})` : "")
            )
          })
        const start = Effect.gen(function*() {
          yield* Effect.tryPromise({
            try: () => client.connect(transport, { timeout: startTimeoutMs + 1000 }),
            catch: failed("start")
          })
          const tools: Array<ChildTool> = []
          let cursor: string | undefined
          do {
            const page = yield* Effect.tryPromise({
              try: () => client.listTools(cursor === undefined ? {} : { cursor }, { timeout: startTimeoutMs + 1000 }),
              catch: failed("list its tools")
            })
            for (const t of page.tools) {
              tools.push({
                server: cfg.name,
                name: t.name,
                description: t.description ?? "",
                inputSchema: t.inputSchema,
                readOnly: t.annotations?.readOnlyHint === true
              })
            }
            cursor = page.nextCursor
          } while (cursor !== undefined)
          return tools
        })
        const close = Effect.promise(() => client.close().catch(() => undefined))
        const event = childEvent(cfg.name)
        const tools = yield* start.pipe(
          Effect.tapError(() => event("start_failed")),
          Effect.tap(() => event("start")),
          Effect.timeoutFail({
            duration: config.childStartTimeout,
            onTimeout: () =>
              new McpServerTimeout({
                server: cfg.name,
                operation: "start and list its tools",
                timeoutMs: startTimeoutMs
              })
          }),
          Effect.onError(() => close)
        )
        const pid = transport instanceof StdioClientTransport ? transport.pid : null
        yield* Effect.logInfo("child MCP server started").pipe(
          Effect.annotateLogs({ server: cfg.name, transport: cfg.transport, tools: tools.length, pid })
        )
        return { connection: { client, tools, pid, closed } satisfies Connection, close }
      })

    const pool = yield* RcMap.make({
      lookup: (key: PoolKey) =>
        Effect.acquireRelease(
          startPermits.withPermits(1)(connect(key.cfg)),
          ({ close }, exit) =>
            close.pipe(
              Effect.zipRight(
                Effect.logInfo("child MCP server stopped").pipe(
                  Effect.annotateLogs({
                    server: key.cfg.name,
                    why: Exit.isSuccess(exit) ? "idle or bridge stopping" : "failed"
                  })
                )
              )
            )
        ).pipe(Effect.map(({ connection }) => connection)),
      idleTimeToLive: config.childIdleTtl
    })

    const keyOf = (cfg: ChildServerConfig) => new PoolKey(cfg)

    /** A running child for this entry (started if needed), held until the caller's scope closes. */
    const acquire = (cfg: ChildServerConfig) =>
      Effect.flatMap(breakerOf(cfg.name), (breaker) => breaker.protect(RcMap.get(pool, keyOf(cfg))))

    /** Calls one tool; a crashed child is restarted and the call retried once, a hung one is stopped. */
    const callTool = (
      cfg: ChildServerConfig,
      tool: string,
      args: Record<string, unknown>
    ): Effect.Effect<ToolOutcome, ChildServerError> => {
      const timeoutMs = cfg.timeoutMs ?? Duration.toMillis(config.agentToolTimeout)
      const key = keyOf(cfg)
      const once = Effect.scoped(
        Effect.gen(function*() {
          const connection = yield* acquire(cfg)
          const traceparent = tracing ? yield* currentTraceparent : Option.none<string>()
          const answer = yield* Effect.tryPromise({
            try: (signal) =>
              connection.client.callTool(
                {
                  name: tool,
                  arguments: args,
                  // W3C trace context for the child, unprefixed in _meta as the MCP conventions say (SEP-414).
                  ...(Option.isSome(traceparent) ? { _meta: { traceparent: traceparent.value } } : {})
                },
                {
                  signal,
                  timeout: timeoutMs + 60_000
                }
              ),
            catch: (e) => new CallFailed({ reason: reasonOf(e) })
          }).pipe(
            Effect.timeoutFail({
              duration: Duration.millis(timeoutMs),
              onTimeout: () => new McpServerTimeout({ server: cfg.name, operation: `answer ${tool}`, timeoutMs })
            }),
            Effect.catchTag(
              "CallFailed",
              (e) =>
                Effect.flatMap(Ref.get(connection.closed), (dead) =>
                  Effect.fail(
                    dead
                      ? new ChildGone({ reason: e.reason })
                      : new McpServerFailed({ server: cfg.name, operation: `run ${tool}`, reason: e.reason })
                  ))
            )
          )
          if (!Array.isArray(answer.content)) {
            return yield* new McpServerFailed({
              server: cfg.name,
              operation: `run ${tool}`,
              reason: "the answer is not a tool result (no content)"
            })
          }
          return { ok: answer.isError !== true, text: resultText(answer) } satisfies ToolOutcome
        })
      )
      const gone = (e: ChildGone) =>
        new McpServerFailed({ server: cfg.name, operation: `run ${tool}`, reason: `the server exited: ${e.reason}` })
      const event = childEvent(cfg.name)
      const called = Effect.flatMap(breakerOf(cfg.name), (breaker) =>
        breaker.protect(
          once.pipe(
            // A wedged child: stop it so the next call gets a fresh one.
            Effect.tapErrorTag("McpServerTimeout", () => Effect.zipRight(event("hang"), RcMap.invalidate(pool, key))),
            Effect.catchTag("ChildGone", (e) =>
              Effect.logWarning("child MCP server went away; starting it again").pipe(
                Effect.annotateLogs({ server: cfg.name, reason: e.reason }),
                Effect.zipRight(event("crash")),
                Effect.zipRight(RcMap.invalidate(pool, key)),
                Effect.zipRight(event("restart")),
                Effect.zipRight(once),
                Effect.catchTag(
                  "ChildGone",
                  (again) => Effect.zipRight(RcMap.invalidate(pool, key), Effect.fail(gone(again)))
                )
              ))
          )
        ))
      const observed = timed(called, (r, seconds, exit) =>
        r.update("mcpClient", seconds, [
          "tools/call",
          tool,
          Exit.isSuccess(exit) ? (exit.value.ok ? undefined : "tool_error") : errorTypeOfExit(exit),
          cfg.name
        ]))
      return tracing
        ? observed.pipe(
          Effect.withSpan(`tools/call ${tool}`, {
            kind: "client",
            captureStackTrace: false,
            attributes: {
              "mcp.method.name": "tools/call",
              "gen_ai.tool.name": tool,
              "gen_ai.operation.name": "execute_tool",
              "lmstudio_bridge.mcp.server": cfg.name,
              "network.transport": cfg.transport === "stdio" ? "pipe" : "tcp"
            }
          })
        )
        : observed
    }

    /** The tools of a running child (started if needed). */
    const toolsOf = (cfg: ChildServerConfig) => Effect.scoped(Effect.map(acquire(cfg), (c) => c.tools))

    return { toolsOf, callTool } as const
  })
}) {}
