/**
 * What the model lifecycle answers: a load's result (identifier, TTL and who holds it, how it was loaded, the
 * instance's real context, parallel slots and device), a loaded instance, and their JSON and text renderings shared
 * by the CLI and the MCP tools.
 */
import { Schema } from "effect"
import type { InvalidTtl, LmsError, LmStudioError, ModelLoadFailed, ModelVerificationFailed } from "../domain/Errors.js"
import { nullable, wireKey } from "../domain/JsonShape.js"
import type { CatalogError } from "./ModelCatalog.js"

export type LifecycleError =
  | CatalogError
  | LmStudioError
  | LmsError
  | InvalidTtl
  | ModelLoadFailed
  | ModelVerificationFailed

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

/**
 * Who unloads a model when it has been idle for its TTL: LM Studio (it holds the TTL), the bridge (while it runs),
 * nobody (loaded by someone else without a TTL: it stays until unloaded), or unknown (someone else's, and without the
 * lms CLI the bridge cannot see its TTL).
 */
export const TtlHolder = Schema.Literal("lmstudio", "bridge", "nobody", "unknown").annotations({
  description:
    "Who unloads the model after its idle TTL: LM Studio itself, the bridge (only while it runs), nobody (loaded by someone " +
    "else without a TTL), or unknown (someone else's, and the lms CLI is not there to show its TTL)"
})
export type TtlHolder = typeof TtlHolder.Type

/** A load's result; its encoded form is the JSON of `lms_load_model`, `lms_ensure_model_loaded` and `models load --json`. */
export const LoadResult = Schema.Struct({
  identifier: Schema.String,
  model: Schema.String,
  /** The idle TTL, when known (a model someone else loaded may have none, or one the bridge cannot see). */
  ttlSeconds: wireKey("ttl_seconds", nullable(Schema.Number)),
  ttlEnforcedBy: wireKey("ttl_enforced_by", TtlHolder),
  /** How it was loaded; `existing` when LM Studio's listing showed it loaded already. */
  via: Schema.Literal("cli", "jit", "rest", "existing"),
  viaReason: wireKey("via_reason", Schema.String),
  verified: Schema.Boolean,
  alreadyLoaded: wireKey("already_loaded", Schema.Boolean),
  loadTimeMs: wireKey("load_time_ms", Schema.Number),
  /** The context and parallel slots of the loaded instance, as LM Studio reports them (not what was asked). */
  contextLength: wireKey(
    "context_length",
    nullable(Schema.Number).annotations({
      description: "The context the instance really has (LM Studio may load less than asked)"
    })
  ),
  parallel: nullable(Schema.Number),
  /** The LM Link device the instance runs on, when it is not this machine. */
  device: nullable(Schema.String).annotations({ description: "LM Link device the instance runs on; null when local" }),
  notes: Schema.Array(Schema.String)
})
export type LoadResult = typeof LoadResult.Type

const holderText: Record<TtlHolder, string> = {
  lmstudio: "enforced by LM Studio",
  bridge: "enforced by the bridge while it runs",
  nobody: "not enforced by anyone (it stays loaded until unloaded)",
  unknown: "holder unknown (no lms CLI to show it)"
}

/** A load result in words, for the CLI and the MCP text rendering alike. */
export const describeLoad = (o: LoadResult): ReadonlyArray<string> => [
  o.alreadyLoaded
    ? `${o.identifier} is already loaded (seen in LM Studio's listing just now).`
    : `Loaded ${o.identifier} via ${o.via} in ${o.loadTimeMs} ms (verified in LM Studio's listing).`,
  `TTL ${o.ttlSeconds === undefined ? "unknown" : `${o.ttlSeconds} s`}, ${holderText[o.ttlEnforcedBy]}.` +
  (o.contextLength !== undefined
    ? ` Context ${o.contextLength} tokens${o.parallel !== undefined ? `, ${o.parallel} parallel slots` : ""}.`
    : "") +
  (o.device !== undefined ? ` Runs on LM Link device ${o.device}.` : ""),
  ...o.notes.map((n) => `Note: ${n}`)
]

/** A loaded instance; its encoded form is the JSON of `lms_list_loaded_models` and `models loaded --json`. */
export const LoadedModel = Schema.Struct({
  identifier: Schema.String,
  model: Schema.String,
  type: Schema.String,
  contextLength: wireKey("context_length", nullable(Schema.Number)),
  parallel: nullable(Schema.Number),
  ttlSeconds: wireKey("ttl_seconds", nullable(Schema.Number)),
  ttlLeftSeconds: wireKey("ttl_left_seconds", nullable(Schema.Number)),
  status: nullable(Schema.String),
  ownedByBridge: wireKey("owned_by_bridge", Schema.Boolean),
  /** The LM Link device the instance runs on; undefined when local (or when only HTTP listings are available). */
  device: nullable(Schema.String)
})
export type LoadedModel = typeof LoadedModel.Type
