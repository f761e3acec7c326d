#!/usr/bin/env node
/**
 * The one executable: the services (composed once, App.ts) handed to the CLI with the MCP faces.
 * Logs go to stderr; stdout carries command output (and, when serving, the MCP protocol).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Console, Effect, Layer, Option } from "effect"
import { createRequire } from "node:module"
import { appLayer, platformLayer } from "./App.js"
import { makeCli } from "./cli/Cli.js"
import { isExplained, renderError } from "./domain/Errors.js"
import { serveMcpHttp, serveMcpStdio } from "./mcp/index.js"
import * as Logging from "./observability/Logging.js"

const { version } = createRequire(import.meta.url)("../../package.json") as { version: string }

/** A typed failure becomes one line on stderr (`<Tag>: message (hint: …)`) and exit code 1; no stack traces. */
const report = (cause: Cause.Cause<unknown>) =>
  Effect.gen(function*() {
    const failure = Cause.failureOption(cause)
    if (Option.isSome(failure) && isExplained(failure.value)) {
      yield* Console.error(`lmstudio-bridge: ${renderError(failure.value)} (hint: ${failure.value.hint})`)
    } else if (
      Option.isSome(failure) && typeof failure.value === "object" && failure.value !== null && "_tag" in failure.value
    ) {
      // @effect/cli validation errors were already printed by the CLI itself.
    } else if (!Cause.isInterruptedOnly(cause)) {
      yield* Console.error(`lmstudio-bridge: unexpected error: ${Cause.pretty(cause)}`)
    }
  })

const cli = makeCli(appLayer(version), version, { stdio: serveMcpStdio, http: serveMcpHttp })

Effect.suspend(() => cli(process.argv)).pipe(
  Effect.tapErrorCause(report),
  Effect.provide(Layer.mergeAll(platformLayer, Logging.make(process.stderr.isTTY ? "pretty" : "json", "info"))),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
