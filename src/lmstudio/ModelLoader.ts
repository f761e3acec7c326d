/**
 * One verified load through the configured backends (DESIGN §6 "Model lifecycle"): `lms load -y --ttl`, a JIT
 * request carrying `ttl`, or REST v1, in the order LoadPolicy gives; verified by polling the loaded list; retried
 * (1 s, 2 s, 4 s, jittered) only for what can succeed on retry. Stateless: what the bridge owns, the leases and the
 * rule "never load what the listing shows loaded" live in ModelLifecycle, which calls this under the model's lock.
 */
import { Clock, Data, Effect, Option } from "effect"
import { AppConfig } from "../Config.js"
import { ModelLoadFailed, ModelVerificationFailed } from "../domain/Errors.js"
import { errorTypeOfExit, record, timed } from "../observability/Metrics.js"
import { isRetryableLoadError, modelLoadRetry, verificationPoll } from "../resilience/Policies.js"
import type { LoadedInstance, ModelInfo } from "./client/Shapes.js"
import { LmsCli } from "./LmsCli.js"
import { LmStudioClient } from "./LmStudioClient.js"
import { type BackendChoice, chooseBackend, type TtlChoice } from "./LoadPolicy.js"
import type { LifecycleError, LoadRequest, LoadResult } from "./LoadResult.js"
import { type Found, ModelCatalog } from "./ModelCatalog.js"

/** Internal to verification: the instance is not in the loaded list yet. */
class NotYetLoaded extends Data.TaggedError("NotYetLoaded") {}

/** What a fresh load always is: the bridge's, with a TTL that LM Studio or the bridge holds. */
export interface LoaderOwned {
  readonly ttlSeconds: number
  readonly ttlEnforcedBy: "lmstudio" | "bridge"
}

export type Listed = { readonly model: ModelInfo; readonly instance: LoadedInstance }

export const contextNote = (asked: number | undefined, loaded: number | undefined): ReadonlyArray<string> =>
  asked !== undefined && loaded !== undefined && loaded !== asked
    ? [
      `LM Studio loaded it with a context of ${loaded} tokens (${asked} were asked)${
        loaded < asked ? "; it may be short of memory" : ""
      }`
    ]
    : []

/** The loader over the client, the lms CLI and the catalog (built inside ModelLifecycle). */
export const makeModelLoader = Effect.gen(function*() {
  const config = yield* AppConfig
  const client = yield* LmStudioClient
  const lms = yield* LmsCli
  const catalog = yield* ModelCatalog

  /** Polls the loaded list until the instance appears; `ModelVerificationFailed` if it never does. */
  const verify = (identifier: string, model: string) =>
    Effect.gen(function*() {
      let attempts = 0
      const found = yield* Effect.suspend(() => {
        attempts++
        return Effect.map(catalog.loadedNow, (all) =>
          all.find((l) =>
            l.instance.id === identifier
          ) ?? (identifier === model ? all.find((l) => l.model.key === model) : undefined))
      }).pipe(
        Effect.flatMap((f) => (f === undefined ? Effect.fail(new NotYetLoaded()) : Effect.succeed(f))),
        Effect.retry({
          schedule: verificationPoll(config.verifyInterval, config.verifyAttempts),
          while: (e) =>
            e._tag === "NotYetLoaded"
        }),
        Effect.catchTag("NotYetLoaded", () => Effect.succeed(undefined))
      )
      if (found === undefined) {
        yield* record((r) => r.update("verifyFailures", 1, ["not_listed"]))
        const all = yield* catalog.loadedNow
        return yield* new ModelVerificationFailed({
          model: identifier,
          attempts,
          loaded: all.map((l) => l.instance.id)
        })
      }
      if (config.verifyProbe && found.model.type !== "embedding") {
        yield* client.chat({ model: found.instance.id, messages: [{ role: "user", content: "." }], maxTokens: 1 })
      }
      return found
    }).pipe(Effect.withSpan("ModelLifecycle.verify", { captureStackTrace: false, attributes: { model: identifier } }))

  /** What `lms ps` says of an instance (TTL, device), when the CLI is there. */
  const psOf = (identifier: string) =>
    lms.available
      ? Effect.map(Effect.option(lms.ps()), (ps) =>
        Option.flatMap(ps, (list) => Option.fromNullable(list.find((i) => i.identifier === identifier))))
      : Effect.succeed(Option.none())

  interface Loaded {
    readonly identifier: string
    readonly enforcedBy: "lmstudio" | "bridge"
    readonly notes: ReadonlyArray<string>
  }

  /** One load through one backend; returns the identifier LM Studio gave and who holds the TTL. */
  const loadVia = (
    choice: BackendChoice,
    model: string,
    modelType: string,
    ttl: number,
    req: LoadRequest
  ): Effect.Effect<Loaded, LifecycleError> => {
    switch (choice.via) {
      case "cli":
        return Effect.map(
          lms.load(model, { ttlSeconds: ttl, contextLength: req.contextLength, identifier: req.identifier }),
          (r) => ({
            identifier: r.identifier ?? req.identifier ?? model,
            enforcedBy: "lmstudio",
            notes: []
          })
        )
      case "jit": {
        const served = modelType === "embedding"
          ? Effect.map(client.embed({ model, input: ".", ttlSeconds: ttl }), (r) => r.model)
          : Effect.map(
            client.chat({ model, messages: [{ role: "user", content: "." }], maxTokens: 1, ttlSeconds: ttl }),
            (r) => r.model
          )
        return Effect.map(served, (identifier) => ({
          identifier: identifier.replace(/@[^/@]*$/, "") || model,
          enforcedBy: "lmstudio",
          notes: [
            "JIT-loaded: LM Studio's auto-evict may have unloaded other JIT-loaded models",
            ...(req.identifier !== undefined ? ["a JIT load cannot set an identifier; it was ignored"] : []),
            ...(req.contextLength !== undefined
              ? ["a JIT load cannot set a context length; LM Studio used its own"]
              : [])
          ]
        }))
      }
      case "rest": {
        // LM Studio documents no `ttl` on REST loads: it is sent (a server that honours it holds the TTL), and who
        // really holds it is decided after the load from what `lms ps` shows.
        const attempt = (withTtl: boolean) =>
          client.loadModel({
            model,
            contextLength: req.contextLength,
            identifier: req.identifier,
            ttlSeconds: withTtl ? ttl : undefined
          })
        return attempt(true).pipe(
          Effect.map((r): Loaded => ({ identifier: r.instanceId, enforcedBy: "bridge", notes: [] })),
          Effect.catchIf(
            (e) =>
              e._tag === "LmStudioHttpError" && e.status >= 400 && e.status < 500 && /ttl|unrecognized/i.test(e.detail),
            () =>
              Effect.map(
                attempt(false),
                (r): Loaded => ({
                  identifier: r.instanceId,
                  enforcedBy: "bridge",
                  notes: ["LM Studio refused a `ttl` field on the REST load"]
                })
              )
          )
        )
      }
    }
  }

  /** Load through the configured backends in order, verify, retry what can succeed on retry. */
  const load = (
    req: LoadRequest,
    ttl: TtlChoice,
    found: Found
  ): Effect.Effect<LoadResult & LoaderOwned, LifecycleError> =>
    Effect.gen(function*() {
      const model = found.model.key
      const apis = yield* client.apis
      const choices = chooseBackend(config.lifecycle, lms.available, apis.v1)
      const started = yield* Clock.currentTimeMillis
      const warnings: Array<string> = []
      let lastError: LifecycleError | undefined
      for (const choice of choices) {
        const attempt = loadVia(choice, model, found.model.type, ttl.ttlSeconds, req).pipe(
          Effect.tap(() => catalog.invalidate),
          Effect.flatMap((r) => Effect.map(verify(r.identifier, model), (listed) => ({ ...r, listed }))),
          // Each try is an attempt: its backend, how it ended, how long it took (verification included).
          (one) =>
            timed(one, (r, seconds, exit) => {
              const labels = [choice.via, errorTypeOfExit(exit) ?? "success"] as const
              r.update("loadAttempts", 1, labels)
              r.update("loadDuration", seconds, labels)
            }),
          Effect.retry({ schedule: modelLoadRetry(config.loadRetryBase), while: isRetryableLoadError })
        )
        const outcome = yield* Effect.either(attempt)
        if (outcome._tag === "Right") {
          const { listed, ...r } = outcome.right
          const identifier = listed.instance.id
          const ps = yield* psOf(identifier)
          // A REST load is LM Studio's only when LM Studio shows it holding that TTL (protocol §12.1).
          const heldByLmStudio = Option.exists(ps, (i) => i.ttlMs === ttl.ttlSeconds * 1000)
          const enforcedBy = r.enforcedBy === "lmstudio" || heldByLmStudio ? ("lmstudio" as const) : ("bridge" as const)
          return {
            identifier,
            model,
            ttlSeconds: ttl.ttlSeconds,
            ttlEnforcedBy: enforcedBy,
            via: choice.via,
            viaReason: choice.reason,
            verified: true,
            alreadyLoaded: false,
            loadTimeMs: (yield* Clock.currentTimeMillis) - started,
            contextLength: listed.instance.contextLength,
            parallel: listed.instance.parallel,
            device: Option.getOrUndefined(Option.flatMapNullable(ps, (i) => i.deviceIdentifier)) ??
              listed.instance.device,
            notes: [
              ...(ttl.note ? [ttl.note] : []),
              ...warnings,
              ...r.notes,
              ...(choice.via === "rest" && enforcedBy === "bridge"
                ? [
                  "REST loads hold no idle TTL in LM Studio: the bridge unloads the model after the TTL while it runs, and when it " +
                  "stops (so a one-shot command unloads it as it exits); use the lms CLI or JIT for a TTL that LM Studio holds"
                ]
                : []),
              ...contextNote(req.contextLength, listed.instance.contextLength)
            ]
          } satisfies LoadResult & LoaderOwned
        }
        lastError = outcome.left
        // The next backend may work: the CLI is missing or failed, or a JIT request was not JIT-loaded (JIT off: no
        // model loaded, or the request fell to another loaded model).
        const fallThrough = config.lifecycle === "auto" &&
          ["LmsCliUnavailable", "LmsCliFailed", "NoModelLoaded", "ModelMismatch", "WrongModelKind"].includes(
            outcome.left._tag
          )
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

  return { verify, psOf, load } as const
})
