/**
 * Model lifecycle as tools (DESIGN §5): lms_server_status, lms_list_loaded_models, lms_load_model,
 * lms_unload_model, lms_ensure_model_loaded. Every load has an explicit, finite TTL held by LM Studio where possible;
 * results say who enforces it.
 */
import { Effect, Option, Schema } from "effect"
import { AppConfig } from "../../Config.js"
import { InvalidArguments } from "../../domain/Errors.js"
import { Admission } from "../../lmstudio/Admission.js"
import { LmsCli } from "../../lmstudio/LmsCli.js"
import { LmStudioClient } from "../../lmstudio/LmStudioClient.js"
import { describeLoad, LoadedModel, LoadResult } from "../../lmstudio/LoadResult.js"
import { ModelLifecycle } from "../../lmstudio/ModelLifecycle.js"
import { NoInput, tool } from "../Server.js"

const renderLoad = (r: LoadResult) => describeLoad(r).join("\n")

const Ttl = Schema.optional(
  Schema.Number.annotations({
    description: "Idle time-to-live in seconds (whole, >= 1); values above the maximum are capped"
  })
)

const loadModel = tool({
  name: "lms_load_model",
  title: "Load a model (with a TTL)",
  description:
    "Load a model into LM Studio with an idle TTL that LM Studio itself enforces (never infinite): `keep_loaded` for longer work " +
    "(600 s), the default is temporary (300 s), or an explicit `ttl_seconds`. The load is verified. A model that is already loaded " +
    "is not loaded again (that would cost its memory twice): give a new `identifier` for a second instance on purpose.",
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  input: Schema.Struct({
    model: Schema.String,
    ttl_seconds: Ttl,
    keep_loaded: Schema.optional(Schema.Boolean),
    context_length: Schema.optional(Schema.Int.pipe(Schema.positive())),
    identifier: Schema.optional(Schema.String)
  }),
  output: LoadResult,
  handler: (input) =>
    Effect.flatMap(ModelLifecycle, (l) =>
      l.load({
        model: input.model,
        ttlSeconds: input.ttl_seconds,
        keepLoaded: input.keep_loaded,
        contextLength: input.context_length,
        identifier: input.identifier
      })),
  render: renderLoad
})

const ensureModelLoaded = tool({
  name: "lms_ensure_model_loaded",
  title: "Make sure a model is loaded",
  description:
    "Make sure a model is loaded, loading it only if needed (with a TTL), and verify it really is: every call checks LM Studio's " +
    "current listing, so a model LM Studio unloaded meanwhile is loaded again. Safe to call repeatedly; concurrent calls share " +
    "one load. Returns the identifier to use, whether it was already loaded, and its real context length.",
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  input: Schema.Struct({ model: Schema.String, ttl_seconds: Ttl }),
  output: LoadResult,
  handler: (input) =>
    Effect.flatMap(ModelLifecycle, (l) => l.ensureLoaded({ model: input.model, ttlSeconds: input.ttl_seconds })),
  render: renderLoad
})

const unloadModel = tool({
  name: "lms_unload_model",
  title: "Unload a model",
  description:
    "Unload one model instance (by the identifier from lms_list_loaded_models) or, with `all: true`, every loaded model.",
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  input: Schema.Struct({ identifier: Schema.optional(Schema.String), all: Schema.optional(Schema.Boolean) }),
  output: Schema.Struct({ unloaded: Schema.Array(Schema.String) }),
  handler: (input) =>
    Effect.gen(function*() {
      const lifecycle = yield* ModelLifecycle
      if ((input.all === true) === (input.identifier !== undefined)) {
        return yield* new InvalidArguments({
          command: "lms_unload_model",
          problem: "give exactly one of `identifier` and `all: true`"
        })
      }
      if (input.identifier !== undefined) {
        return { unloaded: (yield* lifecycle.unload(input.identifier)) ? [input.identifier] : [] }
      }
      return { unloaded: yield* lifecycle.unloadAll }
    }),
  render: (
    o
  ) => (o.unloaded.length === 0 ? "Nothing was unloaded (no such model loaded)." : `Unloaded: ${o.unloaded.join(", ")}`)
})

const listLoadedModels = tool({
  name: "lms_list_loaded_models",
  title: "Loaded models",
  description:
    "List the model instances loaded in LM Studio (read from LM Studio now) with their context, parallel slots, TTL, TTL left, " +
    "status, LM Link device and whether this bridge loaded them.",
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  input: NoInput,
  output: Schema.Struct({ instances: Schema.Array(LoadedModel) }),
  handler: () => Effect.map(Effect.flatMap(ModelLifecycle, (l) => l.listLoaded), (instances) => ({ instances })),
  render: (o) =>
    o.instances.length === 0
      ? "No models are loaded."
      : o.instances
        .map(
          (i) =>
            `${i.identifier} (${i.type}) TTL ${i.ttlSeconds ?? "?"} s${
              i.ownedByBridge ? ", loaded by this bridge" : ""
            }` +
            (i.device !== undefined ? `, on LM Link device ${i.device}` : "")
        )
        .join("\n")
})

const serverStatus = tool({
  name: "lms_server_status",
  title: "LM Studio server and lifecycle status",
  description:
    "Whether LM Studio's server is running and on which port, how this bridge loads models (lms CLI, JIT or REST), why, who " +
    "enforces model TTLs, and the bridge's LLM request queue (requests waiting for a model's permit, requests in flight per model).",
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  input: NoInput,
  output: Schema.Struct({
    running: Schema.Boolean,
    port: Schema.NullOr(Schema.Number),
    base_url: Schema.String,
    via: Schema.String,
    lifecycle: Schema.Struct({
      mode: Schema.String,
      backend: Schema.String,
      reason: Schema.String,
      ttl_enforced_by: Schema.String
    }),
    lms_cli: Schema.String,
    llm_queue: Schema.Struct({
      queued: Schema.Number,
      limit: Schema.Number,
      in_flight: Schema.Record({ key: Schema.String, value: Schema.Number })
    })
  }),
  handler: () =>
    Effect.gen(function*() {
      const config = yield* AppConfig
      const client = yield* LmStudioClient
      const lms = yield* LmsCli
      const queue = yield* (yield* Admission).stats
      const running = Option.isSome(yield* Effect.option(client.greeting()))
      const url = new URL(config.baseUrl)
      const status = running ? yield* Effect.option((yield* ModelLifecycle).status) : Option.none()
      const lifecycle = Option.match(status, {
        onNone: () => ({
          mode: config.lifecycle,
          backend: "unknown",
          reason: "LM Studio is not reachable",
          ttl_enforced_by: "unknown"
        }),
        onSome: (s) => ({ mode: s.mode, backend: s.backend, reason: s.reason, ttl_enforced_by: s.ttlEnforcedBy })
      })
      return {
        running,
        port: url.port === "" ? null : Number(url.port),
        base_url: config.baseUrl,
        via: "rest",
        lifecycle,
        lms_cli: Option.getOrElse(lms.path, () => "not installed"),
        llm_queue: { queued: queue.queued, limit: queue.queueLimit, in_flight: queue.inFlight }
      }
    }),
  render: (o) =>
    `${
      o.running ? `LM Studio's server is running on port ${o.port}` : "LM Studio's server is not reachable"
    } (${o.base_url}). ` +
    `Models are loaded via ${o.lifecycle.backend}: ${o.lifecycle.reason}. TTLs enforced by ${o.lifecycle.ttl_enforced_by}. ` +
    `LLM requests in flight: ${
      Object.values(o.llm_queue.in_flight).reduce((a, b) => a + b, 0)
    }, waiting: ${o.llm_queue.queued} (limit ${o.llm_queue.limit}).`
})

export const lifecycleTools = [serverStatus, listLoadedModels, loadModel, unloadModel, ensureModelLoaded] as const
