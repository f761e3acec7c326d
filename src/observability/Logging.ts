/**
 * Logging: JSON lines (or a pretty rendering on a TTY) written to **stderr**, never stdout — stdout belongs to the
 * MCP protocol when serving, and to command output in the CLI. Level and format come from AppConfig. Secrets in any
 * URL a line carries (a password, a token in the query) are hidden. A served request's lines also go to its MCP
 * client as `notifications/message` when it asked for them (`logging/setLevel`, or a 2026-era request's logLevel).
 */
import { Context, Effect, FiberRef, FiberRefs, HashMap, HashSet, Layer, Logger, LogLevel, Option, Tracer } from "effect"
import { globalValue } from "effect/GlobalValue"
import { randomBytes } from "node:crypto"
import { AppConfig, type LogFormat, type LogLevelName } from "../Config.js"
import { redactUrlsIn } from "../domain/Redact.js"
import { tracingEnabled } from "./Tracing.js"

const toLogLevel = (level: LogLevelName): LogLevel.LogLevel => {
  switch (level) {
    case "trace":
      return LogLevel.Trace
    case "debug":
      return LogLevel.Debug
    case "info":
      return LogLevel.Info
    case "warn":
      return LogLevel.Warning
    case "error":
      return LogLevel.Error
    case "none":
      return LogLevel.None
  }
}

/** A value with the secrets of any URL in it hidden (a child's stderr line, an error's text). */
const clean = (u: unknown): unknown => typeof u === "string" ? redactUrlsIn(u) : Array.isArray(u) ? u.map(clean) : u

const prettyStderr = Logger.prettyLogger({ stderr: true, colors: "auto", mode: "tty" }).pipe(
  Logger.mapInputOptions((o) => ({
    ...o,
    message: clean(o.message),
    annotations: HashMap.map(o.annotations, clean)
  }))
)
// JSON lines: the whole line, whatever field a URL is in.
const jsonStderr = Logger.withConsoleError(Logger.map(Logger.jsonLogger, redactUrlsIn))

/**
 * What a line is logged for: the MCP request (`request_id`, `tool`) or agent run (`run_id`) around it. Held in a
 * FiberRef and written into a line only when one is logged: `Effect.annotateLogs` would cost every request ~10 µs
 * whether it logs or not (docs/benchmarks.md, issue 15).
 */
export interface LogContext {
  readonly request_id?: string
  readonly tool?: string
  readonly run_id?: string
  /** Where the request's lines also go: its MCP client (`notifications/message`), when it asked for them. */
  readonly client?: ClientLog
}

/** MCP's log levels (RFC 5424's), lowest first. */
export const CLIENT_LOG_LEVELS = [
  "debug",
  "info",
  "notice",
  "warning",
  "error",
  "critical",
  "alert",
  "emergency"
] as const
export type ClientLogLevel = (typeof CLIENT_LOG_LEVELS)[number]

/** Sends one log line of a request to its MCP client (the line's secrets already hidden). */
export type ClientLog = (level: ClientLogLevel, data: Readonly<Record<string, unknown>>) => void

const clientLevelOf = (level: LogLevel.LogLevel): ClientLogLevel => {
  switch (level._tag) {
    case "All":
    case "Trace":
    case "Debug":
      return "debug"
    case "Info":
      return "info"
    case "Warning":
      return "warning"
    case "Error":
      return "error"
    case "Fatal":
    case "None":
      return "critical"
  }
}

/** Forwards a line to the request's client when its log context names one; nothing otherwise. */
const clientForwarder = Logger.make(({ annotations, context, logLevel, message }) => {
  const { client, request_id, run_id, tool } = FiberRefs.getOrDefault(context, currentLogContext)
  if (client === undefined) return
  const text = Array.isArray(message) && message.length === 1 ? message[0] : message
  const data: Record<string, unknown> = { message: text }
  for (const [key, value] of annotations) data[key] = value
  if (request_id !== undefined) data.request_id = request_id
  if (tool !== undefined) data.tool = tool
  if (run_id !== undefined) data.run_id = run_id
  // As on stderr: the secrets of any URL anywhere in the line hidden, whatever field it is in. A line that is not
  // JSON (a cycle, a bigint) stays on stderr only.
  let json: string
  try {
    json = JSON.stringify(data)
  } catch {
    return
  }
  client(clientLevelOf(logLevel), JSON.parse(redactUrlsIn(json)) as Record<string, unknown>)
})

export const currentLogContext: FiberRef.FiberRef<LogContext> = globalValue(
  Symbol.for("lmstudio-bridge/Logging/currentLogContext"),
  () => FiberRef.unsafeMake<LogContext>({})
)

/** Runs `self` with `context` added to what its log lines carry. */
export const withLogContext = (context: LogContext) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.locallyWith(self, currentLogContext, (outer) => ({ ...outer, ...context }))

/** The log context of the line's fiber, as annotations. */
const withLogContextOf = <O>(logger: Logger.Logger<unknown, O>): Logger.Logger<unknown, O> =>
  Logger.mapInputOptions(logger, (o) => {
    const context = FiberRefs.getOrDefault(o.context, currentLogContext)
    let annotations = o.annotations
    if (context.request_id !== undefined) annotations = HashMap.set(annotations, "request_id", context.request_id)
    if (context.tool !== undefined) annotations = HashMap.set(annotations, "tool", context.tool)
    if (context.run_id !== undefined) annotations = HashMap.set(annotations, "run_id", context.run_id)
    return annotations === o.annotations ? o : { ...o, annotations }
  })

/** A line logged inside a span carries its `trace_id` and `span_id`, so it leads to its trace. */
const withTraceIds = <O>(logger: Logger.Logger<unknown, O>): Logger.Logger<unknown, O> =>
  Logger.mapInputOptions(logger, (o) => {
    const span = Context.getOption(FiberRefs.getOrDefault(o.context, FiberRef.currentContext), Tracer.ParentSpan)
    if (Option.isNone(span)) return o
    return {
      ...o,
      annotations: HashMap.set(HashMap.set(o.annotations, "trace_id", span.value.traceId), "span_id", span.value.spanId)
    }
  })
const prettyPlain = withLogContextOf(prettyStderr)
const jsonPlain = withLogContextOf(jsonStderr)
const prettyTraced = withTraceIds(prettyPlain)
const jsonTraced = withTraceIds(jsonPlain)
const ours: ReadonlyArray<Logger.Logger<unknown, unknown>> = [
  prettyPlain,
  jsonPlain,
  prettyTraced,
  jsonTraced,
  clientForwarder
]

/**
 * The stderr logger for a format (one instance each, so installing twice never logs twice); with trace ids when
 * traces are exported (without, the ids would name spans nobody can look up).
 */
const stderrLogger = (format: LogFormat, traced: boolean): Logger.Logger<unknown, void> =>
  format === "pretty" ? (traced ? prettyTraced : prettyPlain) : traced ? jsonTraced : jsonPlain

/**
 * Installs the configured stderr logger in place of the default one (and of any stderr logger installed before,
 * e.g. the binary's early one) and sets the minimum level.
 */
export const make = (format: LogFormat, level: LogLevelName, traced = false): Layer.Layer<never> =>
  Layer.merge(
    // One atomic update of the logger set: no moment without a logger, no moment with two.
    Layer.scopedDiscard(
      Effect.locallyScopedWith(FiberRef.currentLoggers, (loggers) =>
        HashSet.add(
          HashSet.add(
            ours.reduce((set, l) => HashSet.remove(set, l), HashSet.remove(loggers, Logger.defaultLogger)),
            stderrLogger(format, traced)
          ),
          clientForwarder
        ))
    ),
    Logger.minimumLogLevel(toLogLevel(level))
  )

/** An id for the log lines of one request or run (`request_id`, `run_id`): 16 random hex digits. */
export const newLogId = (): string => randomBytes(8).toString("hex")

/** Logging configured from AppConfig. */
export const layer: Layer.Layer<never, never, AppConfig> = Layer.unwrapEffect(
  Effect.map(AppConfig, (config) => make(config.logFormat, config.logLevel, tracingEnabled(config)))
)
