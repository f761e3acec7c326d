/** `lmstudio-bridge models list`: downloaded and loaded models. */
import { Args, Command, Options } from "@effect/cli"
import { Effect, Option, Schema } from "effect"
import { InvalidArguments } from "../domain/Errors.js"
import { describeLoad, LoadedModel, LoadResult } from "../lmstudio/LoadResult.js"
import { ModelCatalog } from "../lmstudio/ModelCatalog.js"
import { ModelLifecycle } from "../lmstudio/ModelLifecycle.js"
import { type AppLayerFactory, baseUrl, json, printEncoded, printJson, printLine, withApp } from "./Shared.js"

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
    Effect.gen(function*() {
      const all = (yield* (yield* ModelCatalog).snapshot).models
      const models = all.filter(
        (m) =>
          (!flags.loadedOnly || m.loaded.length > 0) &&
          Option.match(flags.type, { onNone: () => true, onSome: (t) => m.type === t })
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
    })).pipe(
      Command.withDescription("List downloaded models, their type, context and loaded instances"),
      withApp(appLayer)
    )

const printLoad = (r: LoadResult, asJson: boolean) =>
  asJson
    ? printEncoded(LoadResult, r)
    : Effect.forEach(describeLoad(r), printLine, { discard: true })

const model = Args.text({ name: "model" }).pipe(Args.withDescription("Model key, e.g. qwen/qwen3-4b"))
const ttl = Options.integer("ttl").pipe(
  Options.withDescription("Idle TTL in seconds (capped at MAX_MODEL_TTL_SECONDS; never infinite)"),
  Options.optional
)
const keep = Options.boolean("keep").pipe(Options.withDescription("Keep it loaded longer (MODEL_TTL_SECONDS, 600 s)"))
const temp = Options.boolean("temp").pipe(
  Options.withDescription("Temporary load (TEMP_MODEL_TTL_SECONDS, 300 s; the default)")
)
const contextLength = Options.integer("context-length").pipe(
  Options.withDescription("Context length to load with"),
  Options.optional
)
const identifier = Options.text("identifier").pipe(
  Options.withDescription("Instance identifier to give it"),
  Options.optional
)

const ttlRequest = (flags: { readonly ttl: Option.Option<number>; readonly keep: boolean; readonly temp: boolean }) =>
  flags.keep && flags.temp
    ? Effect.fail(new InvalidArguments({ command: "models load", problem: "choose one of --keep and --temp" }))
    : Effect.succeed({ ttlSeconds: Option.getOrUndefined(flags.ttl), keepLoaded: flags.keep })

const loadCommand = (appLayer: AppLayerFactory) =>
  Command.make(
    "load",
    { model, ttl, keep, temp, contextLength, identifier, baseUrl, json },
    (flags) =>
      Effect.gen(function*() {
        const lifecycle = yield* ModelLifecycle
        const r = yield* lifecycle.load({
          model: flags.model,
          ...(yield* ttlRequest(flags)),
          contextLength: Option.getOrUndefined(flags.contextLength),
          identifier: Option.getOrUndefined(flags.identifier)
        })
        yield* printLoad(r, flags.json)
      })
  ).pipe(
    Command.withDescription("Load a model with a TTL that LM Studio itself holds, and verify it is loaded"),
    withApp(appLayer)
  )

const ensureCommand = (appLayer: AppLayerFactory) =>
  Command.make("ensure", { model, ttl, keep, temp, baseUrl, json }, (flags) =>
    Effect.gen(function*() {
      const lifecycle = yield* ModelLifecycle
      const r = yield* lifecycle.ensureLoaded({ model: flags.model, ...(yield* ttlRequest(flags)) })
      yield* printLoad(r, flags.json)
    })).pipe(
      Command.withDescription("Make sure a model is loaded (load it only if needed) and verify it"),
      withApp(appLayer)
    )

const target = Args.text({ name: "identifier" }).pipe(
  Args.withDescription("Instance identifier (see `models loaded`)"),
  Args.optional
)
const all = Options.boolean("all").pipe(Options.withDescription("Unload every loaded model"))

const unloadCommand = (appLayer: AppLayerFactory) =>
  Command.make("unload", { target, all, baseUrl, json }, (flags) =>
    Effect.gen(function*() {
      const lifecycle = yield* ModelLifecycle
      if (flags.all === Option.isSome(flags.target)) {
        return yield* new InvalidArguments({
          command: "models unload",
          problem: "give exactly one of an identifier and --all"
        })
      }
      const unloaded = Option.isSome(flags.target)
        ? (yield* lifecycle.unload(flags.target.value))
          ? [flags.target.value]
          : []
        : yield* lifecycle.unloadAll
      if (flags.json) return yield* printJson({ unloaded })
      yield* printLine(
        unloaded.length === 0 ? "Nothing was unloaded (no such model loaded)." : `Unloaded: ${unloaded.join(", ")}`
      )
    })).pipe(
      Command.withDescription("Unload a model instance, or all of them"),
      withApp(appLayer)
    )

const loadedCommand = (appLayer: AppLayerFactory) =>
  Command.make("loaded", { baseUrl, json }, (flags) =>
    Effect.gen(function*() {
      const lifecycle = yield* ModelLifecycle
      const loaded = yield* lifecycle.listLoaded
      if (flags.json) {
        return yield* printEncoded(Schema.Struct({ instances: Schema.Array(LoadedModel) }), { instances: loaded })
      }
      if (loaded.length === 0) return yield* printLine("No models are loaded.")
      const rows = [
        ["IDENTIFIER", "MODEL", "TYPE", "CONTEXT", "TTL", "TTL LEFT", "STATUS", "DEVICE"],
        ...loaded.map((m) => [
          m.identifier,
          m.model,
          m.type,
          m.contextLength !== undefined ? String(m.contextLength) : "?",
          m.ttlSeconds !== undefined ? `${m.ttlSeconds} s` : "?",
          m.ttlLeftSeconds !== undefined ? `${m.ttlLeftSeconds} s` : "?",
          m.status ?? "?",
          m.device ?? "local"
        ])
      ]
      for (const line of pad(rows)) yield* printLine(line)
    })).pipe(
      Command.withDescription("List loaded model instances with their TTL (TTL details need the lms CLI)"),
      withApp(appLayer)
    )

export const modelsCommand = (appLayer: AppLayerFactory) =>
  Command.make("models").pipe(
    Command.withDescription("Inspect and manage LM Studio's models"),
    Command.withSubcommands([
      listCommand(appLayer),
      loadedCommand(appLayer),
      loadCommand(appLayer),
      ensureCommand(appLayer),
      unloadCommand(appLayer)
    ])
  )
