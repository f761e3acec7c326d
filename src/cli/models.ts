/** `lmstudio-bridge models list`: downloaded and loaded models. */
import { Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { LmStudioClient } from "../lmstudio/LmStudioClient.js"
import { type AppLayerFactory, baseUrl, json, overridesOf, printJson, printLine } from "./Shared.js"

const loadedOnly = Options.boolean("loaded").pipe(Options.withDescription("Only models that are loaded"))
const type = Options.choice("type", ["llm", "vlm", "embedding"]).pipe(
  Options.withDescription("Only models of this type"),
  Options.optional
)

const pad = (rows: ReadonlyArray<ReadonlyArray<string>>): Array<string> => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd())
}

const listCommand = (appLayer: AppLayerFactory) =>
  Command.make("list", { baseUrl, json, loadedOnly, type }, (flags) =>
    Effect.gen(function* () {
      const client = yield* LmStudioClient
      const all = yield* client.models()
      const models = all.filter(
        (m) => (!flags.loadedOnly || m.loaded.length > 0) && Option.match(flags.type, { onNone: () => true, onSome: (t) => m.type === t })
      )
      if (flags.json) {
        return yield* printJson({
          models: models.map((m) => ({
            key: m.key,
            type: m.type,
            loaded_instances: m.loaded.map((i) => ({ identifier: i.id, context_length: i.contextLength ?? null })),
            max_context_length: m.maxContextLength ?? null,
            tool_use: m.toolUse ?? null,
            source: m.source
          }))
        })
      }
      if (models.length === 0) return yield* printLine("No models match.")
      const rows = [
        ["MODEL", "TYPE", "CONTEXT", "TOOLS", "LOADED"],
        ...models.map((m) => [
          m.key,
          m.type,
          m.maxContextLength !== undefined ? String(m.maxContextLength) : "?",
          m.toolUse === undefined ? "?" : m.toolUse ? "yes" : "no",
          m.loaded.length === 0 ? "-" : m.loaded.map((i) => i.id).join(", ")
        ])
      ]
      for (const line of pad(rows)) yield* printLine(line)
    })
  ).pipe(
    Command.withDescription("List downloaded models, their type, context and loaded instances"),
    Command.provide((flags) => appLayer(overridesOf(flags)))
  )

export const modelsCommand = (appLayer: AppLayerFactory) =>
  Command.make("models").pipe(
    Command.withDescription("Inspect LM Studio's models"),
    Command.withSubcommands([listCommand(appLayer)])
  )
