/**
 * The simulator's state: downloaded models, loaded instances (with `:N` identifiers, JIT flags and idle TTLs),
 * stored Responses, the scenario, faults and counters. All of it sits in one `Ref`; every change is a pure function
 * of the previous state, so concurrent requests cannot interleave half-updates.
 *
 * Model resolution follows protocol §5: exact identifier → loaded instance of the key → JIT load of a downloaded
 * model (with auto-evict and TTL) → the single-loaded-model fallback → "No models loaded" / `model_not_found`.
 */
import { Clock, Context, Effect, Layer, Option, Ref, Schedule, Schema } from "effect"
import { defaultCatalog, type SimInstance, type SimModel } from "./Catalog.js"
import { type Scenario } from "./Scenario.js"

// ---------------------------------------------------------------------------------------------------------------
// Faults (control API `POST /__sim/faults`)
// ---------------------------------------------------------------------------------------------------------------

const Count = Schema.optional(Schema.Int.pipe(Schema.positive()))

export const FaultsInput = Schema.Struct({
  /** Delay before every LM Studio answer (not the control API). */
  latencyMs: Schema.optional(Schema.NonNegativeInt),
  /** Delay between streamed chunks (token pacing). */
  tokenDelayMs: Schema.optional(Schema.NonNegativeInt),
  /** The next `count` requests (whose path starts with `path`) get this status and body. */
  failNext: Schema.optional(
    Schema.Struct({
      status: Schema.Int,
      body: Schema.optional(Schema.Unknown),
      path: Schema.optional(Schema.String),
      count: Count
    })
  ),
  /**
   * LM Studio is broken: every route (the greeting too) and every `lms` command answer this status until it is
   * cleared with `null` (the `lms` shim prints an error and exits 1).
   */
  failAll: Schema.optional(Schema.NullOr(Schema.Struct({ status: Schema.Int, body: Schema.optional(Schema.Unknown) }))),
  /** The next `count` streams are cut (TCP reset) after `afterChunks` chunks. */
  resetMidStream: Schema.optional(Schema.Struct({ afterChunks: Schema.NonNegativeInt, count: Count })),
  /** The next `count` streams send an SSE error frame after `afterChunks` chunks. */
  streamError: Schema.optional(
    Schema.Struct({ afterChunks: Schema.NonNegativeInt, message: Schema.String, count: Count })
  ),
  /** The next `count` responses (whose path starts with `path`) are truncated, invalid JSON. */
  malformedJson: Schema.optional(Schema.Struct({ path: Schema.optional(Schema.String), count: Count })),
  /** Loads report success but the model never appears. */
  loadNeverLoads: Schema.optional(Schema.Boolean),
  /** Memory is short: loads get at most this much context, whatever was asked (lmstudio-bug-tracker#1902); null clears. */
  contextCap: Schema.optional(Schema.NullOr(Schema.Int.pipe(Schema.positive()))),
  /**
   * Each request gets at most this much of the loaded context (llama.cpp's parallel slots splitting it), while the
   * listing still reports the whole loaded context; null clears.
   */
  slotContext: Schema.optional(Schema.NullOr(Schema.Int.pipe(Schema.positive()))),
  /** An instance is unloaded right after it served this many inference requests. */
  unloadAfterRequests: Schema.optional(Schema.NullOr(Schema.Int.pipe(Schema.positive()))),
  /** JIT loading fails with "No models loaded" although it is on (protocol §5, issues #1217/#1730). */
  jitFailure: Schema.optional(Schema.Boolean),
  /** Stored responses are forgotten, as after an LM Studio restart: every `previous_response_id` is unknown. */
  forgetResponses: Schema.optional(Schema.Boolean)
})
export type FaultsInput = typeof FaultsInput.Type

export interface Faults {
  readonly latencyMs: number
  readonly tokenDelayMs: number
  readonly failNext: ReadonlyArray<
    { readonly status: number; readonly body: unknown; readonly path: string; readonly remaining: number }
  >
  readonly failAll: { readonly status: number; readonly body: unknown } | null
  readonly resetMidStream: { readonly afterChunks: number; readonly remaining: number } | null
  readonly streamError: { readonly afterChunks: number; readonly message: string; readonly remaining: number } | null
  readonly malformedJson: { readonly path: string; readonly remaining: number } | null
  readonly loadNeverLoads: boolean
  readonly contextCap: number | null
  readonly slotContext: number | null
  readonly unloadAfterRequests: number | null
  readonly jitFailure: boolean
  readonly forgetResponses: boolean
}

const noFaults: Faults = {
  latencyMs: 0,
  tokenDelayMs: 0,
  failNext: [],
  failAll: null,
  resetMidStream: null,
  streamError: null,
  malformedJson: null,
  loadNeverLoads: false,
  contextCap: null,
  slotContext: null,
  unloadAfterRequests: null,
  jitFailure: false,
  forgetResponses: false
}

export const SettingsInput = Schema.Struct({
  jit: Schema.optional(Schema.Boolean),
  autoEvict: Schema.optional(Schema.Boolean),
  jitDefaultTtlSeconds: Schema.optional(Schema.Int.pipe(Schema.positive())),
  apiToken: Schema.optional(Schema.NullOr(Schema.String)),
  /**
   * What `POST /api/v1/models/load` does with a `ttl` field: LM Studio takes the request and holds no TTL (`ignore`,
   * the default, protocol §12.1); `reject` refuses the field (400), `accept` honours it (a server that might).
   */
  restLoadTtl: Schema.optional(Schema.Literal("reject", "accept", "ignore")),
  /**
   * Prompts longer than the instance's loaded context: refused with HTTP 400 as LM Studio does (protocol §12.3), in
   * the older (`keep`) or the 0.4 (`n_keep`) wording; or served (`ignore`).
   */
  contextOverflow: Schema.optional(Schema.Literal("keep", "n_keep", "ignore")),
  /** Which optional APIs exist: an old server has no v1 REST API and no Responses API. */
  apis: Schema.optional(
    Schema.Struct({
      v0: Schema.optional(Schema.Boolean),
      v1: Schema.optional(Schema.Boolean),
      responses: Schema.optional(Schema.Boolean)
    })
  )
})

export interface Settings {
  readonly jit: boolean
  readonly autoEvict: boolean
  readonly jitDefaultTtlMs: number
  readonly apiToken: string | null
  readonly restLoadTtl: "reject" | "accept" | "ignore"
  readonly contextOverflow: "keep" | "n_keep" | "ignore"
  readonly v0: boolean
  readonly v1: boolean
  readonly responses: boolean
}

export interface StoredResponse {
  readonly id: string
  /** The whole conversation up to and including this response, as Responses input items. */
  readonly items: ReadonlyArray<unknown>
}

export interface Counters {
  readonly requests: number
  readonly streamsStarted: number
  readonly streamsCompleted: number
  /** Streams the client closed before the end (interruption seen by the server). */
  readonly streamsAborted: number
  /** Non-streamed requests whose client went away before the answer (the handler was interrupted). */
  readonly requestsAborted: number
  /** Prompts refused because they did not fit the instance's context (protocol §12.3). */
  readonly contextRefusals: number
  /** Prompt tokens of every prompt counted, and the largest one, against the context it was sent to. */
  readonly promptTokens: number
  readonly largestPrompt: { readonly tokens: number; readonly contextLength: number } | null
  readonly byPath: Readonly<Record<string, number>>
}

export interface LoggedRequest {
  readonly method: string
  readonly path: string
  readonly model: string | null
  readonly authorization: string | null
  /** The W3C trace context the request carried (a client that traces sends it). */
  readonly traceparent: string | null
  readonly body: unknown
}

export interface SimData {
  readonly models: ReadonlyArray<SimModel>
  readonly instances: ReadonlyArray<SimInstance>
  readonly responses: ReadonlyMap<string, StoredResponse>
  readonly faults: Faults
  readonly scenario: Scenario
  readonly settings: Settings
  readonly counters: Counters
  readonly recent: ReadonlyArray<LoggedRequest>
}

// ---------------------------------------------------------------------------------------------------------------
// Pure state transitions
// ---------------------------------------------------------------------------------------------------------------

/** The next free identifier for a key: `key`, then `key:2`, `key:3` … (protocol §6.2). */
export const nextIdentifier = (instances: ReadonlyArray<SimInstance>, key: string, wanted?: string): string | null => {
  const taken = new Set(instances.map((i) => i.identifier))
  if (wanted !== undefined) return taken.has(wanted) ? null : wanted
  if (!taken.has(key)) return key
  for (let n = 2;; n++) if (!taken.has(`${key}:${n}`)) return `${key}:${n}`
}

const stripVariant = (s: string): string => s.replace(/@[^/@]*$/, "")

/** Finds a downloaded model by key, variant (`key@q4`) or key without the publisher. */
const findModel = (models: ReadonlyArray<SimModel>, name: string): SimModel | undefined => {
  const n = stripVariant(name).toLowerCase()
  return (
    models.find((m) => m.key.toLowerCase() === n) ??
      models.find((m) => m.key.toLowerCase().endsWith(`/${n}`))
  )
}

export interface LoadRequest {
  readonly model: string
  readonly identifier?: string | undefined
  readonly ttlMs?: number | null | undefined
  readonly contextLength?: number | undefined
  readonly parallel?: number | undefined
  readonly jit?: boolean | undefined
  /** LM Link: load on another device. */
  readonly device?: string | undefined
}

export type LoadOutcome =
  | {
    readonly _tag: "Loaded"
    readonly instance: SimInstance
    readonly model: SimModel
    readonly evicted: ReadonlyArray<string>
  }
  | { readonly _tag: "NotFound" }
  | { readonly _tag: "IdentifierTaken"; readonly identifier: string }

export const load = (data: SimData, req: LoadRequest, now: number): [LoadOutcome, SimData] => {
  const model = findModel(data.models, req.model)
  if (!model) return [{ _tag: "NotFound" }, data]
  const jit = req.jit === true
  const evicted = jit && data.settings.autoEvict ? data.instances.filter((i) => i.jit).map((i) => i.identifier) : []
  const remaining = data.instances.filter((i) => !evicted.includes(i.identifier))
  const identifier = nextIdentifier(remaining, model.key, req.identifier)
  if (identifier === null) return [{ _tag: "IdentifierTaken", identifier: req.identifier ?? model.key }, data]
  const instance: SimInstance = {
    identifier,
    modelKey: model.key,
    contextLength: Math.min(
      req.contextLength ?? Math.min(4096, model.maxContextLength),
      model.maxContextLength,
      data.faults.contextCap ?? Number.POSITIVE_INFINITY
    ),
    ttlMs: req.ttlMs === undefined ? (jit ? data.settings.jitDefaultTtlMs : null) : req.ttlMs,
    loadedAt: now,
    lastUsedTime: null,
    jit,
    parallel: req.parallel ?? 4,
    device: req.device ?? null,
    active: 0,
    requestsServed: 0
  }
  const next = data.faults.loadNeverLoads ? remaining : [...remaining, instance]
  return [{ _tag: "Loaded", instance, model, evicted }, { ...data, instances: next }]
}

export const unload = (data: SimData, identifier: string): [boolean, SimData] => {
  const exists = data.instances.some((i) => i.identifier === identifier)
  return [exists, exists ? { ...data, instances: data.instances.filter((i) => i.identifier !== identifier) } : data]
}

/** Instances whose idle time reached their TTL (never one that is working). */
export const expired = (data: SimData, now: number): ReadonlyArray<string> =>
  data.instances
    .filter((i) => i.ttlMs !== null && i.active === 0 && now - (i.lastUsedTime ?? i.loadedAt) >= i.ttlMs)
    .map((i) => i.identifier)

export type Resolution =
  | { readonly _tag: "Instance"; readonly instance: SimInstance; readonly model: SimModel; readonly jitLoaded: boolean }
  | { readonly _tag: "NoModelsLoaded" }
  | { readonly _tag: "ModelNotFound"; readonly name: string; readonly loaded: ReadonlyArray<string> }

/** Which instance serves a request naming `name` (protocol §5, §9.1). */
export const resolve = (
  data: SimData,
  name: string | undefined,
  ttlSeconds: number | undefined,
  now: number
): [Resolution, SimData] => {
  const modelOf = (i: SimInstance) => data.models.find((m) => m.key === i.modelKey)!
  const served = (instance: SimInstance, d: SimData, jitLoaded: boolean): [Resolution, SimData] => [
    { _tag: "Instance", instance, model: modelOf(instance), jitLoaded },
    d
  ]
  if (name !== undefined) {
    const exact = data.instances.find((i) => i.identifier === name)
    if (exact) return served(exact, data, false)
    const model = findModel(data.models, name)
    if (model) {
      const ofKey = data.instances.find((i) => i.modelKey === model.key)
      if (ofKey) return served(ofKey, data, false)
      if (data.settings.jit) {
        if (data.faults.jitFailure) return [{ _tag: "NoModelsLoaded" }, data]
        const [outcome, next] = load(data, {
          model: model.key,
          ttlMs: ttlSeconds !== undefined ? ttlSeconds * 1000 : undefined,
          jit: true
        }, now)
        if (outcome._tag === "Loaded" && next.instances.some((i) => i.identifier === outcome.instance.identifier)) {
          return served(outcome.instance, next, true)
        }
        return [{ _tag: "NoModelsLoaded" }, next]
      }
    }
  }
  if (data.instances.length === 1) return served(data.instances[0]!, data, false)
  if (data.instances.length === 0) return [{ _tag: "NoModelsLoaded" }, data]
  return [{ _tag: "ModelNotFound", name: name ?? "", loaded: data.instances.map((i) => i.identifier) }, data]
}

const updateInstance = (data: SimData, identifier: string, f: (i: SimInstance) => SimInstance): SimData => ({
  ...data,
  instances: data.instances.map((i) => (i.identifier === identifier ? f(i) : i))
})

// ---------------------------------------------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------------------------------------------

export interface SimOptions {
  readonly models?: ReadonlyArray<SimModel> | undefined
  /** Keys loaded at start (manually, no TTL); default: the first LLM. Empty: nothing loaded. */
  readonly loaded?: ReadonlyArray<string> | undefined
  readonly scenario?: Scenario | undefined
  readonly settings?: Partial<Settings> | undefined
  readonly faults?: FaultsInput | undefined
}

const defaultSettings: Settings = {
  jit: true,
  autoEvict: true,
  jitDefaultTtlMs: 60 * 60 * 1000,
  apiToken: null,
  // LM Studio's REST load takes the request and holds no idle TTL for it (protocol §12.1).
  restLoadTtl: "ignore",
  // LM Studio 0.4's refusal of a prompt longer than the loaded context (protocol §12.3).
  contextOverflow: "n_keep",
  v0: true,
  v1: true,
  responses: true
}

const applyFaults = (f: Faults, input: FaultsInput): Faults => ({
  latencyMs: input.latencyMs ?? f.latencyMs,
  tokenDelayMs: input.tokenDelayMs ?? f.tokenDelayMs,
  failNext: input.failNext
    ? [...f.failNext, {
      status: input.failNext.status,
      body: input.failNext.body,
      path: input.failNext.path ?? "",
      remaining: input.failNext.count ?? 1
    }]
    : f.failNext,
  failAll: input.failAll !== undefined
    ? (input.failAll === null ? null : { status: input.failAll.status, body: input.failAll.body })
    : f.failAll,
  resetMidStream: input.resetMidStream
    ? { afterChunks: input.resetMidStream.afterChunks, remaining: input.resetMidStream.count ?? 1 }
    : f.resetMidStream,
  streamError: input.streamError
    ? {
      afterChunks: input.streamError.afterChunks,
      message: input.streamError.message,
      remaining: input.streamError.count ?? 1
    }
    : f.streamError,
  malformedJson: input.malformedJson
    ? { path: input.malformedJson.path ?? "", remaining: input.malformedJson.count ?? 1 }
    : f.malformedJson,
  loadNeverLoads: input.loadNeverLoads ?? f.loadNeverLoads,
  contextCap: input.contextCap !== undefined ? input.contextCap : f.contextCap,
  slotContext: input.slotContext !== undefined ? input.slotContext : f.slotContext,
  unloadAfterRequests: input.unloadAfterRequests !== undefined ? input.unloadAfterRequests : f.unloadAfterRequests,
  jitFailure: input.jitFailure ?? f.jitFailure,
  forgetResponses: input.forgetResponses ?? f.forgetResponses
})

const applySettings = (s: Settings, input: typeof SettingsInput.Type): Settings => ({
  jit: input.jit ?? s.jit,
  autoEvict: input.autoEvict ?? s.autoEvict,
  jitDefaultTtlMs: input.jitDefaultTtlSeconds !== undefined ? input.jitDefaultTtlSeconds * 1000 : s.jitDefaultTtlMs,
  apiToken: input.apiToken !== undefined ? input.apiToken : s.apiToken,
  restLoadTtl: input.restLoadTtl ?? s.restLoadTtl,
  contextOverflow: input.contextOverflow ?? s.contextOverflow,
  v0: input.apis?.v0 ?? s.v0,
  v1: input.apis?.v1 ?? s.v1,
  responses: input.apis?.responses ?? s.responses
})

export const initialData = (options: SimOptions, now: number): SimData => {
  const models = options.models && options.models.length > 0 ? options.models : defaultCatalog
  const base: SimData = {
    models,
    instances: [],
    responses: new Map(),
    faults: options.faults ? applyFaults(noFaults, options.faults) : noFaults,
    scenario: options.scenario ?? { rules: [] },
    settings: { ...defaultSettings, ...options.settings },
    counters: {
      requests: 0,
      streamsStarted: 0,
      streamsCompleted: 0,
      streamsAborted: 0,
      requestsAborted: 0,
      contextRefusals: 0,
      promptTokens: 0,
      largestPrompt: null,
      byPath: {}
    },
    recent: []
  }
  const preload = options.loaded ?? models.filter((m) => m.type !== "embedding").slice(0, 1).map((m) => m.key)
  return preload.reduce((d, key) => load(d, { model: key }, now)[1], base)
}

const RECENT_LIMIT = 500

const make = (options: SimOptions) =>
  Effect.gen(function*() {
    const ref = yield* Ref.make(initialData(options, yield* Clock.currentTimeMillis))

    /** Runs a pure transition with the current time. */
    const modify = <A>(f: (data: SimData, now: number) => [A, SimData]) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => Ref.modify(ref, (d) => f(d, now)))

    const sweep = modify((d, now) => {
      const gone = expired(d, now)
      return [
        gone,
        gone.length === 0 ? d : { ...d, instances: d.instances.filter((i) => !gone.includes(i.identifier)) }
      ]
    })
    yield* Effect.forkScoped(Effect.repeat(sweep, Schedule.spaced("1 second")))

    /** Consumes one use of a counted fault; returns it when it applied. */
    const takeFailNext = (path: string) =>
      Ref.modify(ref, (d): [Option.Option<{ status: number; body: unknown }>, SimData] => {
        const index = d.faults.failNext.findIndex((f) => path.startsWith(f.path))
        if (index < 0) return [Option.none(), d]
        const hit = d.faults.failNext[index]!
        const failNext = d.faults.failNext
          .map((f, i) => (i === index ? { ...f, remaining: f.remaining - 1 } : f))
          .filter((f) => f.remaining > 0)
        return [Option.some({ status: hit.status, body: hit.body }), { ...d, faults: { ...d.faults, failNext } }]
      })

    const takeMalformed = (path: string) =>
      Ref.modify(ref, (d): [boolean, SimData] => {
        const m = d.faults.malformedJson
        if (m === null || !path.startsWith(m.path)) return [false, d]
        return [true, {
          ...d,
          faults: { ...d.faults, malformedJson: m.remaining > 1 ? { ...m, remaining: m.remaining - 1 } : null }
        }]
      })

    const takeStreamFaults = Ref.modify(
      ref,
      (d): [{ resetAfter: number | null; errorAfter: { afterChunks: number; message: string } | null }, SimData] => {
        const r = d.faults.resetMidStream
        const e = d.faults.streamError
        return [
          {
            resetAfter: r ? r.afterChunks : null,
            errorAfter: e ? { afterChunks: e.afterChunks, message: e.message } : null
          },
          {
            ...d,
            faults: {
              ...d.faults,
              resetMidStream: r && r.remaining > 1 ? { ...r, remaining: r.remaining - 1 } : null,
              streamError: e && e.remaining > 1 ? { ...e, remaining: e.remaining - 1 } : null
            }
          }
        ]
      }
    )

    const countRequest = (req: LoggedRequest) =>
      Ref.update(ref, (d) => ({
        ...d,
        counters: {
          ...d.counters,
          requests: d.counters.requests + 1,
          byPath: { ...d.counters.byPath, [req.path]: (d.counters.byPath[req.path] ?? 0) + 1 }
        },
        recent: [...d.recent.slice(-(RECENT_LIMIT - 1)), req]
      }))

    const countStream = (what: "streamsStarted" | "streamsCompleted" | "streamsAborted" | "requestsAborted") =>
      Ref.update(ref, (d) => ({ ...d, counters: { ...d.counters, [what]: d.counters[what] + 1 } }))

    /** Counts a prompt the server measured, and whether it was refused for want of context. */
    const countPrompt = (tokens: number, contextLength: number, refused: boolean) =>
      Ref.update(ref, (d) => ({
        ...d,
        counters: {
          ...d.counters,
          contextRefusals: d.counters.contextRefusals + (refused ? 1 : 0),
          promptTokens: d.counters.promptTokens + tokens,
          largestPrompt: d.counters.largestPrompt === null || tokens > d.counters.largestPrompt.tokens
            ? { tokens, contextLength }
            : d.counters.largestPrompt
        }
      }))

    /** Marks an instance busy (lms ps shows it generating; the TTL sweeper leaves it alone). */
    const acquireInstance = (identifier: string) =>
      Ref.update(ref, (d) => updateInstance(d, identifier, (i) => ({ ...i, active: i.active + 1 })))

    /** Records the end of a request: last use, request count, and the unload-after-N fault. */
    const releaseInstance = (identifier: string) =>
      modify((d, now): [void, SimData] => {
        const touched = updateInstance(d, identifier, (i) => ({
          ...i,
          active: Math.max(0, i.active - 1),
          lastUsedTime: now,
          requestsServed: i.requestsServed + 1
        }))
        const limit = d.faults.unloadAfterRequests
        const inst = touched.instances.find((i) => i.identifier === identifier)
        return [
          undefined,
          limit !== null && inst && inst.requestsServed >= limit ? unload(touched, identifier)[1] : touched
        ]
      })

    return {
      get: Ref.get(ref),
      update: (f: (d: SimData) => SimData) => Ref.update(ref, f),
      modify,
      resolve: (name: string | undefined, ttlSeconds: number | undefined) =>
        modify((d, now) => resolve(d, name, ttlSeconds, now)),
      load: (req: LoadRequest) => modify((d, now) => load(d, req, now)),
      unload: (identifier: string) => modify((d) => unload(d, identifier)),
      sweep,
      /** As if `ms` of idle time passed in LM Studio: every instance's idle clock moves on, then the TTL sweep runs. */
      idle: (ms: number) =>
        Effect.zipRight(
          Ref.update(ref, (d) => ({
            ...d,
            instances: d.instances.map((i) => ({
              ...i,
              loadedAt: i.loadedAt - ms,
              lastUsedTime: i.lastUsedTime === null ? null : i.lastUsedTime - ms
            }))
          })),
          sweep
        ),
      takeFailNext,
      takeMalformed,
      takeStreamFaults,
      countRequest,
      countStream,
      countPrompt,
      acquireInstance,
      releaseInstance,
      storeResponse: (r: StoredResponse) =>
        Ref.update(ref, (d) => (d.faults.forgetResponses ? d : { ...d, responses: new Map(d.responses).set(r.id, r) })),
      setFaults: (input: FaultsInput) => Ref.update(ref, (d) => ({ ...d, faults: applyFaults(d.faults, input) })),
      clearFaults: Ref.update(ref, (d) => ({ ...d, faults: noFaults })),
      setScenario: (scenario: Scenario) => Ref.update(ref, (d) => ({ ...d, scenario })),
      setSettings: (input: typeof SettingsInput.Type) =>
        Ref.update(ref, (d) => ({ ...d, settings: applySettings(d.settings, input) })),
      reset: modify((_, now) => [undefined, initialData(options, now)])
    } as const
  })

export class SimState extends Context.Tag("lmstudio-bridge/simulator/SimState")<
  SimState,
  Effect.Effect.Success<ReturnType<typeof make>>
>() {
  static readonly layer = (options: SimOptions) => Layer.scoped(SimState, make(options))
}
