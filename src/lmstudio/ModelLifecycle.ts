/**
 * ModelLifecycle (DESIGN §6 "Model lifecycle", "Truth about LM Studio"): load, unload, ensureLoaded, verify,
 * listLoaded, and `withModel` for work that needs a model.
 *
 * - TTL always explicit and finite: keep 600 s, temporary 300 s, explicit values capped at MAX_MODEL_TTL_SECONDS
 *   with a note; 0, negative, non-integer and absurd values are rejected (`ttlFor`, LoadPolicy.ts). Results and their
 *   renderings: LoadResult.ts.
 * - LM Studio itself holds the TTL where it can, so it survives the bridge: `lms load -y --ttl N` when the CLI is
 *   there, else a JIT load (a one-token request carrying `ttl`), else REST v1. A REST load holds no idle TTL in
 *   LM Studio (protocol §12.1): it is reported as held by LM Studio only when `lms ps` shows LM Studio holding it;
 *   otherwise the bridge enforces it (while it runs) and says so. `LMSTUDIO_LIFECYCLE` forces one backend.
 * - Nothing is believed without looking. Loads of one model are serialised, and each first reads a listing newer
 *   than its caller's start (one listing shared by the callers that waited): a model the listing shows loaded is
 *   never loaded again (LM Studio would make a `key:2` copy). An explicit ensure confirms an earlier result against
 *   such a listing before answering "already loaded".
 * - Every load is verified by polling the loaded list with a Schedule (no fixed sleeps), optionally probed, and the
 *   load+verify step is retried (1 s, 2 s, 4 s, jittered) only for errors that can succeed on retry (ModelLoader.ts).
 * - Leases (`resilience/Leases.ts`) keyed by (model, TTL); work holds one (`withModel`) so the bridge never evicts a
 *   model mid-run. A lease whose instance a newer listing no longer shows is dropped; a request that LM Studio answers
 *   with "not loaded" / "another model served" re-ensures once (one shared load) and is sent again. When the last
 *   lease of a load has been idle for its TTL, a model the bridge loaded is unloaded — one someone else loaded never is.
 */
import { Clock, Effect, Option, Ref } from "effect"
import { AppConfig } from "../Config.js"
import { isExplained, isStaleModelBelief, WrongModelKind } from "../domain/Errors.js"
import { validateModelName } from "../domain/ModelName.js"
import { record } from "../observability/Metrics.js"
import * as Leases from "../resilience/Leases.js"
import { LmsCli } from "./LmsCli.js"
import { LmStudioClient } from "./LmStudioClient.js"
import { chooseBackend, type TtlChoice, ttlFor } from "./LoadPolicy.js"
import type { LifecycleError, LoadedModel, LoadRequest, LoadResult, TtlHolder } from "./LoadResult.js"
import { type Found, ModelCatalog } from "./ModelCatalog.js"
import { contextNote, type Listed, makeModelLoader } from "./ModelLoader.js"

/** A model held by running work (`withModel`). */
export interface HeldModel {
  /** The instance the work runs on now (it changes when the model had to be loaded again). */
  readonly current: () => LoadResult
  /**
   * Sends one request to the held model. When LM Studio's answer shows the model is not loaded after all (no model
   * loaded, another model served, unknown instance), the model is ensured again — one load shared by every request
   * that met the same unload — and the request is sent once more, to the instance that now serves the model.
   */
  readonly request: <A, E, R>(
    send: (model: LoadResult) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | LifecycleError, R>
}

interface LeaseKey {
  /** A model key, or an instance identifier when the caller named one. */
  readonly model: string
  readonly ttlSeconds: number
}

/** What a lease holds: the result, which load of the bridge it is (if the bridge loaded it), when it was confirmed. */
interface Lease {
  readonly result: LoadResult
  readonly loadId: number | undefined
  /** When the listing that showed (or verified) the instance was read (Clock ms). */
  readonly confirmedAt: number
  /** The catalog's listing generation once the acquisition was done (a strict counter, unlike the clock). */
  readonly generation: number
}

interface Owned {
  readonly identifier: string
  readonly ttlSeconds: number
  readonly enforcedBy: "lmstudio" | "bridge"
  /** Which load this is: a later load of the same identifier is another one. */
  readonly loadId: number
  /** The LM Link device it was loaded on, as the load saw it. */
  readonly device: string | undefined
}

/** The instance of `model` a listing shows: the one named exactly, else the model's first loaded instance. */
const instanceIn = (all: ReadonlyArray<Listed>, name: string, model: string): Listed | undefined =>
  all.find((l) => l.instance.id === name) ?? all.find((l) => l.model.key === model)

export class ModelLifecycle extends Effect.Service<ModelLifecycle>()("lmstudio-bridge/ModelLifecycle", {
  dependencies: [ModelCatalog.Default, LmStudioClient.Default, LmsCli.Default],
  scoped: Effect.gen(function*() {
    const config = yield* AppConfig
    const client = yield* LmStudioClient
    const lms = yield* LmsCli
    const catalog = yield* ModelCatalog
    /** Instances this bridge loaded (the only ones it ever unloads on its own). */
    const owned = yield* Ref.make(new Map<string, Owned>())
    const loadIds = yield* Ref.make(0)
    /** Live leases per load: a load is unloaded when the last lease on it is released. */
    const leaseCount = yield* Ref.make(new Map<number, number>())
    /** One lock per model key: its loads never overlap, and each looks at a fresh listing first. */
    const locks = new Map<string, Effect.Semaphore>()
    const lockOf = (model: string): Effect.Semaphore => {
      const existing = locks.get(model)
      if (existing !== undefined) return existing
      const lock = Effect.unsafeMakeSemaphore(1)
      locks.set(model, lock)
      return lock
    }

    const loader = yield* makeModelLoader
    const { psOf } = loader

    /** A load through the backends, registered as the bridge's own (a new load id). */
    const performLoad = (req: LoadRequest, ttl: TtlChoice, found: Found) =>
      Effect.flatMap(
        loader.load(req, ttl, found),
        (result) => Effect.map(Ref.updateAndGet(loadIds, (n) => n + 1), (loadId) => ({ result, loadId }))
      ).pipe(
        Effect.tap(({ result, loadId }) =>
          Ref.update(owned, (m) =>
            new Map(m).set(result.identifier, {
              identifier: result.identifier,
              ttlSeconds: result.ttlSeconds,
              enforcedBy: result.ttlEnforcedBy,
              loadId,
              device: result.device
            }))
        )
      )

    /** What a listing shows loaded, as a result: ownership and TTL from the bridge's own loads, else from `lms ps`. */
    const existing = (hit: Listed, req: LoadRequest, ttl: TtlChoice) =>
      Effect.gen(function*() {
        const mine = (yield* Ref.get(owned)).get(hit.instance.id)
        // The bridge knows its own loads; only someone else's need `lms ps` (TTL holder, device).
        const ps = mine === undefined ? yield* psOf(hit.instance.id) : Option.none()
        const psTtl = Option.map(
          ps,
          (i) => (i.ttlMs === null || i.ttlMs === undefined ? undefined : Math.round(i.ttlMs / 1000))
        )
        const holder: TtlHolder = mine !== undefined
          ? mine.enforcedBy
          : Option.match(psTtl, { onNone: () => "unknown", onSome: (t) => (t === undefined ? "nobody" : "lmstudio") })
        const result: LoadResult = {
          identifier: hit.instance.id,
          model: hit.model.key,
          ttlSeconds: mine?.ttlSeconds ?? Option.getOrUndefined(psTtl),
          ttlEnforcedBy: holder,
          via: "existing",
          viaReason: mine
            ? "already loaded by this bridge (seen in LM Studio's listing just now)"
            : "already loaded by someone else (seen in LM Studio's listing just now)",
          verified: true,
          alreadyLoaded: true,
          loadTimeMs: 0,
          contextLength: hit.instance.contextLength,
          parallel: hit.instance.parallel,
          device: mine?.device ?? Option.getOrUndefined(Option.flatMapNullable(ps, (i) => i.deviceIdentifier)) ??
            hit.instance.device,
          notes: [
            ...(ttl.note ? [ttl.note] : []),
            ...(mine ? [] : ["loaded by someone else: the bridge will not unload it"]),
            ...(holder === "nobody"
              ? ["it has no idle TTL in LM Studio: it stays loaded until someone unloads it"]
              : []),
            ...(holder === "unknown"
              ? ["without the lms CLI the bridge cannot see whether LM Studio holds a TTL for it"]
              : []),
            ...contextNote(req.contextLength, hit.instance.contextLength)
          ]
        }
        return { result, loadId: mine?.loadId }
      })

    /**
     * Under the model's lock: a listing newer than generation `seen` (the caller's start; callers that waited share
     * the listing made meanwhile), then a load only if that listing shows no instance of the model.
     */
    const findOrLoad = (req: LoadRequest, ttl: TtlChoice, found: Found, seen: number) =>
      lockOf(found.model.key).withPermits(1)(
        Effect.gen(function*() {
          const { instances } = yield* catalog.loadedSince(seen)
          const hit = req.identifier !== undefined
            ? instances.find((l) => l.instance.id === req.identifier)
            : instanceIn(instances, req.model, found.model.key)
          if (hit !== undefined) return yield* existing(hit, req, ttl)
          return yield* performLoad(req, ttl, found)
        })
      )

    /** Unloads one instance: REST v1 when present, else lms. Missing instances are not an error. */
    const unloadInstance = (identifier: string) =>
      Effect.gen(function*() {
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

    // Leases: acquisition = find-or-load under the model's lock; release = unload if (and only if) this bridge loaded
    // it and no other lease holds that load. When the bridge shuts down, a model whose TTL LM Studio holds is left to
    // LM Studio (it outlives the bridge by design); one whose TTL only the bridge enforces is unloaded, since nobody
    // else would.
    const shuttingDown = yield* Ref.make(false)
    const countLease = (loadId: number | undefined, delta: 1 | -1) =>
      loadId === undefined
        ? Effect.succeed(1)
        : Ref.modify(leaseCount, (m): [number, Map<number, number>] => {
          const n = (m.get(loadId) ?? 0) + delta
          const next = new Map(m)
          if (n <= 0) next.delete(loadId)
          else next.set(loadId, n)
          return [n, next]
        })
    const leases = yield* Leases.make({
      id: (key: LeaseKey) => `${key.ttlSeconds}:${key.model}`,
      acquire: (key: LeaseKey): Effect.Effect<Lease, LifecycleError> =>
        Effect.gen(function*() {
          const seen = yield* catalog.currentGeneration
          const found = yield* catalog.find(key.model)
          const ttl = { ttlSeconds: key.ttlSeconds, note: undefined }
          const { result, loadId } = yield* findOrLoad(
            { model: key.model, ttlSeconds: key.ttlSeconds },
            ttl,
            found,
            seen
          )
          yield* countLease(loadId, 1)
          return {
            result,
            loadId,
            confirmedAt: yield* Clock.currentTimeMillis,
            generation: yield* catalog.currentGeneration
          }
        }),
      release: (key: LeaseKey, lease: Lease) =>
        Effect.gen(function*() {
          const left = yield* countLease(lease.loadId, -1)
          const mine = (yield* Ref.get(owned)).get(lease.result.identifier)
          if (left > 0 || mine === undefined || mine.loadId !== lease.loadId) return
          const closing = yield* Ref.get(shuttingDown)
          if (closing && mine.enforcedBy === "lmstudio") return
          yield* Effect.logInfo("unloading a model the bridge loaded").pipe(
            Effect.annotateLogs({
              identifier: lease.result.identifier,
              ttlSeconds: key.ttlSeconds,
              reason: closing ? "shutdown" : "idle"
            })
          )
          yield* unloadInstance(lease.result.identifier).pipe(Effect.ignoreLogged)
        }),
      idleTimeToLiveMs: (key: LeaseKey) => key.ttlSeconds * 1000
    })
    // Registered after the table, so it runs before the table's own finalizer releases the leases.
    yield* Effect.addFinalizer(() => Ref.set(shuttingDown, true))

    /** LM Studio no longer has a lease's instance: forget the lease (only that acquisition) and what the bridge owned. */
    const forgetStale = (key: LeaseKey, lease: Lease, why: string) =>
      Effect.logWarning("LM Studio no longer has the model the bridge held; ensuring it again").pipe(
        Effect.annotateLogs({ identifier: lease.result.identifier, model: lease.result.model, why }),
        Effect.zipRight(
          record((r) => r.update("verifyFailures", 1, ["stale"]))
        ),
        Effect.zipRight(leases.invalidate(key, lease)),
        Effect.zipRight(
          Ref.update(owned, (m) => {
            if (m.get(lease.result.identifier)?.loadId !== lease.loadId || lease.loadId === undefined) return m
            const next = new Map(m)
            next.delete(lease.result.identifier)
            return next
          })
        ),
        Effect.zipRight(catalog.invalidate)
      )

    /** Is a lease contradicted by a listing read after it was confirmed (the instance is gone)? */
    const contradicted = (lease: Lease, found: Found) =>
      found.model.source !== "openai" && found.seenAt > lease.confirmedAt &&
      !found.model.loaded.some((i) => i.id === lease.result.identifier)

    const keyOf = (req: LoadRequest, ttl: TtlChoice, found: Found): LeaseKey => ({
      // A named instance (`key:2`) is held as that instance; otherwise the model.
      model: found.instance !== undefined && found.instance.id === req.model ? req.model : found.model.key,
      ttlSeconds: ttl.ttlSeconds
    })

    /**
     * Ensures a model is loaded and verified. Concurrent calls share one load; a call that finds an earlier result
     * confirms it against a fresh listing first, and loads again when LM Studio dropped the model meanwhile.
     */
    const ensureLoaded = (req: LoadRequest) =>
      Effect.gen(function*() {
        yield* validateModelName(req.model)
        const ttl = yield* ttlFor(req, config)
        const seen = yield* catalog.currentGeneration
        const found = yield* catalog.find(req.model)
        const key = keyOf(req, ttl, found)
        const lease = yield* leases.get(key)
        const withNote = (r: LoadResult): LoadResult => ({ ...r, notes: [...(ttl.note ? [ttl.note] : []), ...r.notes] })
        // The acquisition read its listing (and loaded if needed) after this call began: that is the confirmation.
        if (lease.generation > seen) return withNote(lease.result)
        const { instances } = yield* catalog.loadedSince(seen)
        const hit = instances.find((l) => l.instance.id === lease.result.identifier)
        if (hit !== undefined) {
          const { result } = yield* existing(hit, req, ttl)
          return result
        }
        yield* forgetStale(key, lease, "not in LM Studio's listing at an explicit ensure")
        return withNote((yield* leases.get(key)).result)
      }).pipe(
        Effect.withSpan("ModelLifecycle.ensureLoaded", { captureStackTrace: false, attributes: { model: req.model } })
      )

    /**
     * Loads a model. A model the listing shows loaded is not loaded again (LM Studio would make a second instance,
     * `key:2`, costing its memory once more): the existing instance is returned, with a note. Give an `identifier`
     * that is not loaded to get a second instance on purpose.
     */
    const load = (req: LoadRequest) =>
      Effect.gen(function*() {
        yield* validateModelName(req.model)
        if (req.identifier !== undefined) yield* validateModelName(req.identifier)
        const ttl = yield* ttlFor(req, config)
        const seen = yield* catalog.currentGeneration
        const found = yield* catalog.find(req.model)
        const { result } = yield* findOrLoad(req, ttl, found, seen)
        if (result.alreadyLoaded) {
          return {
            ...result,
            notes: [
              ...result.notes,
              "not loaded again: LM Studio would have made a second instance; give a new `identifier` to load one on purpose"
            ]
          } satisfies LoadResult
        }
        if (result.ttlEnforcedBy === "bridge") {
          // Nobody else will unload it: hold an idle lease that unloads it after the TTL.
          yield* leases.get({ model: result.identifier, ttlSeconds: ttl.ttlSeconds })
        }
        return result
      })

    /**
     * Runs `use` with the model held: loaded (with an explicit TTL), never evicted by the bridge while `use` runs, and
     * re-ensured when LM Studio turns out not to have it (see `HeldModel.request`).
     */
    const withModel = <A, E, R>(
      req: LoadRequest,
      use: (held: HeldModel) => Effect.Effect<A, E, R>
    ): Effect.Effect<A, E | LifecycleError, R> =>
      Effect.flatMap(ttlFor(req, config), (ttl) =>
        Effect.flatMap(catalog.find(req.model), (found) => {
          const key = keyOf(req, ttl, found)
          // "Model is not llm" for an LLM (or "not embedding" for an embedding model): served by another model.
          const kind = found.model.type === "embedding"
            ? "embedding"
            : found.model.type === "unknown"
            ? undefined
            : "llm"
          const stale = (e: unknown) => isStaleModelBelief(e) || (e instanceof WrongModelKind && e.expected === kind)
          return Effect.uninterruptibleMask((restore) => {
            let hold: Leases.Hold<Lease> | undefined
            /** Swaps the held lease for a new acquisition (the stale one is forgotten first, if still current). */
            const renew = (stale: Lease, why: string) =>
              Effect.uninterruptibleMask((restoreRenew) =>
                Effect.suspend(() => {
                  if (hold !== undefined && hold.resource !== stale) return Effect.void
                  return forgetStale(key, stale, why).pipe(
                    Effect.zipRight(leases.acquire(key, restoreRenew)),
                    Effect.flatMap((next) => {
                      const old = hold
                      hold = next
                      return old === undefined ? Effect.void : old.release
                    })
                  )
                })
              )
            const held: HeldModel = {
              current: () => hold!.resource.result,
              request: <B, E2, R2>(send: (model: LoadResult) => Effect.Effect<B, E2, R2>) =>
                Effect.suspend(() => {
                  const lease = hold!.resource
                  return Effect.catchIf(
                    send(lease.result),
                    (e: E2): boolean => stale(e),
                    (e: E2) =>
                      renew(lease, isExplained(e) ? `${e._tag}: ${e.message}` : "stale").pipe(
                        Effect.zipRight(Effect.suspend(() => send(hold!.resource.result)))
                      )
                  )
                })
            }
            return leases.acquire(key, restore).pipe(
              Effect.flatMap((first) => {
                hold = first
                // A listing newer than the lease no longer shows its instance: LM Studio dropped it.
                return contradicted(first.resource, found)
                  ? renew(first.resource, "not in LM Studio's latest listing")
                  : Effect.void
              }),
              Effect.zipRight(Effect.suspend(() => restore(use(held)))),
              Effect.ensuring(Effect.suspend(() => (hold === undefined ? Effect.void : hold.release)))
            )
          })
        }))

    /** Loaded instances with TTL, ownership and device (TTL details and devices from `lms ps` when the CLI is there). */
    const listLoaded = Effect.gen(function*() {
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
          parallel: instance.parallel,
          ttlSeconds: ttlMs !== undefined ? Math.round(ttlMs / 1000) : own?.ttlSeconds,
          ttlLeftSeconds: ttlMs !== undefined
            ? Math.max(0, Math.round((ttlMs - (lastUsed === undefined ? 0 : now - lastUsed)) / 1000))
            : undefined,
          status: Option.getOrUndefined(Option.flatMapNullable(info, (i) => i.status)),
          ownedByBridge: own !== undefined,
          device: Option.getOrUndefined(Option.flatMapNullable(info, (i) => i.deviceIdentifier)) ?? instance.device
        }
      })
    })

    /** Unloads everything loaded (only on explicit request). */
    const unloadAll = Effect.gen(function*() {
      const all = yield* catalog.loadedNow
      return yield* Effect.forEach(all, (l) => Effect.as(unloadInstance(l.instance.id), l.instance.id), {
        concurrency: 4
      })
    })

    /** How models are loaded here and who enforces TTLs (for lms_server_status / health). */
    const status = Effect.gen(function*() {
      const apis = yield* client.apis
      const [first] = chooseBackend(config.lifecycle, lms.available, apis.v1)
      return {
        mode: config.lifecycle,
        backend: first?.via ?? "jit",
        reason: first?.reason ?? "",
        ttlEnforcedBy: first?.via === "rest"
          ? "the bridge while it runs (REST loads hold no idle TTL in LM Studio)"
          : "lmstudio",
        lmsCli: Option.getOrElse(lms.path, () => "not installed"),
        lmsBreaker: yield* lms.breaker
      }
    })

    return { load, ensureLoaded, withModel, unload: unloadInstance, unloadAll, listLoaded, status } as const
  })
}) {}
