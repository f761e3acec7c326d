/**
 * ModelLifecycle (DESIGN §6 "Model lifecycle"): load, unload, ensureLoaded, verify, listLoaded.
 *
 * - TTL always explicit and finite: keep 600 s, temporary 300 s, explicit values capped at MAX_MODEL_TTL_SECONDS
 *   with a note; 0, negative, non-integer and absurd values are rejected (`ttlFor`).
 * - LM Studio itself holds the TTL, so it survives the bridge: `lms load -y --ttl N` when the CLI is there, else a
 *   JIT load (a one-token request carrying `ttl`), else REST v1 (which documents no TTL: sent anyway; if refused the
 *   load is repeated without it and the bridge enforces the TTL while it runs). `LMSTUDIO_LIFECYCLE` forces one.
 * - Every load is verified by polling the loaded list with a Schedule (no fixed sleeps), optionally probed, and the
 *   load+verify step is retried (1 s, 2 s, 4 s, jittered) only for errors that can succeed on retry.
 * - Leases (`resilience/Leases.ts`) keyed by (model, TTL) whose acquisition is ensure-load-verify. Concurrent `ensureLoaded` of one
 *   model share one load; work holds a lease (`withModel`) so nothing is evicted mid-run; when the last lease has
 *   been idle for the TTL, a model the bridge loaded is unloaded — one someone else loaded never is.
 */
import { Clock, Data, Effect, Option, Ref } from "effect"
import { AppConfig, type AppConfigShape, type LifecycleMode } from "../Config.js"
import {
  InvalidTtl,
  type LmsError,
  type LmStudioError,
  ModelLoadFailed,
  ModelVerificationFailed
} from "../domain/Errors.js"
import { validateModelName } from "../domain/ModelName.js"
import * as Leases from "../resilience/Leases.js"
import { isRetryableLoadError, modelLoadRetry, verificationPoll } from "../resilience/Policies.js"
import { LmsCli } from "./LmsCli.js"
import { LmStudioClient } from "./LmStudioClient.js"
import { type CatalogError, ModelCatalog } from "./ModelCatalog.js"

// ---------------------------------------------------------------------------------------------------------------
// TTL policy
// ---------------------------------------------------------------------------------------------------------------

/** Above this a TTL is taken for a mistake (milliseconds given as seconds, say) rather than capped. */
export const ABSURD_TTL_SECONDS = 366 * 86_400

export interface TtlChoice {
  readonly ttlSeconds: number
  readonly note: string | undefined
}

/** The TTL of a load: explicit (validated, capped), else keep-loaded, else temporary. Never infinite. */
export const ttlFor = (
  request: { readonly ttlSeconds?: number | undefined; readonly keepLoaded?: boolean | undefined },
  config: Pick<AppConfigShape, "modelTtlSeconds" | "tempModelTtlSeconds" | "maxModelTtlSeconds">
): Effect.Effect<TtlChoice, InvalidTtl> => {
  const t = request.ttlSeconds
  if (t === undefined) {
    return Effect.succeed({ ttlSeconds: request.keepLoaded === true ? config.modelTtlSeconds : config.tempModelTtlSeconds, note: undefined })
  }
  const value = String(t)
  if (!Number.isFinite(t)) return Effect.fail(new InvalidTtl({ value, reason: "it is not a finite number; infinite TTLs are not allowed" }))
  if (!Number.isInteger(t)) return Effect.fail(new InvalidTtl({ value, reason: "it is not a whole number of seconds" }))
  if (t <= 0) return Effect.fail(new InvalidTtl({ value, reason: "it must be at least 1 second (0 would mean 'never unload')" }))
  if (t > ABSURD_TTL_SECONDS) return Effect.fail(new InvalidTtl({ value, reason: `it is more than a year; was it meant in milliseconds?` }))
  if (t > config.maxModelTtlSeconds) {
    return Effect.succeed({
      ttlSeconds: config.maxModelTtlSeconds,
      note: `ttl_seconds ${t} was capped to the maximum of ${config.maxModelTtlSeconds} s (MAX_MODEL_TTL_SECONDS)`
    })
  }
  return Effect.succeed({ ttlSeconds: t, note: undefined })
}

// ---------------------------------------------------------------------------------------------------------------
// Backend choice
// ---------------------------------------------------------------------------------------------------------------

export type Backend = "cli" | "jit" | "rest"

export interface BackendChoice {
  readonly via: Backend
  readonly reason: string
}

/** Which way models are loaded: forced by LMSTUDIO_LIFECYCLE, else the first of cli, jit, rest that can work. */
export const chooseBackend = (mode: LifecycleMode, lmsAvailable: boolean, v1: boolean): ReadonlyArray<BackendChoice> => {
  const cli: BackendChoice = { via: "cli", reason: "`lms load --ttl`: LM Studio holds the TTL" }
  const jit: BackendChoice = {
    via: "jit",
    reason: "a JIT load carrying `ttl`: LM Studio holds the TTL (auto-evict may unload other JIT-loaded models)"
  }
  const rest: BackendChoice = { via: "rest", reason: "REST v1 load: LM Studio holds the TTL only if it accepts the undocumented `ttl` field" }
  switch (mode) {
    case "cli":
      return [{ ...cli, reason: `forced by LMSTUDIO_LIFECYCLE=cli; ${cli.reason}` }]
    case "jit":
      return [{ ...jit, reason: `forced by LMSTUDIO_LIFECYCLE=jit; ${jit.reason}` }]
    case "rest":
      return [{ ...rest, reason: `forced by LMSTUDIO_LIFECYCLE=rest; ${rest.reason}` }]
    case "auto":
      return [
        ...(lmsAvailable ? [{ ...cli, reason: `the lms CLI is installed; ${cli.reason}` }] : []),
        { ...jit, reason: `${lmsAvailable ? "after the lms CLI failed" : "the lms CLI is not installed"}; ${jit.reason}` },
        ...(v1 ? [{ ...rest, reason: `JIT loading failed; ${rest.reason}` }] : [])
      ]
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------------------------

export interface LoadRequest {
  readonly model: string
  readonly ttlSeconds?: number | undefined
  readonly keepLoaded?: boolean | undefined
  readonly contextLength?: number | undefined
  readonly identifier?: string | undefined
}

export interface LoadResult {
  readonly identifier: string
  readonly model: string
  readonly ttlSeconds: number
  /** Who unloads the model when it has been idle for the TTL. */
  readonly ttlEnforcedBy: "lmstudio" | "bridge"
  /** How it was loaded; `existing` when it was found loaded already. */
  readonly via: Backend | "existing"
  readonly viaReason: string
  readonly verified: boolean
  readonly alreadyLoaded: boolean
  readonly loadTimeMs: number
  readonly notes: ReadonlyArray<string>
}

/** A load result as the faces show it (snake_case JSON for CLI `--json` and MCP structured content). */
export const loadResultJson = (r: LoadResult) => ({
  identifier: r.identifier,
  model: r.model,
  ttl_seconds: r.ttlSeconds,
  ttl_enforced_by: r.ttlEnforcedBy,
  via: r.via,
  via_reason: r.viaReason,
  verified: r.verified,
  already_loaded: r.alreadyLoaded,
  load_time_ms: r.loadTimeMs,
  notes: r.notes
})

export interface LoadedModel {
  readonly identifier: string
  readonly model: string
  readonly type: string
  readonly contextLength: number | undefined
  readonly ttlSeconds: number | undefined
  readonly ttlLeftSeconds: number | undefined
  readonly status: string | undefined
  readonly ownedByBridge: boolean
}

/** A loaded instance as the faces show it (snake_case JSON for CLI `--json` and MCP structured content). */
export const loadedModelJson = (m: LoadedModel) => ({
  identifier: m.identifier,
  model: m.model,
  type: m.type,
  context_length: m.contextLength ?? null,
  ttl_seconds: m.ttlSeconds ?? null,
  ttl_left_seconds: m.ttlLeftSeconds ?? null,
  status: m.status ?? null,
  owned_by_bridge: m.ownedByBridge
})

export type LifecycleError = CatalogError | LmStudioError | LmsError | InvalidTtl | ModelLoadFailed | ModelVerificationFailed

/** Internal to verification: the instance is not in the loaded list yet. */
class NotYetLoaded extends Data.TaggedError("NotYetLoaded") {}

interface LeaseKey {
  readonly model: string
  readonly ttlSeconds: number
}

interface Owned {
  readonly identifier: string
  readonly ttlSeconds: number
  readonly enforcedBy: "lmstudio" | "bridge"
}

const NOT_LOADED = new Set(["NoModelLoaded", "ModelMismatch", "ModelNotFound"])

export class ModelLifecycle extends Effect.Service<ModelLifecycle>()("lmstudio-bridge/ModelLifecycle", {
  scoped: Effect.gen(function* () {
    const config = yield* AppConfig
    const client = yield* LmStudioClient
    const lms = yield* LmsCli
    const catalog = yield* ModelCatalog
    /** Instances this bridge loaded (the only ones it ever unloads on its own). */
    const owned = yield* Ref.make(new Map<string, Owned>())

    const isLoaded = (identifier: string, model: string) =>
      Effect.map(catalog.loadedNow, (all) => all.find((l) => l.instance.id === identifier) ?? (identifier === model ? all.find((l) => l.model.key === model) : undefined))

    /** Polls the loaded list until the instance appears; `ModelVerificationFailed` if it never does. */
    const verify = (identifier: string, model: string) =>
      Effect.gen(function* () {
        let attempts = 0
        const found = yield* Effect.suspend(() => {
          attempts++
          return isLoaded(identifier, model)
        }).pipe(
          Effect.flatMap((f) => (f === undefined ? Effect.fail(new NotYetLoaded()) : Effect.succeed(f))),
          Effect.retry({ schedule: verificationPoll(config.verifyInterval, config.verifyAttempts), while: (e) => e._tag === "NotYetLoaded" }),
          Effect.catchTag("NotYetLoaded", () => Effect.succeed(undefined))
        )
        if (found === undefined) {
          const all = yield* catalog.loadedNow
          return yield* new ModelVerificationFailed({ model: identifier, attempts, loaded: all.map((l) => l.instance.id) })
        }
        if (config.verifyProbe && found.model.type !== "embedding") {
          yield* client.chat({ model: found.instance.id, messages: [{ role: "user", content: "." }], maxTokens: 1 })
        }
        return found.instance.id
      }).pipe(Effect.withSpan("ModelLifecycle.verify", { captureStackTrace: false, attributes: { model: identifier } }))

    interface Loaded {
      readonly identifier: string
      readonly enforcedBy: "lmstudio" | "bridge"
      readonly notes: ReadonlyArray<string>
    }

    /** One load through one backend; returns the identifier LM Studio gave and who holds the TTL. */
    const loadVia = (choice: BackendChoice, model: string, modelType: string, ttl: number, req: LoadRequest): Effect.Effect<Loaded, LifecycleError> => {
      switch (choice.via) {
        case "cli":
          return Effect.map(lms.load(model, { ttlSeconds: ttl, contextLength: req.contextLength, identifier: req.identifier }), (r) => ({
            identifier: r.identifier ?? req.identifier ?? model,
            enforcedBy: "lmstudio",
            notes: []
          }))
        case "jit": {
          const served =
            modelType === "embedding"
              ? Effect.map(client.embed({ model, input: ".", ttlSeconds: ttl }), (r) => r.model)
              : Effect.map(client.chat({ model, messages: [{ role: "user", content: "." }], maxTokens: 1, ttlSeconds: ttl }), (r) => r.model)
          return Effect.map(served, (identifier) => ({
            identifier: identifier.replace(/@[^/@]*$/, "") || model,
            enforcedBy: "lmstudio",
            notes: [
              "JIT-loaded: LM Studio's auto-evict may have unloaded other JIT-loaded models",
              ...(req.identifier !== undefined ? ["a JIT load cannot set an identifier; it was ignored"] : [])
            ]
          }))
        }
        case "rest": {
          const attempt = (withTtl: boolean) =>
            client.loadModel({ model, contextLength: req.contextLength, identifier: req.identifier, ttlSeconds: withTtl ? ttl : undefined })
          return attempt(true).pipe(
            Effect.map((r): Loaded => ({ identifier: r.instanceId, enforcedBy: "lmstudio", notes: [] })),
            Effect.catchIf(
              (e) => e._tag === "LmStudioHttpError" && e.status >= 400 && e.status < 500 && /ttl|unrecognized/i.test(e.detail),
              () =>
                Effect.map(attempt(false), (r): Loaded => ({
                  identifier: r.instanceId,
                  enforcedBy: "bridge",
                  notes: ["LM Studio refused a TTL on the REST load: the bridge enforces the TTL, but only while it runs"]
                }))
            )
          )
        }
      }
    }

    /** Load through the configured backends in order, verify, retry what can succeed on retry. */
    const performLoad = (req: LoadRequest, ttl: TtlChoice) =>
      Effect.gen(function* () {
        const found = yield* catalog.find(req.model)
        const model = found.model.key
        const apis = yield* client.apis
        const choices = chooseBackend(config.lifecycle, lms.available, apis.v1)
        const started = yield* Clock.currentTimeMillis
        const warnings: Array<string> = []
        let lastError: LifecycleError | undefined
        for (const choice of choices) {
          const attempt = loadVia(choice, model, found.model.type, ttl.ttlSeconds, req).pipe(
            Effect.tap(() => catalog.invalidate),
            Effect.flatMap((r) => Effect.map(verify(r.identifier, model), (identifier) => ({ ...r, identifier }))),
            Effect.retry({ schedule: modelLoadRetry(config.loadRetryBase), while: isRetryableLoadError })
          )
          const outcome = yield* Effect.either(attempt)
          if (outcome._tag === "Right") {
            const r = outcome.right
            yield* Ref.update(owned, (m) => new Map(m).set(r.identifier, { identifier: r.identifier, ttlSeconds: ttl.ttlSeconds, enforcedBy: r.enforcedBy }))
            return {
              identifier: r.identifier,
              model,
              ttlSeconds: ttl.ttlSeconds,
              ttlEnforcedBy: r.enforcedBy,
              via: choice.via,
              viaReason: choice.reason,
              verified: true,
              alreadyLoaded: false,
              loadTimeMs: (yield* Clock.currentTimeMillis) - started,
              notes: [...(ttl.note ? [ttl.note] : []), ...warnings, ...r.notes]
            } satisfies LoadResult
          }
          lastError = outcome.left
          const fallThrough = config.lifecycle === "auto" && ["LmsCliUnavailable", "NoModelLoaded", "LmsCliFailed"].includes(outcome.left._tag)
          if (!fallThrough) return yield* Effect.fail(outcome.left)
          warnings.push(`${choice.via} load failed (${outcome.left._tag}: ${outcome.left.message}); fell back`)
          yield* Effect.logWarning("model load backend failed; falling back").pipe(
            Effect.annotateLogs({ model, backend: choice.via, error: outcome.left._tag })
          )
        }
        return yield* new ModelLoadFailed({
          model,
          via: choices.map((c) => c.via).join(", "),
          reason: lastError ? `${lastError._tag}: ${lastError.message}` : "no load backend is available"
        })
      }).pipe(Effect.withSpan("ModelLifecycle.load", { captureStackTrace: false, attributes: { model: req.model } }))

    /** Unloads one instance: REST v1 when present, else lms. Missing instances are not an error. */
    const unloadInstance = (identifier: string) =>
      Effect.gen(function* () {
        yield* validateModelName(identifier)
        const apis = yield* client.apis
        const done = apis.v1 && config.lifecycle !== "cli"
          ? yield* client.unloadModel(identifier).pipe(
              Effect.as(true),
              Effect.catchTag("ModelNotFound", () => Effect.succeed(false))
            )
          : yield* lms.unload(identifier)
        yield* Ref.update(owned, (m) => {
          const next = new Map(m)
          next.delete(identifier)
          return next
        })
        yield* catalog.invalidate
        return done
      }).pipe(Effect.withSpan("ModelLifecycle.unload", { captureStackTrace: false, attributes: { identifier } }))

    // Leases: lookup = ensure-load-verify; release = unload if (and only if) this bridge loaded it. When the bridge
    // shuts down, a model whose TTL LM Studio holds is left to LM Studio (it outlives the bridge by design); one whose
    // TTL only the bridge enforces is unloaded, since nobody else would.
    const shuttingDown = yield* Ref.make(false)
    const leases = yield* Leases.make({
      id: (key: LeaseKey) => `${key.ttlSeconds}:${key.model}`,
      acquire: (key: LeaseKey) => ensureNow({ model: key.model, ttlSeconds: key.ttlSeconds }, { ttlSeconds: key.ttlSeconds, note: undefined }),
      release: (key: LeaseKey, r: LoadResult) =>
        Effect.gen(function* () {
          const mine = (yield* Ref.get(owned)).get(r.identifier)
          if (mine === undefined) return
          if ((yield* Ref.get(shuttingDown)) && mine.enforcedBy === "lmstudio") return
          yield* Effect.logInfo("unloading a model the bridge loaded").pipe(
            Effect.annotateLogs({ identifier: r.identifier, ttlSeconds: key.ttlSeconds, reason: (yield* Ref.get(shuttingDown)) ? "shutdown" : "idle" })
          )
          yield* unloadInstance(r.identifier).pipe(Effect.ignoreLogged)
        }),
      idleTimeToLiveMs: (key: LeaseKey) => key.ttlSeconds * 1000
    })
    // Registered after the table, so it runs before the table's own finalizer releases the leases.
    yield* Effect.addFinalizer(() => Ref.set(shuttingDown, true))

    /** Already loaded (checked now, not from a cache)? Else load. */
    function ensureNow(req: LoadRequest, ttl: TtlChoice): Effect.Effect<LoadResult, LifecycleError> {
      return Effect.gen(function* () {
        const found = yield* catalog.find(req.model)
        const model = found.model.key
        const all = yield* catalog.loadedNow
        const hit = all.find((l) => l.instance.id === req.model) ?? all.find((l) => l.model.key === model)
        if (hit) {
          const mine = (yield* Ref.get(owned)).get(hit.instance.id)
          return {
            identifier: hit.instance.id,
            model,
            ttlSeconds: mine?.ttlSeconds ?? ttl.ttlSeconds,
            ttlEnforcedBy: mine?.enforcedBy ?? "lmstudio",
            via: "existing" as const,
            viaReason: mine ? "already loaded by this bridge" : "already loaded by someone else",
            verified: true,
            alreadyLoaded: true,
            loadTimeMs: 0,
            notes: mine ? [] : ["loaded by someone else: the bridge will not unload it"]
          } satisfies LoadResult
        }
        return yield* performLoad(req, ttl)
      })
    }

    /** Ensures a model is loaded and verified; concurrent calls for one model share one load. */
    const ensureLoaded = (req: LoadRequest) =>
      Effect.gen(function* () {
        yield* validateModelName(req.model)
        const ttl = yield* ttlFor(req, config)
        const found = yield* catalog.find(req.model)
        const result = yield* leases.get({ model: found.model.key, ttlSeconds: ttl.ttlSeconds })
        return { ...result, notes: [...(ttl.note ? [ttl.note] : []), ...result.notes] } satisfies LoadResult
      }).pipe(Effect.withSpan("ModelLifecycle.ensureLoaded", { captureStackTrace: false, attributes: { model: req.model } }))

    /** Loads a model (a new instance if it is loaded already, as `lms load` does). */
    const load = (req: LoadRequest) =>
      Effect.gen(function* () {
        yield* validateModelName(req.model)
        if (req.identifier !== undefined) yield* validateModelName(req.identifier)
        const ttl = yield* ttlFor(req, config)
        const result = yield* performLoad(req, ttl)
        if (result.ttlEnforcedBy === "bridge") {
          // Nobody else will unload it: hold an idle lease that unloads it after the TTL.
          yield* leases.get({ model: result.identifier, ttlSeconds: result.ttlSeconds })
        }
        return result
      })

    /** Runs `use` with the model held (never evicted by the bridge mid-run); a "model not loaded" re-ensures once. */
    const withModel = <A, E, R>(req: LoadRequest, use: (identifier: string) => Effect.Effect<A, E, R>) =>
      Effect.flatMap(ttlFor(req, config), (ttl) =>
        Effect.flatMap(catalog.find(req.model), (found) => {
          const key: LeaseKey = { model: found.model.key, ttlSeconds: ttl.ttlSeconds }
          const once = leases.withLease(key, (lease) => use(lease.identifier))
          return Effect.catchIf(
            once,
            (e) => typeof e === "object" && e !== null && "_tag" in e && NOT_LOADED.has(String(e._tag)),
            () =>
              Effect.logWarning("model was not loaded mid-request; loading it again").pipe(
                Effect.annotateLogs({ model: found.model.key }),
                Effect.zipRight(leases.invalidate(key)),
                Effect.zipRight(catalog.invalidate),
                Effect.zipRight(once)
              )
          )
        })
      )

    /** Loaded instances with TTL and ownership (TTL details from `lms ps` when the CLI is there). */
    const listLoaded = Effect.gen(function* () {
      const all = yield* catalog.loadedNow
      const mine = yield* Ref.get(owned)
      const ps = lms.available ? yield* lms.ps().pipe(Effect.option) : Option.none()
      const now = yield* Clock.currentTimeMillis
      return all.map(({ model, instance }): LoadedModel => {
        const info = Option.flatMap(ps, (list) => Option.fromNullable(list.find((i) => i.identifier === instance.id)))
        const ttlMs = Option.getOrUndefined(Option.flatMapNullable(info, (i) => i.ttlMs))
        const lastUsed = Option.getOrUndefined(Option.flatMapNullable(info, (i) => i.lastUsedTime))
        const own = mine.get(instance.id)
        return {
          identifier: instance.id,
          model: model.key,
          type: model.type,
          contextLength: instance.contextLength,
          ttlSeconds: ttlMs !== undefined ? Math.round(ttlMs / 1000) : own?.ttlSeconds,
          ttlLeftSeconds: ttlMs !== undefined ? Math.max(0, Math.round((ttlMs - (lastUsed === undefined ? 0 : now - lastUsed)) / 1000)) : undefined,
          status: Option.getOrUndefined(Option.flatMapNullable(info, (i) => i.status)),
          ownedByBridge: own !== undefined
        }
      })
    })

    /** Unloads everything loaded (only on explicit request). */
    const unloadAll = Effect.gen(function* () {
      const all = yield* catalog.loadedNow
      return yield* Effect.forEach(all, (l) => Effect.as(unloadInstance(l.instance.id), l.instance.id), { concurrency: 4 })
    })

    /** How models are loaded here and who enforces TTLs (for lms_server_status / health). */
    const status = Effect.gen(function* () {
      const apis = yield* client.apis
      const [first] = chooseBackend(config.lifecycle, lms.available, apis.v1)
      return {
        mode: config.lifecycle,
        backend: first?.via ?? "jit",
        reason: first?.reason ?? "",
        ttlEnforcedBy: first?.via === "rest" ? "lmstudio if it accepts ttl, else the bridge" : "lmstudio",
        lmsCli: Option.getOrElse(lms.path, () => "not installed"),
        lmsBreaker: yield* lms.breaker
      }
    })

    return { load, ensureLoaded, withModel, unload: unloadInstance, unloadAll, verify, listLoaded, status } as const
  })
}) {}
