/**
 * Logging: JSON lines (or a pretty rendering on a TTY) written to **stderr**, never stdout — stdout belongs to the
 * MCP protocol when serving, and to command output in the CLI. Level and format come from AppConfig.
 */
import { Effect, Layer, Logger, LogLevel } from "effect"
import { AppConfig, type LogFormat, type LogLevelName } from "../Config.js"

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

/** The stderr logger for a format. */
export const stderrLogger = (format: LogFormat): Logger.Logger<unknown, void> =>
  format === "pretty"
    ? Logger.prettyLogger({ stderr: true, colors: "auto", mode: "tty" })
    : Logger.withConsoleError(Logger.jsonLogger)

/** Replaces the default logger with the configured stderr logger and sets the minimum level. */
export const make = (format: LogFormat, level: LogLevelName): Layer.Layer<never> =>
  Layer.merge(Logger.replace(Logger.defaultLogger, stderrLogger(format)), Logger.minimumLogLevel(toLogLevel(level)))

/** Logging configured from AppConfig. */
export const layer: Layer.Layer<never, never, AppConfig> = Layer.unwrapEffect(
  Effect.map(AppConfig, (config) => make(config.logFormat, config.logLevel))
)
