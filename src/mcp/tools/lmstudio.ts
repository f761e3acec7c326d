/**
 * LM Studio as tools (DESIGN §5): health_check, list_models, get_model_info, chat_completion, text_completion,
 * create_response, generate_embeddings. Inference tools resolve the model through the catalog (validated, with
 * suggestions) and hold a lifecycle lease while they run, so the model is loaded with an explicit TTL and never
 * evicted by the bridge mid-call.
 */
import { Clock, Effect, Option, Schema, Stream } from "effect"
import { AppConfig } from "../../Config.js"
import { isExplained } from "../../domain/Errors.js"
import { nullable, wireKey } from "../../domain/JsonShape.js"
import { type ChatMessage, UsageCounts } from "../../domain/Messages.js"
import { Admission } from "../../lmstudio/Admission.js"
import { collectChat } from "../../lmstudio/client/Mapping.js"
import { type ModelInfo, ModelSummary } from "../../lmstudio/client/Shapes.js"
import { requireRoom } from "../../lmstudio/ContextCheck.js"
import { LmsCli } from "../../lmstudio/LmsCli.js"
import { LmStudioClient } from "../../lmstudio/LmStudioClient.js"
import { ModelCatalog } from "../../lmstudio/ModelCatalog.js"
import { ModelLifecycle } from "../../lmstudio/ModelLifecycle.js"
import { NoInput, tool, type ToolContext } from "../Server.js"

const readOnly = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false }
const generating = { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false }

const ModelParam = Schema.optional(
  Schema.String.annotations({
    description: "Model key or instance identifier; omit or \"default\" for the configured default model"
  })
)

const UsageOut = nullable(UsageCounts)

/**
 * Runs `use` on the resolved model, loaded (with an explicit TTL) and leased for the duration of the call; when
 * LM Studio turns out not to have it (unloaded under the bridge), it is ensured again once and `use` runs again.
 */
const onModel = <A, E, R>(
  model: string | undefined,
  prompt: string,
  use: (identifier: string) => Effect.Effect<A, E, R>
) =>
  Effect.gen(function*() {
    const config = yield* AppConfig
    const catalog = yield* ModelCatalog
    const lifecycle = yield* ModelLifecycle
    const admission = yield* Admission
    const found = yield* catalog.resolve(model)
    // The request waits for one of the instance's permits (DESIGN §6 "Concurrency"); past the queue, BridgeOverloaded.
    return yield* lifecycle.withModel(
      { model: found.instance?.id ?? found.model.key },
      (held) =>
        held.request((m) =>
          Effect.zipRight(
            requireRoom(m, prompt, config.contextDefaultTokens),
            admission.run(m.identifier, m.parallel, use(m.identifier))
          )
        )
    )
  })

const elapsed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const t0 = yield* Clock.currentTimeMillis
    const a = yield* effect
    return [a, (yield* Clock.currentTimeMillis) - t0] as const
  })

const PROGRESS_EVERY = 16

/** Streams a chat, reporting the text so far every few deltas, and returns the same result as a plain chat. */
const chatWithProgress = (client: LmStudioClient, request: Parameters<LmStudioClient["chat"]>[0], ctx: ToolContext) =>
  Effect.suspend(() => {
    let text = ""
    let count = 0
    return collectChat(
      client.chatStream(request).pipe(
        Stream.tap((d) => {
          if (d._tag === "Content") {
            text += d.text
            count++
            return count % PROGRESS_EVERY === 0 ? ctx.progress(count, text.slice(-2000)) : Effect.void
          }
          return d._tag === "Finish" ? ctx.progress(count, text.slice(-2000)) : Effect.void
        })
      )
    )
  })

class NothingToSend extends Schema.TaggedError<NothingToSend>()("NothingToSend", { tool: Schema.String }) {
  override get message(): string {
    return `${this.tool} needs something to send: give \`messages\` with a user message, or \`prompt\``
  }
  get hint(): string {
    return "For example: {\"prompt\": \"Summarise this text: ...\"}"
  }
}

const Role = Schema.Literal("system", "user", "assistant")

const chatCompletion = tool({
  name: "chat_completion",
  title: "Chat with a local model",
  description:
    "Send a chat to a local model in LM Studio and get its answer. Use it to delegate self-contained work (drafting, summarising, " +
    "reviewing, brainstorming) to a local model instead of doing it yourself. Give `messages`, or just `prompt` (plus `system_prompt`). " +
    "Returns the answer text, the model's reasoning (when it reasons), the model that served it, the finish reason and token usage.",
  annotations: generating,
  input: Schema.Struct({
    messages: Schema.optional(
      Schema.Array(Schema.Struct({ role: Role, content: Schema.String })).annotations({
        description: "The conversation so far"
      })
    ),
    prompt: Schema.optional(Schema.String.annotations({ description: "A single user message (instead of messages)" })),
    system_prompt: Schema.optional(Schema.String),
    model: ModelParam,
    temperature: Schema.optional(Schema.Number.pipe(Schema.between(0, 2))),
    max_tokens: Schema.optional(Schema.Int.pipe(Schema.positive())),
    response_format: Schema.optional(
      Schema.Unknown.annotations({
        description: "OpenAI response_format, e.g. {\"type\":\"json_schema\",\"json_schema\":{...}}"
      })
    )
  }),
  output: Schema.Struct({
    content: Schema.String,
    reasoning: Schema.NullOr(Schema.String),
    model: Schema.String,
    finish_reason: Schema.String,
    usage: UsageOut,
    duration_ms: Schema.Number
  }),
  handler: (input, ctx) =>
    Effect.gen(function*() {
      const client = yield* LmStudioClient
      const messages: Array<ChatMessage> = [
        ...(input.system_prompt !== undefined ? [{ role: "system" as const, content: input.system_prompt }] : []),
        ...(input.messages ?? []),
        ...(input.prompt !== undefined ? [{ role: "user" as const, content: input.prompt }] : [])
      ]
      if (messages.filter((m) => m.role !== "system").length === 0) {
        return yield* Effect.fail(new NothingToSend({ tool: "chat_completion" }))
      }
      const [r, ms] = yield* elapsed(
        onModel(input.model, messages.map((m) => m.content ?? "").join("\n"), (model) => {
          const request = {
            model,
            messages,
            temperature: input.temperature,
            maxTokens: input.max_tokens,
            responseFormat: input.response_format
          }
          return ctx.wantsProgress && input.response_format === undefined
            ? chatWithProgress(client, request, ctx)
            : client.chat(request)
        })
      )
      return {
        content: r.content,
        reasoning: r.reasoning ?? null,
        model: r.model,
        finish_reason: r.finishReason,
        usage: r.usage,
        duration_ms: ms
      }
    }),
  render: (o) => (o.reasoning ? `${o.content}\n\n[reasoning]\n${o.reasoning}` : o.content)
})

const textCompletion = tool({
  name: "text_completion",
  title: "Raw text completion",
  description:
    "Continue a raw prompt with a local model (no chat template). Prefer chat_completion for instructions; use this for " +
    "code completion or text continuation. Returns the generated text (inline <think> blocks moved to reasoning), the model, " +
    "the finish reason and usage.",
  annotations: generating,
  input: Schema.Struct({
    prompt: Schema.String,
    model: ModelParam,
    max_tokens: Schema.optional(Schema.Int.pipe(Schema.positive())),
    temperature: Schema.optional(Schema.Number.pipe(Schema.between(0, 2))),
    stop: Schema.optional(Schema.Array(Schema.String))
  }),
  output: Schema.Struct({
    text: Schema.String,
    reasoning: Schema.NullOr(Schema.String),
    model: Schema.String,
    finish_reason: Schema.String,
    usage: UsageOut
  }),
  handler: (input) =>
    Effect.gen(function*() {
      const client = yield* LmStudioClient
      const r = yield* onModel(input.model, input.prompt, (model) =>
        client.complete({
          model,
          prompt: input.prompt,
          maxTokens: input.max_tokens,
          temperature: input.temperature,
          stop: input.stop
        }))
      return {
        text: r.text,
        reasoning: r.reasoning ?? null,
        model: r.model,
        finish_reason: r.finishReason,
        usage: r.usage
      }
    }),
  render: (o) => o.text
})

const createResponse = tool({
  name: "create_response",
  title: "Stateful response (Responses API)",
  description:
    "Ask a local model through LM Studio's stateful Responses API. Pass the returned response_id as previous_response_id to " +
    "continue the same conversation without resending it. Returns the response id, the answer text, reasoning and usage.",
  annotations: generating,
  input: Schema.Struct({
    input: Schema.String.annotations({ description: "The user's message for this turn" }),
    previous_response_id: Schema.optional(Schema.String.pipe(Schema.startsWith("resp_"))),
    model: ModelParam,
    reasoning_effort: Schema.optional(Schema.Literal("low", "medium", "high"))
  }),
  output: Schema.Struct({
    response_id: Schema.String,
    output_text: Schema.String,
    reasoning: Schema.NullOr(Schema.String),
    model: Schema.String,
    usage: UsageOut
  }),
  handler: (input) =>
    Effect.gen(function*() {
      const client = yield* LmStudioClient
      const r = yield* onModel(input.model, input.input, (model) =>
        client.respond({
          model,
          input: input.input,
          previousResponseId: input.previous_response_id,
          reasoningEffort: input.reasoning_effort
        }))
      return {
        response_id: r.id,
        output_text: r.outputText,
        reasoning: r.reasoning ?? null,
        model: r.model,
        usage: r.usage
      }
    }),
  render: (o) => `${o.output_text}\n\n(response_id: ${o.response_id})`
})

const generateEmbeddings = tool({
  name: "generate_embeddings",
  title: "Embed text",
  description:
    "Turn text into embedding vectors with a local embedding model (for similarity search, clustering, deduplication). " +
    "Without `model`, a loaded embedding model is used, else the first downloaded one. Returns the vectors and their size.",
  annotations: { ...readOnly, idempotentHint: true },
  input: Schema.Struct({
    input: Schema.Union(Schema.String, Schema.Array(Schema.String).pipe(Schema.minItems(1), Schema.maxItems(256))),
    model: ModelParam
  }),
  output: Schema.Struct({
    model: Schema.String,
    dimensions: Schema.Number,
    vectors: Schema.Array(Schema.Array(Schema.Number))
  }),
  handler: (input) =>
    Effect.gen(function*() {
      const client = yield* LmStudioClient
      const catalog = yield* ModelCatalog
      const chosen = input.model ??
        (yield* Effect.map(catalog.snapshot, ({ models }) => {
          const embedding = models.filter((m) => m.type === "embedding")
          return (embedding.find((m) => m.loaded.length > 0) ?? embedding[0])?.key
        }))
      const r = yield* onModel(
        chosen,
        // Each text is embedded on its own: the longest must fit.
        (typeof input.input === "string" ? [input.input] : input.input).reduce(
          (a, b) => (b.length > a.length ? b : a),
          ""
        ),
        (model) => client.embed({ model, input: input.input })
      )
      return { model: r.model, dimensions: r.dimensions, vectors: r.vectors }
    }),
  render: (o) => `${o.vectors.length} vector(s) of ${o.dimensions} dimensions from ${o.model}`
})

/** Devices of loaded instances (LM Link), which only `lms ps` tells; empty without the CLI. */
const devicesNow = Effect.flatMap(LmsCli, (lms) =>
  lms.available
    ? Effect.map(Effect.option(lms.ps()), (ps) =>
      new Map(
        Option.getOrElse(ps, () => []).flatMap((
          i
        ) => (i.deviceIdentifier ? [[i.identifier, i.deviceIdentifier] as const] : []))
      ))
    : Effect.succeed(new Map<string, string>()))

const ageSeconds = (seenAt: number) =>
  Effect.map(Clock.currentTimeMillis, (now) => Math.max(0, Math.round((now - seenAt) / 1000)))

const ListingAge = Schema.Number.annotations({
  description:
    "How old LM Studio's listing behind this answer is, in seconds (it is cached up to MODEL_CACHE_TTL_SECONDS)"
})

/** The model with the LM Link device of each loaded instance, where `lms ps` tells one. */
const withDevices = (m: ModelInfo, devices: ReadonlyMap<string, string>): ModelInfo => ({
  ...m,
  loaded: m.loaded.map((i) => {
    const device = devices.get(i.id) ?? i.device
    return device === undefined ? i : { ...i, device }
  })
})

const ModelDetails = Schema.Struct({
  ...ModelSummary.fields,
  listingAgeSeconds: wireKey("listing_age_seconds", ListingAge)
})

const listModels = tool({
  name: "list_models",
  title: "List local models",
  description:
    "List the models downloaded in LM Studio: key, type (llm, vlm, embedding), loaded instances, context length and whether it " +
    "was trained for tool use. Use it to pick a `model` for the other tools.",
  annotations: readOnly,
  input: Schema.Struct({
    loaded_only: Schema.optional(Schema.Boolean),
    type: Schema.optional(Schema.Literal("llm", "vlm", "embedding"))
  }),
  output: Schema.Struct({ models: Schema.Array(ModelSummary), source: Schema.String, listing_age_seconds: ListingAge }),
  handler: (input) =>
    Effect.gen(function*() {
      const snapshot = yield* (yield* ModelCatalog).snapshot
      const models = snapshot.models.filter(
        (m) =>
          (input.loaded_only !== true || m.loaded.length > 0) && (input.type === undefined || m.type === input.type)
      )
      const devices = models.some((m) => m.loaded.length > 0) ? yield* devicesNow : new Map<string, string>()
      return {
        models: models.map((m) => withDevices(m, devices)),
        source: snapshot.source,
        listing_age_seconds: yield* ageSeconds(snapshot.fetchedAt)
      }
    }),
  render: (o) =>
    o.models.length === 0
      ? "No models match."
      : [
        ...o.models.map(
          (m) =>
            `${m.key} (${m.type})` +
            (m.loaded.length > 0
              ? ` loaded as ${
                m.loaded.map((i) => (i.device !== undefined ? `${i.id} on ${i.device}` : i.id)).join(", ")
              }`
              : "")
        ),
        `(LM Studio's listing from ${o.listing_age_seconds} s ago)`
      ].join("\n")
})

const getModelInfo = tool({
  name: "get_model_info",
  title: "Details of one model",
  description:
    "Details of one model (or of the default model): type, context length, tool use, vision, quantization, loaded instances.",
  annotations: readOnly,
  input: Schema.Struct({ model: ModelParam }),
  output: ModelDetails,
  handler: (input) =>
    Effect.gen(function*() {
      const found = yield* (yield* ModelCatalog).resolve(input.model)
      const devices = found.model.loaded.length > 0 ? yield* devicesNow : new Map<string, string>()
      return { ...withDevices(found.model, devices), listingAgeSeconds: yield* ageSeconds(found.seenAt) }
    }),
  render: (o) => JSON.stringify(Schema.encodeSync(ModelDetails)(o), null, 2)
})

const Breaker = Schema.Struct({
  dependency: Schema.String,
  state: Schema.String,
  consecutive_failures: Schema.Number,
  retry_after_seconds: Schema.Number
})

const healthCheck = tool({
  name: "health_check",
  title: "Is LM Studio there?",
  description:
    "Check the connection to LM Studio: reachable or not (with the reason and a fix), which APIs it offers, loaded models, the lms CLI, " +
    "circuit-breaker states and latency. Call it first when another tool fails.",
  annotations: readOnly,
  input: NoInput,
  output: Schema.Struct({
    reachable: Schema.Boolean,
    base_url: Schema.String,
    base_url_source: Schema.String.annotations({
      description: "Where the address came from: LMSTUDIO_BASE_URL, LM Studio's port file, or the default"
    }),
    problem: Schema.NullOr(Schema.String),
    hint: Schema.NullOr(Schema.String),
    apis: Schema.NullOr(
      Schema.Struct({ openai: Schema.Boolean, v0: Schema.Boolean, v1: Schema.Boolean, responses: Schema.Boolean })
    ),
    loaded: Schema.Array(Schema.String),
    lms_cli: Schema.String,
    breakers: Schema.Array(Breaker),
    latency_ms: Schema.NullOr(Schema.Number)
  }),
  handler: () =>
    Effect.gen(function*() {
      const client = yield* LmStudioClient
      const lms = yield* LmsCli
      const config = yield* AppConfig
      const catalog = yield* ModelCatalog
      const lmsCli = Option.getOrElse(lms.path, () => "not installed")
      const probe = yield* Effect.either(
        elapsed(Effect.zipRight(client.greeting(), Effect.zip(client.apis, catalog.loadedNow)))
      )
      // Read after the probe: what this very check just saw counts.
      const breakers = (yield* Effect.all([client.breaker, lms.breaker])).map((b) => ({
        dependency: b.dependency,
        state: b.state,
        consecutive_failures: b.consecutiveFailures,
        retry_after_seconds: b.retryAfterSeconds
      }))
      if (probe._tag === "Left") {
        const e = probe.left
        return {
          reachable: false,
          base_url: config.baseUrl,
          base_url_source: config.baseUrlSource,
          problem: `${e._tag}: ${e.message}`,
          hint: isExplained(e) ? e.hint : null,
          apis: null,
          loaded: [],
          lms_cli: lmsCli,
          breakers,
          latency_ms: null
        }
      }
      const [[apis, loaded], ms] = probe.right
      return {
        reachable: true,
        base_url: config.baseUrl,
        base_url_source: config.baseUrlSource,
        problem: null,
        hint: null,
        apis,
        loaded: loaded.map((l) => l.instance.id),
        lms_cli: lmsCli,
        breakers,
        latency_ms: ms
      }
    }),
  render: (o) =>
    [
      o.reachable
        ? `LM Studio is reachable at ${o.base_url} (${o.latency_ms} ms). Loaded: ${o.loaded.join(", ") || "none"}.`
        : `LM Studio is NOT reachable at ${o.base_url}: ${o.problem}\nHint: ${o.hint ?? ""}`,
      ...o.breakers
        .filter((b) => b.state !== "closed")
        .map((b) =>
          `Circuit breaker of ${b.dependency} is ${b.state.replace("_", "-")}${
            b.state === "open" ? ` (next try in ${b.retry_after_seconds} s)` : ""
          }.`
        )
    ].join("\n")
})

export const lmstudioTools = [
  healthCheck,
  listModels,
  getModelInfo,
  chatCompletion,
  textCompletion,
  createResponse,
  generateEmbeddings
] as const
