/**
 * What the bridge's MCP server records of each request it serves (docs/observability.md): the
 * `mcp.server.operation.duration` histogram (`recordServed`), a `request_id` on every log line of the call
 * (`requestRuntime`), and — when traces are exported — a SERVER span `tools/call <tool>` whose parent is the
 * `traceparent` the client put in `params._meta` (`traceCall`). A result with `isError: true` is
 * `error.type=tool_error` (the MCP conventions) and an ERROR span.
 */
import type { CallToolResult } from "@modelcontextprotocol/server"
import { Data, Effect, Exit, Runtime } from "effect"
import { type ClientLog, currentLogContext, newLogId } from "../observability/Logging.js"
import { errorTypeOfExit, type Recorder } from "../observability/Metrics.js"
import { withRemoteParent } from "../observability/Propagation.js"

/** How the server is reached, as `network.transport` names it: stdio is a pipe, Streamable HTTP is TCP. */
export type NetworkTransport = "pipe" | "tcp"

export interface ServedRequest {
  readonly method: "tools/call" | "tools/list"
  /** The tool, when it is one of ours (another name is recorded as `_OTHER`). */
  readonly tool: string | undefined
  readonly jsonRpcId: string | number
  readonly sessionId: string | undefined
  readonly meta: Readonly<Record<string, unknown>> | undefined
  readonly transport: NetworkTransport
  readonly tracing: boolean
}

/** Inside the span only: a tool's error result, so the span ends as ERROR; caught again outside it. */
class ToolErrorResult extends Data.TaggedError("ToolErrorResult")<{ readonly result: CallToolResult }> {
  override get message(): string {
    const first = this.result.content[0]
    return first?.type === "text" ? first.text.split("\n")[0] ?? "tool error" : "tool error"
  }
}

/**
 * Records one served request from its start (`r.now()` before it ran) and exit. Called where the request is run
 * (Server.ts), outside the effect: timing it inside cost each call a clock read and an exit handler of its own in
 * the fiber (docs/benchmarks.md, issue 15).
 */
export const recordServed = (
  r: Recorder,
  req: ServedRequest,
  t0: bigint,
  exit: Exit.Exit<CallToolResult, unknown>
): void =>
  r.update("mcpServer", r.secondsSince(t0), [
    req.method,
    req.tool ?? "_OTHER",
    Exit.isSuccess(exit) ? (exit.value.isError === true ? "tool_error" : undefined) : errorTypeOfExit(exit),
    req.transport
  ])

/** The SERVER span of one served request when traces are exported (the request's effect unchanged otherwise). */
export const traceCall = <R>(
  req: ServedRequest,
  effect: Effect.Effect<CallToolResult, never, R>
): Effect.Effect<CallToolResult, never, R> => {
  if (!req.tracing) return effect
  const tool = req.tool ?? "_OTHER"
  return effect.pipe(
    Effect.flatMap((result) =>
      result.isError === true ? Effect.fail(new ToolErrorResult({ result })) : Effect.succeed(result)
    ),
    Effect.withSpan(`${req.method} ${tool}`, {
      kind: "server",
      captureStackTrace: false,
      attributes: {
        "mcp.method.name": req.method,
        "gen_ai.tool.name": tool,
        "gen_ai.operation.name": "execute_tool",
        "jsonrpc.request.id": String(req.jsonRpcId),
        "network.transport": req.transport,
        ...(req.sessionId !== undefined ? { "mcp.session.id": req.sessionId } : {})
      }
    }),
    Effect.catchTag("ToolErrorResult", (e) => Effect.succeed(e.result)),
    withRemoteParent(req.meta)
  )
}

/**
 * The runtime one served request runs on: its log lines carry a new `request_id` and the `tool` (and go to `client`
 * too, when given). Set on the fiber the
 * request starts with — an `Effect.locallyWith` around the call cost ~0.35 M instructions per call (callgrind,
 * docs/benchmarks.md) where this costs next to nothing.
 */
export const requestRuntime = <R>(
  runtime: Runtime.Runtime<R>,
  tool: string | undefined,
  client?: ClientLog
): Runtime.Runtime<R> =>
  Runtime.setFiberRef(runtime, currentLogContext, {
    request_id: newLogId(),
    tool: tool ?? "_OTHER",
    ...(client !== undefined ? { client } : {})
  })
