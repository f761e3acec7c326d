/**
 * The simulator's HTTP face: LM Studio's endpoints (protocol §10 checklist) with their quirks, faults on demand,
 * and the control API under `/__sim/` used by tests and the `lms` shim.
 */
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Clock, Duration, Effect, Option, Predicate, Random, Schema, Stream } from "effect"
import { lmsInstanceInfo, lmsModelInfo, type SimInstance, type SimModel, v0Model, v1Model } from "./Catalog.js"
import {
  itemsToTurns,
  normaliseInput,
  responseFrames,
  type ResponseIds,
  responseObject,
  storedItems,
  v1ChatFrames,
  v1ChatResult
} from "./ResponsesWire.js"
import { type Conversation, embed, type Reply, reply, Scenario, type Turn } from "./Scenario.js"
import { FaultsInput, SettingsInput, type SimData, SimState } from "./SimState.js"
import { promptTokens as countPrompt } from "./SimTokens.js"
import {
  chatCompletion,
  chatCompletionFrames,
  complete,
  contextOverflow,
  embeddings,
  type Ids,
  modelNotFound,
  noModelsLoaded,
  openAiError,
  sseData,
  textCompletion,
  textCompletionFrames,
  unexpectedEndpoint,
  v0Extras,
  v1Error,
  type WireError
} from "./Wire.js"

type Sim = SimState["Type"]

const encoder = new TextEncoder()

const json = (body: unknown, status = 200): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(JSON.stringify(body), { status, contentType: "application/json; charset=utf-8" })

/** LM Studio pretty-prints error bodies with a 4-space indent (protocol §1.2); clients must not depend on it. */
const errorResponse = (e: WireError): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(JSON.stringify(e.body, null, 4), {
    status: e.status,
    contentType: "application/json; charset=utf-8"
  })

class Refused {
  readonly _tag = "Refused"
  constructor(readonly error: WireError) {}
}

const refuse = (e: WireError) => Effect.fail(new Refused(e))

const BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
const HEX = "0123456789abcdef"
const randomString = (length: number, alphabet: string) =>
  Effect.map(
    Effect.all(Array.from({ length }, () => Random.nextIntBetween(0, alphabet.length))),
    (ix) => ix.map((i) => alphabet[i]).join("")
  )
const numericId = Effect.map(Random.nextIntBetween(100_000_000, 999_999_999), String)

const makeIds = (toolCalls: number) =>
  Effect.all({
    completion: Effect.map(randomString(21, BASE36), (s) => `chatcmpl-${s}`),
    toolCalls: Effect.all(Array.from({ length: toolCalls }, () => numericId)),
    created: Effect.map(Clock.currentTimeMillis, (ms) => Math.floor(ms / 1000))
  })

const makeResponseIds = (toolCalls: number): Effect.Effect<ResponseIds> =>
  Effect.all({
    response: Effect.map(randomString(48, HEX), (s) => `resp_${s}`),
    reasoning: Effect.map(randomString(21, BASE36), (s) => `rs_${s}`),
    message: Effect.map(randomString(21, BASE36), (s) => `msg_${s}`),
    calls: Effect.all(
      Array.from({ length: toolCalls }, () =>
        Effect.all({ id: Effect.map(randomString(21, BASE36), (s) => `fc_${s}`), callId: numericId }))
    ),
    created: Effect.map(Clock.currentTimeMillis, (ms) =>
      Math.floor(ms / 1000))
  })

// ---------------------------------------------------------------------------------------------------------------
// Request bodies (lenient: unknown keys pass)
// ---------------------------------------------------------------------------------------------------------------

const OptNum = Schema.optional(Schema.NullOr(Schema.Number))

const ChatBody = Schema.Struct({
  model: Schema.optional(Schema.String),
  messages: Schema.Array(Schema.Unknown),
  stream: Schema.optional(Schema.Boolean),
  max_tokens: OptNum,
  ttl: Schema.optional(Schema.Number),
  stream_options: Schema.optional(Schema.Struct({ include_usage: Schema.optional(Schema.Boolean) })),
  tools: Schema.optional(Schema.Array(Schema.Unknown)),
  response_format: Schema.optional(Schema.Unknown)
})

const CompletionBody = Schema.Struct({
  model: Schema.optional(Schema.String),
  prompt: Schema.Union(Schema.String, Schema.Array(Schema.String)),
  stream: Schema.optional(Schema.Boolean),
  max_tokens: OptNum,
  ttl: Schema.optional(Schema.Number)
})

const EmbeddingBody = Schema.Struct({
  model: Schema.optional(Schema.String),
  input: Schema.Union(Schema.String, Schema.Array(Schema.String)),
  ttl: Schema.optional(Schema.Number)
})

const ResponsesBody = Schema.Struct({
  model: Schema.optional(Schema.String),
  input: Schema.Unknown,
  instructions: Schema.optional(Schema.NullOr(Schema.String)),
  previous_response_id: Schema.optional(Schema.NullOr(Schema.String)),
  stream: Schema.optional(Schema.Boolean),
  tools: Schema.optional(Schema.Array(Schema.Unknown)),
  max_output_tokens: OptNum,
  ttl: Schema.optional(Schema.Number),
  store: Schema.optional(Schema.Boolean)
})

const V1ChatBody = Schema.Struct({
  model: Schema.String,
  input: Schema.Unknown,
  system_prompt: Schema.optional(Schema.String),
  stream: Schema.optional(Schema.Boolean),
  max_output_tokens: OptNum,
  previous_response_id: Schema.optional(Schema.String),
  store: Schema.optional(Schema.Boolean)
})

const V1LoadBody = Schema.Struct({
  model: Schema.String,
  context_length: Schema.optional(Schema.Int),
  echo_load_config: Schema.optional(Schema.Boolean),
  ttl: Schema.optional(Schema.Number),
  identifier: Schema.optional(Schema.String)
})

const ControlLoadBody = Schema.Struct({
  model: Schema.String,
  identifier: Schema.optional(Schema.String),
  ttlSeconds: Schema.optional(Schema.Int),
  contextLength: Schema.optional(Schema.Int),
  parallel: Schema.optional(Schema.Int),
  device: Schema.optional(Schema.String)
})

const readJson = (req: HttpServerRequest.HttpServerRequest) =>
  req.text.pipe(
    Effect.orElseSucceed(() => ""),
    Effect.flatMap((text) =>
      Effect.try({
        try: (): unknown => (text.trim() === "" ? {} : JSON.parse(text)),
        catch: () => new Refused(openAiError(400, "Invalid JSON in request body", null, null))
      })
    )
  )

const decodeBody = <A, I>(schema: Schema.Schema<A, I>, body: unknown, v1 = false) =>
  Schema.decodeUnknown(schema)(body).pipe(
    Effect.mapError((e) => {
      const message = `Invalid request body: ${e.message.split("\n").slice(0, 3).join(" ")}`
      return new Refused(
        v1 ? v1Error(400, "invalid_request", message, "invalid_body") : openAiError(400, message, null, null)
      )
    })
  )

// ---------------------------------------------------------------------------------------------------------------
// Conversation helpers
// ---------------------------------------------------------------------------------------------------------------

const contentText = (content: unknown): string =>
  typeof content === "string"
    ? content
    : Array.isArray(content)
    ? content.map((p) => (typeof p === "object" && p !== null && "text" in p ? String(p.text) : "")).join("")
    : ""

const messagesToTurns = (messages: ReadonlyArray<unknown>): Array<Turn> =>
  messages.flatMap((m): Array<Turn> => {
    if (!Predicate.isRecord(m)) return []
    const msg = m
    const role = msg.role === "developer" ? "system" : msg.role
    if (role !== "system" && role !== "user" && role !== "assistant" && role !== "tool") return []
    return [{ role, text: contentText(msg.content) }]
  })

/** A minimal JSON value that satisfies a JSON schema: what the default model answers under `json_schema`. */
const exampleFor = (schema: unknown): unknown => {
  if (!Predicate.isRecord(schema)) return null
  const s = schema
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0]
  if ("const" in s) return s.const
  const type = Array.isArray(s.type) ? s.type[0] : s.type
  switch (type) {
    case "object": {
      const props = Predicate.isRecord(s.properties) ? s.properties : {}
      return Object.fromEntries(Object.entries(props).map(([k, v]) => [k, exampleFor(v)]))
    }
    case "array":
      return []
    case "string":
      return "example"
    case "integer":
    case "number":
      return 0
    case "boolean":
      return false
    default:
      return null
  }
}

const structuredReply = (responseFormat: unknown): Effect.Effect<Option.Option<Reply>, Refused> => {
  if (!Predicate.isRecord(responseFormat)) return Effect.succeedNone
  const rf = responseFormat
  if (rf.type === "text") return Effect.succeedNone
  if (rf.type === "json_schema") {
    const schema = Predicate.isRecord(rf.json_schema) ? rf.json_schema.schema : undefined
    return Effect.succeed(Option.some({ content: JSON.stringify(exampleFor(schema)) }))
  }
  return refuse(openAiError(400, "'response_format.type' must be 'json_schema' or 'text'", "response_format", null))
}

// ---------------------------------------------------------------------------------------------------------------
// Serving
// ---------------------------------------------------------------------------------------------------------------

/**
 * A prompt that does not fit the instance's loaded context is refused as LM Studio does (protocol §12.3); the count
 * (SimTokens.ts) is also the `prompt_tokens` of the usage.
 */
const requireRoom = (
  sim: Sim,
  served: Served,
  messages: ReadonlyArray<unknown>,
  tools: ReadonlyArray<unknown> | null | undefined
) =>
  Effect.flatMap(Effect.zip(sim.get, countPrompt(messages, tools)), ([data, needed]) => {
    const wording = data.settings.contextOverflow
    const context = Math.min(served.instance.contextLength, data.faults.slotContext ?? Number.POSITIVE_INFINITY)
    const refused = wording !== "ignore" && needed >= context
    return Effect.zipRight(
      sim.countPrompt(needed, context, refused),
      wording !== "ignore" && refused ? refuse(contextOverflow(wording, needed, context)) : Effect.succeed(needed)
    )
  })

interface Served {
  readonly instance: SimInstance
  readonly model: SimModel
  readonly jitLoaded: boolean
}

const resolveOrRefuse = (sim: Sim, name: string | undefined, ttl: number | undefined, v1 = false) =>
  Effect.flatMap(sim.resolve(name, ttl), (r): Effect.Effect<Served, Refused> => {
    switch (r._tag) {
      case "Instance":
        return Effect.succeed(r)
      case "NoModelsLoaded":
        return refuse(v1 ? v1Error(400, "model_not_found", "No models loaded. Please load a model.") : noModelsLoaded)
      case "ModelNotFound":
        return Effect.flatMap(sim.get, (d) =>
          refuse(
            v1
              ? v1Error(404, "model_not_found", `Model ${JSON.stringify(r.name)} not found.`)
              : modelNotFound(r.name, d.models.map((m) => m.key))
          ))
    }
  })

const requireKind = (served: Served, kind: "llm" | "embedding") => {
  const isEmbedding = served.model.type === "embedding"
  if (kind === "embedding" && !isEmbedding) return refuse(openAiError(400, "Model is not embedding", "model", null))
  if (kind === "llm" && isEmbedding) return refuse(openAiError(400, "Model is not llm", "model", null))
  return Effect.void
}

/**
 * Streams SSE frames with token pacing, and with the stream faults: a TCP reset or an SSE error frame after N
 * chunks. A stream the client closes early is counted as aborted — the tests use that to prove interruption
 * reaches the server.
 */
const sse = (
  sim: Sim,
  req: HttpServerRequest.HttpServerRequest,
  frames: ReadonlyArray<string>,
  instance: string | null
) =>
  Effect.gen(function*() {
    const faults = yield* sim.takeStreamFaults
    const { tokenDelayMs } = (yield* sim.get).faults
    let outcome: "running" | "completed" | "reset" = "running"
    const node = NodeHttpServerRequest.toServerResponse(req)
    const limit = Math.min(
      frames.length,
      faults.resetAfter ?? Number.POSITIVE_INFINITY,
      faults.errorAfter?.afterChunks ?? Number.POSITIVE_INFINITY
    )
    const body: Stream.Stream<string> = Stream.fromIterable(frames.slice(0, limit)).pipe(
      Stream.zipWithIndex,
      Stream.mapEffect((
        [frame, i]
      ) => (i > 0 && tokenDelayMs > 0 ? Effect.as(Effect.sleep(tokenDelayMs), frame) : Effect.succeed(frame))),
      Stream.concat(
        Stream.suspend((): Stream.Stream<string> => {
          if (faults.resetAfter !== null && faults.resetAfter <= limit && faults.resetAfter < frames.length) {
            outcome = "reset"
            // Let the frames already written reach the client, then cut the connection with a TCP reset.
            const flushed = Effect.async<void>((resume) => {
              node.write("", () => resume(Effect.void))
            })
            return Stream.fromEffect(
              flushed.pipe(
                Effect.zipRight(Effect.sleep(Duration.millis(10))),
                Effect.zipRight(Effect.sync(() => node.socket?.resetAndDestroy()))
              )
            ).pipe(Stream.drain)
          }
          if (faults.errorAfter !== null && faults.errorAfter.afterChunks < frames.length) {
            outcome = "completed"
            return Stream.make(
              sseData({ error: { message: faults.errorAfter.message, type: "server_error", param: null, code: null } })
            )
          }
          outcome = "completed"
          return Stream.empty
        })
      )
    )
    const acquire = instance === null ? Effect.void : sim.acquireInstance(instance)
    const release = instance === null ? Effect.void : sim.releaseInstance(instance)
    yield* acquire
    yield* sim.countStream("streamsStarted")
    const stream = body.pipe(
      Stream.map((s) => encoder.encode(s)),
      Stream.ensuring(
        Effect.zipRight(
          release,
          Effect.suspend(() => sim.countStream(outcome === "running" ? "streamsAborted" : "streamsCompleted"))
        )
      )
    )
    return HttpServerResponse.stream(stream, {
      contentType: "text/event-stream",
      headers: { "cache-control": "no-cache", connection: "keep-alive" }
    })
  })

/** Runs a non-streamed answer while the instance counts as busy. */
const busy = <A, E, R>(sim: Sim, instance: string, effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(sim.acquireInstance(instance), () => effect, () => sim.releaseInstance(instance))

const chatCompletions = (sim: Sim, req: HttpServerRequest.HttpServerRequest, body: unknown, v0: boolean) =>
  Effect.gen(function*() {
    const b = yield* decodeBody(ChatBody, body)
    const structured = yield* structuredReply(b.response_format)
    const served = yield* resolveOrRefuse(sim, b.model, b.ttl)
    yield* requireKind(served, "llm")
    const promptTokens = yield* requireRoom(sim, served, b.messages, b.tools)
    const turns = messagesToTurns(b.messages)
    const conversation: Conversation = { turns, hasTools: (b.tools?.length ?? 0) > 0 }
    const data = yield* sim.get
    const r = Option.getOrElse(structured, () => reply(data.scenario, conversation, served.instance.identifier))
    const c = complete(r, b.max_tokens ?? undefined)
    const ids: Ids = yield* makeIds(c.toolCalls.length)
    if (b.stream === true) {
      const frames = chatCompletionFrames(served.model, served.instance, c, promptTokens, ids, {
        includeUsage: b.stream_options?.include_usage === true,
        argsChunkSize: r.argsChunkSize ?? 8
      })
      return yield* sse(sim, req, frames, served.instance.identifier)
    }
    const payload = chatCompletion(served.model, served.instance, c, promptTokens, ids)
    return yield* busy(
      sim,
      served.instance.identifier,
      Effect.succeed(json(v0 ? { ...payload, ...v0Extras(served.model, served.instance, c) } : payload))
    )
  })

const completions = (sim: Sim, req: HttpServerRequest.HttpServerRequest, body: unknown, v0: boolean) =>
  Effect.gen(function*() {
    const b = yield* decodeBody(CompletionBody, body)
    const served = yield* resolveOrRefuse(sim, b.model, b.ttl)
    yield* requireKind(served, "llm")
    const prompt = typeof b.prompt === "string" ? b.prompt : b.prompt.join("")
    const promptTokens = yield* requireRoom(sim, served, [prompt], null)
    const turns: Array<Turn> = [{ role: "user", text: prompt }]
    const data = yield* sim.get
    const matched = data.scenario.rules.length > 0
      ? reply(data.scenario, { turns, hasTools: false }, served.instance.identifier)
      : undefined
    const r: Reply = matched ??
      { content: ` and so the story of "${prompt.trim().split(/\s+/).slice(-3).join(" ")}" continues.` }
    const c = complete({ ...r, toolCalls: [] }, b.max_tokens ?? undefined)
    const ids = yield* makeIds(0)
    if (b.stream === true) {
      return yield* sse(sim, req, textCompletionFrames(served.instance, c, ids), served.instance.identifier)
    }
    const payload = textCompletion(served.instance, c, promptTokens, ids)
    return yield* busy(
      sim,
      served.instance.identifier,
      Effect.succeed(json(v0 ? { ...payload, ...v0Extras(served.model, served.instance, c) } : payload))
    )
  })

const embeddingsRoute = (sim: Sim, body: unknown) =>
  Effect.gen(function*() {
    const b = yield* decodeBody(EmbeddingBody, body)
    const served = yield* resolveOrRefuse(sim, b.model, b.ttl)
    yield* requireKind(served, "embedding")
    const inputs = typeof b.input === "string" ? [b.input] : b.input
    const dims = served.model.embeddingDimensions || 768
    return yield* busy(
      sim,
      served.instance.identifier,
      Effect.succeed(json(embeddings(
        served.model,
        served.instance,
        inputs.map((t) => embed(t, dims))
      )))
    )
  })

const previousResponseNotFound = (id: string): WireError =>
  openAiError(
    400,
    `Previous response with id '${id}' not found.`,
    "previous_response_id",
    "previous_response_not_found"
  )

const responses = (sim: Sim, req: HttpServerRequest.HttpServerRequest, body: unknown) =>
  Effect.gen(function*() {
    const b = yield* decodeBody(ResponsesBody, body)
    const data = yield* sim.get
    const previousId = b.previous_response_id ?? null
    const previous = previousId === null ? [] : data.responses.get(previousId)?.items
    if (previous === undefined) return yield* refuse(previousResponseNotFound(previousId ?? ""))
    const input = normaliseInput(b.input)
    const instructions = b.instructions ? [{ role: "system", content: b.instructions }] : []
    const items = [...previous, ...input]
    const served = yield* resolveOrRefuse(sim, b.model, b.ttl)
    yield* requireKind(served, "llm")
    const promptTokens = yield* requireRoom(sim, served, [...instructions, ...items], b.tools)
    const turns = itemsToTurns([...instructions, ...items])
    const r = reply(data.scenario, { turns, hasTools: (b.tools?.length ?? 0) > 0 }, served.instance.identifier)
    const c = complete(r, b.max_output_tokens ?? undefined)
    const ids = yield* makeResponseIds(c.toolCalls.length)
    if (b.store !== false) yield* sim.storeResponse({ id: ids.response, items: [...items, ...storedItems(c, ids)] })
    if (b.stream === true) {
      return yield* sse(
        sim,
        req,
        responseFrames(served.instance, c, ids, promptTokens, previousId, r.argsChunkSize ?? 8),
        served.instance.identifier
      )
    }
    return yield* busy(
      sim,
      served.instance.identifier,
      Effect.succeed(json(responseObject(served.instance, c, ids, promptTokens, previousId)))
    )
  })

const v1Chat = (sim: Sim, req: HttpServerRequest.HttpServerRequest, body: unknown) =>
  Effect.gen(function*() {
    const b = yield* decodeBody(V1ChatBody, body, true)
    const data = yield* sim.get
    const previousId = b.previous_response_id ?? null
    if (previousId !== null && !previousId.startsWith("resp_")) {
      return yield* refuse(
        v1Error(
          400,
          "invalid_request",
          "previous_response_id must start with 'resp_'",
          "invalid_value",
          "previous_response_id"
        )
      )
    }
    const previous = previousId === null ? [] : data.responses.get(previousId)?.items
    if (previous === undefined) {
      return yield* refuse(v1Error(404, "invalid_request", `Response '${previousId}' not found.`))
    }
    const input = typeof b.input === "string"
      ? [{ role: "user", content: b.input }]
      : normaliseInput(b.input).map((i) => ({ role: "user", content: i }))
    const system = b.system_prompt ? [{ role: "system", content: b.system_prompt }] : []
    const served = yield* resolveOrRefuse(sim, b.model, undefined, true)
    yield* requireKind(served, "llm")
    const items = [...previous, ...input]
    const promptTokens = yield* requireRoom(sim, served, [...system, ...items], null)
    const turns = itemsToTurns([...system, ...items])
    const c = complete({
      ...reply(data.scenario, { turns, hasTools: false }, served.instance.identifier),
      toolCalls: []
    }, b.max_output_tokens ?? undefined)
    const ids = yield* makeResponseIds(0)
    const responseId = b.store === false ? null : ids.response
    if (responseId !== null) {
      yield* sim.storeResponse({ id: responseId, items: [...items, { role: "assistant", content: c.content }] })
    }
    const loadTime = served.jitLoaded ? 0.5 : null
    if (b.stream === true) {
      return yield* sse(
        sim,
        req,
        v1ChatFrames(served.model, served.instance, c, promptTokens, responseId, loadTime),
        served.instance.identifier
      )
    }
    return yield* busy(
      sim,
      served.instance.identifier,
      Effect.succeed(json(v1ChatResult(served.instance, c, promptTokens, responseId, loadTime)))
    )
  })

const loadSeconds = (m: SimModel) => Math.round((0.2 + m.sizeBytes / 4e9) * 1000) / 1000

const v1Load = (sim: Sim, body: unknown) =>
  Effect.gen(function*() {
    const b = yield* decodeBody(V1LoadBody, body, true)
    const data = yield* sim.get
    if (b.ttl !== undefined && data.settings.restLoadTtl === "reject") {
      return yield* refuse(
        v1Error(400, "invalid_request", "Unrecognized key(s) in object: 'ttl'", "unrecognized_keys", "ttl")
      )
    }
    const ttlMs = b.ttl !== undefined && data.settings.restLoadTtl === "accept" ? b.ttl * 1000 : null
    const outcome = yield* sim.load({
      model: b.model,
      identifier: b.identifier,
      ttlMs,
      contextLength: b.context_length
    })
    switch (outcome._tag) {
      case "NotFound":
        return yield* refuse(
          v1Error(404, "model_not_found", `Model ${JSON.stringify(b.model)} not found.`, "model_not_found", "model")
        )
      case "IdentifierTaken":
        return yield* refuse(
          v1Error(400, "invalid_request", `Identifier ${JSON.stringify(outcome.identifier)} is already in use.`)
        )
      case "Loaded":
        return json({
          type: outcome.model.type === "embedding" ? "embedding" : "llm",
          instance_id: outcome.instance.identifier,
          load_time_seconds: loadSeconds(outcome.model),
          status: "loaded",
          ...(b.echo_load_config === true ? { load_config: { context_length: outcome.instance.contextLength } } : {})
        })
    }
  })

const v1Unload = (sim: Sim, body: unknown) =>
  Effect.gen(function*() {
    const b = yield* decodeBody(Schema.Struct({ instance_id: Schema.String }), body, true)
    const found = yield* sim.unload(b.instance_id)
    if (!found) {
      return yield* refuse(
        v1Error(404, "model_not_found", `No loaded model with instance_id ${JSON.stringify(b.instance_id)}.`)
      )
    }
    return json({ instance_id: b.instance_id })
  })

/** What a broken LM Studio answers to everything (fault `failAll`). */
const brokenResponse = (f: { readonly status: number; readonly body: unknown }) =>
  HttpServerResponse.text(
    JSON.stringify(
      f.body ??
        {
          error: {
            message: `Simulated HTTP ${f.status}: LM Studio is failing`,
            type: "server_error",
            param: null,
            code: null
          }
        }
    ),
    { status: f.status, contentType: "application/json; charset=utf-8" }
  )

// ---------------------------------------------------------------------------------------------------------------
// Control API
// ---------------------------------------------------------------------------------------------------------------

const stateView = (d: SimData) => ({
  models: d.models.map((m) => ({ key: m.key, type: m.type })),
  loaded: d.instances,
  responses: d.responses.size,
  faults: d.faults,
  settings: d.settings,
  counters: d.counters,
  recent: d.recent
})

const control = (sim: Sim, method: string, path: string, body: Effect.Effect<unknown, Refused>) =>
  Effect.gen(function*() {
    const route = `${method} ${path}`
    switch (route) {
      case "GET /__sim/state":
        return json(stateView(yield* sim.get))
      case "POST /__sim/faults":
        yield* sim.setFaults(yield* decodeBody(FaultsInput, yield* body))
        return json((yield* sim.get).faults)
      case "DELETE /__sim/faults":
        yield* sim.clearFaults
        return json((yield* sim.get).faults)
      case "POST /__sim/scenario":
        yield* sim.setScenario(yield* decodeBody(Scenario, yield* body))
        return json({ ok: true })
      case "POST /__sim/settings":
        yield* sim.setSettings(yield* decodeBody(SettingsInput, yield* body))
        return json((yield* sim.get).settings)
      case "POST /__sim/reset":
        yield* sim.reset
        return json({ ok: true })
      case "POST /__sim/sweep":
        return json({ unloaded: yield* sim.sweep })
      case "POST /__sim/idle": {
        const b = yield* decodeBody(Schema.Struct({ ms: Schema.NonNegativeInt }), yield* body)
        return json({ unloaded: yield* sim.idle(b.ms) })
      }
      case "GET /__sim/lms/ls": {
        const d = yield* sim.get
        return json(d.models.map(lmsModelInfo))
      }
      case "GET /__sim/lms/ps": {
        const d = yield* sim.get
        return json(d.instances.map((i) => lmsInstanceInfo(d.models.find((m) => m.key === i.modelKey)!, i)))
      }
      case "POST /__sim/lms/load": {
        const b = yield* decodeBody(ControlLoadBody, yield* body)
        const outcome = yield* sim.load({
          model: b.model,
          identifier: b.identifier,
          ttlMs: b.ttlSeconds !== undefined ? b.ttlSeconds * 1000 : null,
          contextLength: b.contextLength,
          parallel: b.parallel,
          device: b.device
        })
        if (outcome._tag === "NotFound") return json({ error: "not_found" }, 404)
        if (outcome._tag === "IdentifierTaken") {
          return json({ error: "identifier_taken", identifier: outcome.identifier }, 409)
        }
        return json({
          identifier: outcome.instance.identifier,
          modelKey: outcome.model.key,
          sizeBytes: outcome.model.sizeBytes,
          loadTimeMs: loadSeconds(outcome.model) * 1000
        })
      }
      case "POST /__sim/lms/unload": {
        const b = yield* decodeBody(Schema.Struct({ identifier: Schema.String }), yield* body)
        return json({ unloaded: yield* sim.unload(b.identifier) })
      }
      default:
        return json({ error: `Unknown control route ${route}` }, 404)
    }
  })

// ---------------------------------------------------------------------------------------------------------------
// The app
// ---------------------------------------------------------------------------------------------------------------

const modelIdOf = (body: unknown): string | null =>
  typeof body === "object" && body !== null && "model" in body && typeof body.model === "string" ? body.model : null

export const app = Effect.gen(function*() {
  const req = yield* HttpServerRequest.HttpServerRequest
  const sim = yield* SimState
  const url = new URL(req.url, "http://simulator")
  const path = url.pathname
  const method = req.method
  const bodyOnce = yield* Effect.cached(readJson(req))

  if (path.startsWith("/__sim/")) {
    // The lms shim's routes stand for the CLI talking to LM Studio: a broken server breaks them too.
    const broken = (yield* sim.get).faults.failAll
    if (broken !== null && path.startsWith("/__sim/lms/")) return brokenResponse(broken)
    return yield* control(sim, method, path, bodyOnce)
  }

  return yield* serve(sim, req, method, path, bodyOnce).pipe(
    // The node server interrupts a handler whose client closed the connection: count it, so tests can prove that
    // interrupting a call on the bridge's side really aborts the HTTP request.
    Effect.onInterrupt(() => sim.countStream("requestsAborted"))
  )
}).pipe(Effect.catchTag("Refused", (r) => Effect.succeed(errorResponse(r.error))))

const serve = (
  sim: Sim,
  req: HttpServerRequest.HttpServerRequest,
  method: string,
  path: string,
  bodyOnce: Effect.Effect<unknown, Refused>
) =>
  Effect.gen(function*() {
    const data = yield* sim.get
    const body = method === "POST" ? yield* bodyOnce : {}
    yield* sim.countRequest({
      method,
      path,
      model: modelIdOf(body),
      authorization: req.headers["authorization"] ?? null,
      traceparent: typeof req.headers["traceparent"] === "string" ? req.headers["traceparent"] : null,
      body
    })
    if (data.faults.latencyMs > 0) yield* Effect.sleep(data.faults.latencyMs)
    if (data.faults.failAll !== null) return brokenResponse(data.faults.failAll)

    if (data.settings.apiToken !== null && path !== "/lmstudio-greeting") {
      if (req.headers["authorization"] !== `Bearer ${data.settings.apiToken}`) {
        return yield* refuse(
          openAiError(
            401,
            "Invalid or missing API token. Pass it as 'Authorization: Bearer <token>'.",
            null,
            "invalid_api_key"
          )
        )
      }
    }
    const injected = yield* sim.takeFailNext(path)
    if (Option.isSome(injected)) {
      return HttpServerResponse.text(
        JSON.stringify(
          injected.value.body ??
            {
              error: {
                message: `Simulated HTTP ${injected.value.status}`,
                type: "server_error",
                param: null,
                code: null
              }
            }
        ),
        { status: injected.value.status, contentType: "application/json; charset=utf-8" }
      )
    }
    if (yield* sim.takeMalformed(path)) {
      return HttpServerResponse.text("{\"id\":\"chatcmpl-broken\",\"object\":\"chat.compl", {
        status: 200,
        contentType: "application/json; charset=utf-8"
      })
    }

    const v1Enabled = data.settings.v1
    // A server with the native v0 API switched off answers its routes like any unknown route.
    const route = !data.settings.v0 && path.startsWith("/api/v0/") ? `${method} (v0 off)` : `${method} ${path}`
    switch (route) {
      case "GET /lmstudio-greeting":
        return json({ lmstudio: true })
      case "GET /v1/models": {
        const loaded = data.instances.map((i) => i.identifier)
        const ids = data.settings.jit ? [...new Set([...data.models.map((m) => m.key), ...loaded])] : loaded
        return json({
          data: ids.map((id) => ({ id, object: "model", owned_by: "organization_owner" })),
          object: "list"
        })
      }
      case "GET /api/v0/models":
        return json({ object: "list", data: data.models.map((m) => v0Model(m, data.instances)) })
      case "POST /v1/chat/completions":
        return yield* chatCompletions(sim, req, body, false)
      case "POST /api/v0/chat/completions":
        return yield* chatCompletions(sim, req, body, true)
      case "POST /v1/completions":
        return yield* completions(sim, req, body, false)
      case "POST /api/v0/completions":
        return yield* completions(sim, req, body, true)
      case "POST /v1/embeddings":
      case "POST /api/v0/embeddings":
        return yield* embeddingsRoute(sim, body)
      case "POST /v1/responses":
        if (data.settings.responses) return yield* responses(sim, req, body)
        break
      case "GET /api/v1/models":
        if (v1Enabled) return json({ models: data.models.map((m) => v1Model(m, data.instances)) })
        break
      case "POST /api/v1/models/load":
        if (v1Enabled) return yield* v1Load(sim, body)
        break
      case "POST /api/v1/models/unload":
        if (v1Enabled) return yield* v1Unload(sim, body)
        break
      case "POST /api/v1/chat":
        if (v1Enabled) return yield* v1Chat(sim, req, body)
        break
    }
    if (data.settings.v0 && method === "GET" && path.startsWith("/api/v0/models/")) {
      const id = decodeURIComponent(path.slice("/api/v0/models/".length))
      const m = data.models.find((x) => x.key === id)
      return m
        ? json(v0Model(m, data.instances))
        : errorResponse({ status: 404, body: { error: `Model "${id}" not found` } })
    }
    // Pre-0.4 servers answer /api/v1/* like any unknown route outside it: HTTP 200 with an error body.
    const unknown = unexpectedEndpoint(method, path)
    return errorResponse(path.startsWith("/api/v1/") && !v1Enabled ? { ...unknown, status: 200 } : unknown)
  })
