/** `lmstudio-bridge doctor`: the checks of the `diagnose` tool, for a terminal; exit 1 when any is a problem. */
import { Command } from "@effect/cli"
import { Effect } from "effect"
import { Diagnostics } from "../diagnostics/Diagnostics.js"
import { ChecksFailed } from "../domain/Errors.js"
import { type AppLayerFactory, baseUrl, json, printJson, printLine, withApp } from "./Shared.js"

export const doctorCommand = (appLayer: AppLayerFactory) =>
  Command.make("doctor", { baseUrl, json }, (flags) =>
    Effect.gen(function*() {
      const checks = yield* (yield* Diagnostics).run
      const problems = checks.filter((c) => c.status === "problem")
      if (flags.json) yield* printJson({ healthy: problems.length === 0, checks })
      else {
        for (const c of checks) {
          yield* printLine(`${c.status === "ok" ? "✓" : c.status === "warn" ? "!" : "✗"} ${c.name}: ${c.detail}`)
          if (c.fix) yield* printLine(`    fix: ${c.fix}`)
        }
      }
      if (problems.length > 0) {
        return yield* new ChecksFailed({ problems: problems.map((c) => c.name) })
      }
    })).pipe(
      Command.withDescription(
        "Check the whole setup (LM Studio, APIs, auth, models, lms CLI, breakers, config) and say how to fix it"
      ),
      withApp(appLayer)
    )
