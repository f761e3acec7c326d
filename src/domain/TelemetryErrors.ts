/**
 * Typed errors of the bridge's own telemetry (metrics endpoint, trace export); the contract of Errors.ts: the
 * context a user needs, a derived `message` and a `hint` that names the fix.
 */
import { Schema } from "effect"

/** The metrics endpoint could not listen (port taken, address not on this machine, no permission). */
export class MetricsEndpointFailed extends Schema.TaggedError<MetricsEndpointFailed>()("MetricsEndpointFailed", {
  host: Schema.String,
  port: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `The metrics endpoint cannot listen on ${this.host}:${this.port}: ${this.reason}`
  }
  get hint(): string {
    return /EADDRINUSE/.test(this.reason)
      ? `Another process has port ${this.port}: set METRICS_PORT to a free port (or 0 for any), or stop the other process.`
      : /EADDRNOTAVAIL|ENOTFOUND|EAI_AGAIN/.test(this.reason)
      ? `${this.host} is not an address of this machine: set METRICS_HOST to 127.0.0.1 (the default) or an address it has.`
      : "Set METRICS_PORT to a port above 1024 that is free, or unset it to turn metrics off."
  }
}

/** The OpenTelemetry exporters could not be loaded (a broken install). */
export class TelemetryUnavailable extends Schema.TaggedError<TelemetryUnavailable>()("TelemetryUnavailable", {
  what: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Cannot turn on ${this.what}: ${this.reason}`
  }
  get hint(): string {
    return "Reinstall lmstudio-bridge (npm ci) so its OpenTelemetry packages are present, or turn the setting off."
  }
}
