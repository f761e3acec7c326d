/** `diagnose`: every check `lmstudio-bridge doctor` runs, each ok / warn / problem with the fix. */
import { Effect, Schema } from "effect"
import { Diagnostics } from "../../diagnostics/Diagnostics.js"
import { NoInput, tool } from "../Server.js"

export const diagnose = tool({
  name: "diagnose",
  title: "Diagnose the setup",
  description:
    "Run every setup check (LM Studio reachable, APIs, authentication, models, the default model's tool use, the lms CLI, circuit " +
    "breakers, configuration and mcp.json) and return each as ok, warn or problem with the fix. Use it when something does not work.",
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  input: NoInput,
  output: Schema.Struct({
    healthy: Schema.Boolean,
    checks: Schema.Array(
      Schema.Struct({
        name: Schema.String,
        status: Schema.Literal("ok", "warn", "problem"),
        detail: Schema.String,
        fix: Schema.NullOr(Schema.String)
      })
    )
  }),
  handler: () =>
    Effect.map(Effect.flatMap(Diagnostics, (d) => d.run), (checks) => ({
      healthy: checks.every((c) => c.status !== "problem"),
      checks
    })),
  render: (o) =>
    o.checks.map((c) =>
      `${c.status === "ok" ? "ok     " : c.status === "warn" ? "warn   " : "PROBLEM"} ${c.name}: ${c.detail}${
        c.fix ? `\n        fix: ${c.fix}` : ""
      }`
    ).join("\n")
})
