/**
 * ModelCatalog: what is downloaded and what is loaded, from the best source the server has — REST v1, else v0,
 * else `lms ls/ps --json`, else the OpenAI id list — cached for MODEL_CACHE_TTL_SECONDS.
 *
 * - Names are validated before any I/O (DESIGN §6 "Validation").
 * - A name missing from the cache triggers one refresh before `ModelNotFound` (so a just-downloaded model is found);
 *   only one refresh runs at a time, concurrent callers share it.
 * - `ModelNotFound` carries the available models and the closest matches.
 * - `resolve` turns "default"/absent into DEFAULT_MODEL, else the loaded LLM, else `NoModelLoaded`.
 */
import { Clock, Effect, Option, Ref } from "effect"
import { AppConfig } from "../Config.js"
import { InvalidModelName, type LmsError, type LmStudioError, ModelNotFound, NoModelLoaded } from "../domain/Errors.js"
import { checkModelName, closestMatches, sameModel } from "../domain/ModelName.js"
import { record } from "../observability/Metrics.js"
import { spanIf, tracingEnabled } from "../observability/Tracing.js"
import { modelInfoFromId, modelInfoFromLms } from "./client/Mapping.js"
import type { LoadedInstance, ModelInfo } from "./client/Shapes.js"
import { LmsCli } from "./LmsCli.js"
import { LmStudioClient } from "./LmStudioClient.js"

export type CatalogSource = "v1" | "v0" | "lms" | "openai"

export interface CatalogSnapshot {
  readonly models: ReadonlyArray<ModelInfo>
  readonly source: CatalogSource
  readonly fetchedAt: number
}

/** Exact names (keys, identifiers, lower-cased keys) to what they find, built once per snapshot. */
const indexOf = (snapshot: CatalogSnapshot): ReadonlyMap<string, Found> => {
  const index = new Map<string, Found>()
  const seenAt = snapshot.fetchedAt
  for (const model of snapshot.models) {
    const only = model.loaded.length === 1 ? model.loaded[0] : undefined
    index.set(model.key.toLowerCase(), { model, instance: only, seenAt })
    index.set(model.key, { model, instance: only, seenAt })
  }
  for (const model of snapshot.models) {
    for (const instance of model.loaded) index.set(instance.id, { model, instance, seenAt })
  }
  return index
}

export interface Found {
  readonly model: ModelInfo
  /** Set when the name is a loaded instance's identifier (`key:2`), or the model has one loaded instance. */
  readonly instance: LoadedInstance | undefined
  /** When the listing this comes from was asked of LM Studio (Clock ms): how old the knowledge is. */
  readonly seenAt: number
}

interface Cached {
  readonly snapshot: CatalogSnapshot
  readonly generation: number
  readonly index: ReadonlyMap<string, Found>
}

export type CatalogError = LmStudioError | LmsError | InvalidModelName | ModelNotFound | NoModelLoaded

/** Finds a name in a listing: an instance identifier, a key, a variant (`key@q4`), a key without its publisher. */
export const match = (snapshot: CatalogSnapshot, name: string): Found | undefined => {
  const { models, fetchedAt: seenAt } = snapshot
  for (const model of models) {
    const instance = model.loaded.find((i) => i.id === name)
    if (instance) return { model, instance, seenAt }
  }
  const exact = models.find((m) => m.key === name) ?? models.find((m) => m.key.toLowerCase() === name.toLowerCase())
  const model = exact ?? models.find((m) => sameModel(name, m.key))
  if (!model) return undefined
  return { model, instance: model.loaded.length === 1 ? model.loaded[0] : undefined, seenAt }
}

export class ModelCatalog extends Effect.Service<ModelCatalog>()("lmstudio-bridge/ModelCatalog", {
  dependencies: [LmStudioClient.Default, LmsCli.Default],
  effect: Effect.gen(function*() {
    const config = yield* AppConfig
    const tracing = tracingEnabled(config)
    const client = yield* LmStudioClient
    const lms = yield* LmsCli
    const ttlMs = config.modelCacheTtlSeconds * 1000
    const cache = yield* Ref.make(Option.none<Cached>())
    const refreshLock = yield* Effect.makeSemaphore(1)

    /** Reads the models from the best source available now. */
    const fetch: Effect.Effect<CatalogSnapshot, LmStudioError | LmsError> = Effect.gen(function*() {
      const apis = yield* client.apis
      const now = yield* Clock.currentTimeMillis
      if (apis.v1) return { models: yield* client.listV1Models(), source: "v1" as const, fetchedAt: now }
      if (apis.v0) return { models: yield* client.listV0Models(), source: "v0" as const, fetchedAt: now }
      if (lms.available) {
        const [models, instances] = yield* Effect.all([lms.ls(), lms.ps()], { concurrency: 2 })
        return { models: modelInfoFromLms(models, instances), source: "lms" as const, fetchedAt: now }
      }
      const ids = yield* client.listOpenAiModels()
      return { models: ids.map(modelInfoFromId), source: "openai" as const, fetchedAt: now }
    }).pipe(
      Effect.tap((snapshot) =>
        // Only a source that lists instances can say how many are loaded (OpenAI's ids cannot).
        snapshot.source === "openai"
          ? Effect.void
          : record((r) => r.update("modelsLoaded", snapshot.models.reduce((n, m) => n + m.loaded.length, 0), []))
      ),
      Effect.withSpan("ModelCatalog.fetch", { captureStackTrace: false })
    )

    /** Each fetch gets the next generation, so "a refresh finished after I looked" is exact, whatever the clock says. */
    const generation = (c: Option.Option<Cached>) => (Option.isSome(c) ? c.value.generation : 0)

    /** Refreshes the cache unless a refresh newer than generation `seen` already happened; one refresh at a time. */
    const refreshAfter = (seen: number): Effect.Effect<CatalogSnapshot, LmStudioError | LmsError> =>
      refreshLock.withPermits(1)(
        Effect.flatMap(Ref.get(cache), (current) =>
          Option.isSome(current) && current.value.generation > seen
            ? Effect.succeed(current.value.snapshot)
            : Effect.tap(fetch, (snapshot) =>
              Ref.set(cache, Option.some({ snapshot, generation: generation(current) + 1, index: indexOf(snapshot) }))))
      )

    /** The catalog, from the cache while it is fresh. */
    const snapshot: Effect.Effect<CatalogSnapshot, LmStudioError | LmsError> = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const cached = yield* Ref.get(cache)
      if (Option.isSome(cached) && now - cached.value.snapshot.fetchedAt < ttlMs) return cached.value.snapshot
      return yield* refreshAfter(generation(cached))
    })

    /** Marks the cache stale (after a load or unload the loaded list changed); the generation count goes on. */
    const invalidate = Ref.update(
      cache,
      Option.map((c) => ({ ...c, snapshot: { ...c.snapshot, fetchedAt: Number.NEGATIVE_INFINITY } }))
    )

    /** The slow path of `find`: a stale cache, or a name the index does not know. */
    const findSlow = (name: string): Effect.Effect<Found, CatalogError> =>
      Effect.gen(function*() {
        const seen = generation(yield* Ref.get(cache))
        const first = yield* snapshot
        const hit = match(first, name)
        if (hit) return hit
        // A miss on cached data refreshes once; a miss on data fetched during this call is final.
        const now = generation(yield* Ref.get(cache))
        const second = now > seen ? first : yield* refreshAfter(now)
        const again = match(second, name)
        if (again) return again
        const available = second.models.map((m) => m.key)
        return yield* new ModelNotFound({ model: name, available, suggestions: closestMatches(name, available) })
      })

    /**
     * A model by name: validated first (no I/O for a bad name), then looked up — on a fresh cache with one index
     * read, the hot path of every call that names a model — refreshing once on a miss.
     */
    const find = (name: string): Effect.Effect<Found, CatalogError> => {
      const problem = checkModelName(name)
      if (problem !== undefined) return Effect.fail(new InvalidModelName({ model: name, reason: problem }))
      return Effect.clockWith((clock) =>
        Effect.flatMap(Ref.get(cache), (cached) => {
          if (Option.isSome(cached) && clock.unsafeCurrentTimeMillis() - cached.value.snapshot.fetchedAt < ttlMs) {
            const hit = cached.value.index.get(name)
            if (hit !== undefined) return Effect.succeed(hit)
          }
          return findSlow(name)
        })
      )
    }

    /** The model a call should use: the one named, else DEFAULT_MODEL, else the loaded LLM, else NoModelLoaded. */
    const resolve = (name: string | undefined): Effect.Effect<Found, CatalogError> =>
      // A named model (the common case) is one index lookup: no generator, no span unless traces are exported.
      name !== undefined && name !== "default"
        ? find(name).pipe(spanIf(tracing, "ModelCatalog.resolve", { model: name }))
        : resolveDefault

    const resolveDefault: Effect.Effect<Found, CatalogError> = Effect.gen(function*() {
      if (Option.isSome(config.defaultModel)) return yield* find(config.defaultModel.value)
      const current = yield* snapshot
      const loaded = current.models.find((m) => m.type !== "embedding" && m.loaded.length > 0)
      if (loaded) return { model: loaded, instance: loaded.loaded[0], seenAt: current.fetchedAt }
      return yield* new NoModelLoaded({
        baseUrl: config.baseUrl,
        detail: "no model was named, DEFAULT_MODEL is not set and no LLM is loaded"
      })
    }).pipe(spanIf(tracing, "ModelCatalog.resolve", { model: "default" }))

    const instancesOf = (s: CatalogSnapshot) =>
      s.models.flatMap((m) => m.loaded.map((instance) => ({ model: m, instance })))

    /** Loaded instances right now: only a listing fetched after this call began counts (what verification polls). */
    const loadedNow = Effect.gen(function*() {
      return instancesOf(yield* refreshAfter(generation(yield* Ref.get(cache))))
    })

    /** The generation of the listing held now (read it before waiting, pass it to `loadedSince`). */
    const currentGeneration = Effect.map(Ref.get(cache), generation)

    /**
     * Loaded instances from a listing newer than generation `seen`: fetched now unless one arrived since. Callers that
     * read the generation when they began and then waited (for a lock, a load) share the listing that came meanwhile.
     */
    const loadedSince = (seen: number) =>
      Effect.map(refreshAfter(seen), (s) => ({ instances: instancesOf(s), seenAt: s.fetchedAt }))

    return { snapshot, find, resolve, invalidate, loadedNow, currentGeneration, loadedSince } as const
  })
}) {}
