/**
 * Logging: JSON lines (or a pretty rendering on a TTY) written to **stderr**, never stdout — stdout belongs to the
 * MCP protocol when serving, and to command output in the CLI. Level and format come from AppConfig. Secrets in any
 * URL a line carries (a password, a token in the query) are hidden.
 */
import { Effect, FiberRef, HashMap, HashSet, Layer, Logger, LogLevel } from "effect"
import { AppConfig, type LogFormat, type LogLevelName } from "../Config.js"
import { redactUrlsIn } from "../domain/Redact.js"

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

/** The stderr logger for a format (one instance each, so installing twice never logs twice). */
const stderrLogger = (
  format: LogFormat
): Logger.Logger<unknown, void> => (format === "pretty" ? prettyStderr : jsonStderr)

/**
 * Installs the configured stderr logger in place of the default one (and of any stderr logger installed before,
 * e.g. the binary's early one) and sets the minimum level.
 */
export const make = (format: LogFormat, level: LogLevelName): Layer.Layer<never> =>
  Layer.merge(
    // One atomic update of the logger set: no moment without a logger, no moment with two.
    Layer.scopedDiscard(
      Effect.locallyScopedWith(FiberRef.currentLoggers, (loggers) =>
        HashSet.add(
          HashSet.remove(HashSet.remove(HashSet.remove(loggers, Logger.defaultLogger), prettyStderr), jsonStderr),
          stderrLogger(format)
        ))
    ),
    Logger.minimumLogLevel(toLogLevel(level))
  )

/** Logging configured from AppConfig. */
export const layer: Layer.Layer<never, never, AppConfig> = Layer.unwrapEffect(
  Effect.map(AppConfig, (config) => make(config.logFormat, config.logLevel))
)
