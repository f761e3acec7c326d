/**
 * What the model lifecycle answers: a load's result (identifier, TTL and who holds it, how it was loaded, the
 * instance's real context, parallel slots and device), a loaded instance, and their JSON and text renderings shared
 * by the CLI and the MCP tools.
 */
import type { InvalidTtl, LmsError, LmStudioError, ModelLoadFailed, ModelVerificationFailed } from "../domain/Errors.js"
import type { Backend } from "./LoadPolicy.js"
import type { CatalogError } from "./ModelCatalog.js"

export type LifecycleError = CatalogError | LmStudioError | LmsError | InvalidTtl | ModelLoadFailed | ModelVerificationFailed

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
export type TtlHolder = "lmstudio" | "bridge" | "nobody" | "unknown"

export interface LoadResult {
  readonly identifier: string
  readonly model: string
  /** The idle TTL, when known (a model someone else loaded may have none, or one the bridge cannot see). */
  readonly ttlSeconds: number | undefined
  readonly ttlEnforcedBy: TtlHolder
  /** How it was loaded; `existing` when LM Studio's listing showed it loaded already. */
  readonly via: Backend | "existing"
  readonly viaReason: string
  readonly verified: boolean
  readonly alreadyLoaded: boolean
  readonly loadTimeMs: number
  /** The context and parallel slots of the loaded instance, as LM Studio reports them (not what was asked). */
  readonly contextLength: number | undefined
  readonly parallel: number | undefined
  /** The LM Link device the instance runs on, when it is not this machine. */
  readonly device: string | undefined
  readonly notes: ReadonlyArray<string>
}

/** A load result as the faces show it (snake_case JSON for CLI `--json` and MCP structured content). */
export const loadResultJson = (r: LoadResult) => ({
  identifier: r.identifier,
  model: r.model,
  ttl_seconds: r.ttlSeconds ?? null,
  ttl_enforced_by: r.ttlEnforcedBy,
  via: r.via,
  via_reason: r.viaReason,
  verified: r.verified,
  already_loaded: r.alreadyLoaded,
  load_time_ms: r.loadTimeMs,
  context_length: r.contextLength ?? null,
  parallel: r.parallel ?? null,
  device: r.device ?? null,
  notes: r.notes
})

const holderText: Record<TtlHolder, string> = {
  lmstudio: "enforced by LM Studio",
  bridge: "enforced by the bridge while it runs",
  nobody: "not enforced by anyone (it stays loaded until unloaded)",
  unknown: "holder unknown (no lms CLI to show it)"
}

/** A load result in words, for the CLI and the MCP text rendering alike. */
export const describeLoad = (o: ReturnType<typeof loadResultJson>): ReadonlyArray<string> => [
  o.already_loaded
    ? `${o.identifier} is already loaded (seen in LM Studio's listing just now).`
    : `Loaded ${o.identifier} via ${o.via} in ${o.load_time_ms} ms (verified in LM Studio's listing).`,
  `TTL ${o.ttl_seconds === null ? "unknown" : `${o.ttl_seconds} s`}, ${holderText[o.ttl_enforced_by]}.` +
    (o.context_length !== null ? ` Context ${o.context_length} tokens${o.parallel !== null ? `, ${o.parallel} parallel slots` : ""}.` : "") +
    (o.device !== null ? ` Runs on LM Link device ${o.device}.` : ""),
  ...o.notes.map((n) => `Note: ${n}`)
]

export interface LoadedModel {
  readonly identifier: string
  readonly model: string
  readonly type: string
  readonly contextLength: number | undefined
  readonly parallel: number | undefined
  readonly ttlSeconds: number | undefined
  readonly ttlLeftSeconds: number | undefined
  readonly status: string | undefined
  readonly ownedByBridge: boolean
  /** The LM Link device the instance runs on; undefined when local (or when only HTTP listings are available). */
  readonly device: string | undefined
}

/** A loaded instance as the faces show it (snake_case JSON for CLI `--json` and MCP structured content). */
export const loadedModelJson = (m: LoadedModel) => ({
  identifier: m.identifier,
  model: m.model,
  type: m.type,
  context_length: m.contextLength ?? null,
  parallel: m.parallel ?? null,
  ttl_seconds: m.ttlSeconds ?? null,
  ttl_left_seconds: m.ttlLeftSeconds ?? null,
  status: m.status ?? null,
  owned_by_bridge: m.ownedByBridge,
  device: m.device ?? null
})
