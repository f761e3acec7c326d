/**
 * The MCP face: an adapter over the SDK's low-level `Server` (DESIGN §5).
 *
 * - Tools are declared once (`tool(...)`) with Effect Schema input and output; the JSON Schemas the client sees come
 *   from `JSONSchema.make`, so Effect Schema is the single source of truth.
 * - Arguments are decoded strictly (unknown fields refused); a decoding failure is an error result naming the field
 *   and the rule.
 * - A typed failure becomes `isError: true` with `<Tag>: <message>`, a `Hint:` line and the error's fields as JSON
 *   — and no `structuredContent` (the SDK client validates it against `outputSchema` even on errors).
 * - A defect is logged and returned as an internal error result: a tool call never takes the server down.
 * - Progress: when the request carries a `progressToken`, tools may report progress (`notifications/progress`).
 * - Cancellation: the SDK's abort signal interrupts the tool's fiber (and with it the HTTP request to LM Studio).
 * - Both protocol eras from one server (SDK v2): a 2025-11-25 client after `initialize`, a 2026-07-28 client with its
 *   version and capabilities in every request's `_meta` envelope. The SDK answers `server/discover`, puts the server
 *   info in result `_meta` and the cache hints on list results; elicitation (a server → client request) exists only
 *   in the 2025 era, so a 2026 request's `elicit` is undefined (DESIGN §6, tool policy: nobody to ask).
 */
import {
  type CallToolResult,
  type ElicitRequestFormParams,
  type ElicitResult,
  Server,
  type Tool as SdkTool
} from "@modelcontextprotocol/server"
import { Cause, Context, Effect, Either, Exit, JSONSchema, ParseResult, Runtime, Schema } from "effect"
import { isExplained } from "../domain/Errors.js"
import { CLIENT_LOG_LEVELS, type ClientLog, type ClientLogLevel } from "../observability/Logging.js"
import { CurrentRecorder } from "../observability/Metrics.js"
import { type NetworkTransport, recordServed, requestRuntime, type ServedRequest, traceCall } from "./CallTelemetry.js"

export interface ToolAnnotations {
  readonly readOnlyHint: boolean
  readonly destructiveHint: boolean
  readonly idempotentHint: boolean
  readonly openWorldHint: boolean
}

/** What asking the user gave: the client's answer, or why asking failed. */
export type Elicited = ElicitResult | { readonly action: "failed"; readonly reason: string }

export interface ToolContext {
  /** Reports progress when the caller asked for it (a `progressToken`); a no-op otherwise. */
  readonly progress: (progress: number, message: string) => Effect.Effect<void>
  readonly wantsProgress: boolean
  /**
   * Asks the user through the client (MCP elicitation, form mode), when the client declared that it can; the request
   * is related to the tool call, and interrupting the effect cancels it.
   */
  readonly elicit: ((form: Omit<ElicitRequestFormParams, "mode">) => Effect.Effect<Elicited>) | undefined
}

export interface Tool<R> {
  readonly name: string
  readonly title: string
  readonly description: string
  readonly annotations: ToolAnnotations
  readonly inputSchema: SdkTool["inputSchema"]
  readonly outputSchema: NonNullable<SdkTool["outputSchema"]>
  readonly call: (args: unknown, ctx: ToolContext) => Effect.Effect<CallToolResult, never, R>
}

/** JSON Schema of an object Schema, as MCP wants it: `type: "object"` at the top, no `$schema`. */
const objectJsonSchema = <A, I>(schema: Schema.Schema<A, I>): { type: "object"; [key: string]: unknown } => {
  const { $schema: _ignored, ...rest } = JSONSchema.make(schema)
  // An empty Struct comes out as "any object or array" ($id "/schemas/{}"): a tool without parameters takes {}.
  if (!("properties" in rest)) return { type: "object", properties: {}, additionalProperties: false }
  return { ...rest, type: "object" }
}

/** The input of a tool without parameters: `{}` and nothing else (an empty Struct alone would let any field through). */
export const NoInput = Schema.Struct({}).pipe(
  Schema.filter((o) => {
    const extra = Object.keys(o)
    return extra.length === 0 ||
      `unexpected argument(s) ${extra.map((k) => JSON.stringify(k)).join(", ")}: this tool takes none; call it with {}`
  })
)

const text = (t: string): CallToolResult["content"][number] => ({ type: "text", text: t })

/** `<Tag>: <message>` + `Hint:` + the error's fields as JSON; no structuredContent. */
const errorResult = (
  error: { readonly _tag: string; readonly message: string; readonly hint: string }
): CallToolResult => {
  const fields = Object.fromEntries(Object.entries(error).filter(([k]) => k !== "_tag"))
  return {
    isError: true,
    content: [
      text(`${error._tag}: ${error.message}\nHint: ${error.hint}\n${JSON.stringify({ _tag: error._tag, ...fields })}`)
    ]
  }
}

const invalidArguments = (tool: string, detail: string): CallToolResult => ({
  isError: true,
  content: [
    text(
      `InvalidArguments: ${tool}: ${detail}\nHint: Check the tool's input schema (tools/list); unknown fields are not accepted.\n${
        JSON.stringify({ _tag: "InvalidArguments", tool })
      }`
    )
  ]
})

/** Declares a tool. The handler's typed errors must be the domain's explained errors. */
export const tool = <
  I,
  II,
  O,
  OI extends { readonly [key: string]: unknown },
  E extends { readonly _tag: string; readonly message: string },
  R
>(def: {
  readonly name: string
  readonly title: string
  readonly description: string
  readonly annotations: ToolAnnotations
  readonly input: Schema.Schema<I, II>
  readonly output: Schema.Schema<O, OI>
  readonly handler: (input: I, ctx: ToolContext) => Effect.Effect<O, E, R>
  /** The readable text rendering that accompanies the structured result. */
  readonly render: (output: O) => string
}): Tool<R> => {
  // Synchronous decoding and encoding: tool schemas have no effectful transformations, and the per-call path saves
  // the Effect steps.
  const decode = Schema.decodeUnknownEither(def.input, { onExcessProperty: "error", errors: "all" })
  const encode = Schema.encodeEither(def.output)
  return {
    name: def.name,
    title: def.title,
    description: def.description,
    annotations: def.annotations,
    inputSchema: objectJsonSchema(def.input),
    outputSchema: objectJsonSchema(def.output),
    call: (args, ctx) =>
      Effect.suspend(() => decode(args ?? {})).pipe(
        Effect.mapError((e) => ({ _tag: "Decode" as const, detail: ParseResult.TreeFormatter.formatErrorSync(e) })),
        Effect.flatMap((input) =>
          def.handler(input, ctx).pipe(
            Effect.flatMap((output) =>
              Either.match(encode(output), {
                onLeft: (e) => Effect.die(e),
                onRight: (structured): Effect.Effect<CallToolResult> =>
                  Effect.succeed({ content: [text(def.render(output))], structuredContent: { ...structured } })
              })
            ),
            Effect.mapError((e) => ({ _tag: "Failed" as const, error: e }))
          )
        ),
        Effect.catchAll((f) => {
          if (f._tag === "Decode") return Effect.succeed(invalidArguments(def.name, f.detail))
          const e = f.error
          return Effect.succeed(
            isExplained(e)
              ? errorResult(e)
              : errorResult({
                _tag: e._tag,
                message: e.message,
                hint: "This is unexpected; the bridge's log on stderr has details."
              })
          )
        }),
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause)
            ? Effect.succeed(
              errorResult({
                _tag: "Cancelled",
                message: `${def.name} was cancelled`,
                hint: "Call it again if you still need it."
              })
            )
            : Effect.logError("tool call failed unexpectedly", cause).pipe(
              Effect.annotateLogs({ tool: def.name }),
              Effect.as(
                errorResult({
                  _tag: "InternalError",
                  message: `${def.name} failed unexpectedly: ${Cause.pretty(cause).split("\n")[0]}`,
                  hint: "The bridge stays up; its log on stderr has the details. Please report it."
                })
              )
            )
        )
      )
  }
}

export interface ServerInfo {
  readonly name: string
  readonly version: string
  readonly instructions?: string
  /** Make a span per tool call (only worth it when traces are exported). */
  readonly tracing?: boolean
  /** How clients reach this server (`network.transport` of its metrics and spans). */
  readonly transport?: NetworkTransport
}

/**
 * Builds the SDK server for a list of tools. Tool effects run on the given runtime — the one bridge between the
 * SDK's promise callbacks and Effect, with the request's abort signal wired to fiber interruption.
 */
export const makeServer = <R>(info: ServerInfo, tools: ReadonlyArray<Tool<R>>, runtime: Runtime.Runtime<R>): Server => {
  const server = new Server(
    { name: info.name, version: info.version },
    { capabilities: { tools: {}, logging: {} }, ...(info.instructions ? { instructions: info.instructions } : {}) }
  )
  const byName = new Map(tools.map((t) => [t.name, t]))
  // The 1.x SDK's client (2025-era hosts) numbers this server's requests from 0 and ignores a cancellation of request 0
  // (it tests the id for truth): a ping takes id 0 before the first question, so a question can be cancelled.
  let idZero: Promise<unknown> | undefined
  const spendIdZero = () => (idZero ??= server.request({ method: "ping" }, { timeout: 5000 }).catch(() => undefined))
  // Metrics on or off for the runtime's life: the served-request histogram is recorded here, around the run.
  const recorder = Context.get(runtime.context, CurrentRecorder)
  /** Runs one request's effect on its own runtime (log context), traced and measured; a cancelled one says so. */
  const serve = async (
    served: ServedRequest,
    effect: Effect.Effect<CallToolResult, never, R>,
    client?: ClientLog,
    signal?: AbortSignal
  ): Promise<CallToolResult> => {
    const t0 = recorder?.now()
    const exit = await Runtime.runPromiseExit(requestRuntime(runtime, served.tool, client))(
      traceCall(served, effect),
      signal !== undefined ? { signal } : undefined
    )
    if (recorder !== undefined && t0 !== undefined) recordServed(recorder, served, t0, exit)
    if (Exit.isSuccess(exit)) return exit.value
    // Only an interruption (the client cancelled) gets here: the SDK drops answers to cancelled requests anyway.
    return errorResult({
      _tag: "Cancelled",
      message: `${served.tool ?? "the tool"} was cancelled`,
      hint: "Call it again if you still need it."
    })
  }
  // Logging (2025 era): a request's log lines go to the client once it asked for a level, at that level and above
  // (and within the bridge's own LOG_LEVEL). A 2026-era request asks with its own `_meta` logLevel (the SDK checks).
  let asked: ClientLogLevel | undefined
  server.setRequestHandler("logging/setLevel", (request) => {
    asked = request.params.level
    return {}
  })
  const severity = (level: ClientLogLevel) => CLIENT_LOG_LEVELS.indexOf(level)
  const listed = tools.map((t) => ({
    name: t.name,
    title: t.title,
    description: t.description,
    inputSchema: t.inputSchema,
    outputSchema: t.outputSchema,
    annotations: { title: t.title, ...t.annotations }
  }))

  server.setRequestHandler("tools/list", () => ({ tools: listed }))

  server.setRequestHandler("tools/call", async (request, sdk): Promise<CallToolResult> => {
    const t = byName.get(request.params.name)
    const modern = sdk.mcpReq.envelope !== undefined
    const send: ClientLog = (level, data) => {
      sdk.mcpReq.log(level, data, "lmstudio-bridge").catch(() => undefined)
    }
    const client: ClientLog = modern ? send : (level, data) => {
      if (asked !== undefined && severity(level) >= severity(asked)) send(level, data)
    }
    const served = {
      method: "tools/call",
      tool: t?.name,
      jsonRpcId: sdk.mcpReq.id,
      sessionId: sdk.sessionId,
      meta: request.params._meta ?? sdk.mcpReq._meta,
      transport: info.transport ?? "pipe",
      tracing: info.tracing === true
    } satisfies ServedRequest
    if (!t) {
      return serve(
        served,
        Effect.succeed(errorResult({
          _tag: "UnknownTool",
          message: `No tool named ${JSON.stringify(request.params.name)}`,
          hint: `Available tools: ${[...byName.keys()].join(", ")}`
        }))
      )
    }
    const token = request.params._meta?.progressToken ?? sdk.mcpReq._meta?.progressToken
    const canAsk = !modern && server.getClientCapabilities()?.elicitation?.form !== undefined
    const ctx: ToolContext = {
      elicit: !canAsk ? undefined : (form) =>
        Effect.tryPromise({
          try: async (signal) => {
            await spendIdZero()
            return sdk.mcpReq.elicitInput(
              { mode: "form", ...form },
              {
                signal,
                // The caller bounds the wait (the run's budget); the SDK's default of 60 s is not the user's pace.
                timeout: 7 * 24 * 3600 * 1000
              }
            )
          },
          catch: (e) => e
        }).pipe(
          Effect.catchAll((e): Effect.Effect<Elicited> =>
            Effect.succeed({ action: "failed", reason: e instanceof Error ? e.message : String(e) })
          )
        ),
      wantsProgress: token !== undefined,
      progress: (progress, message) =>
        token === undefined
          ? Effect.void
          : Effect.promise(() =>
            sdk.mcpReq.notify({ method: "notifications/progress", params: { progressToken: token, progress, message } })
          ).pipe(Effect.ignore)
    }
    return serve(served, t.call(request.params.arguments ?? {}, ctx), client, sdk.mcpReq.signal)
  })
  return server
}
