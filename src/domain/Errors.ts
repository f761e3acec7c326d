/**
 * Typed errors that cross a boundary (MCP results, CLI output, logs).
 *
 * Every error carries the context a user needs to act (endpoint, status, model, available models, base URL) and a
 * `hint` that names the fix. `message` is derived from the fields so the one-line rendering never drifts from the
 * data. Services expose only these errors: transport and parse errors are mapped at the service edge.
 */
import { Predicate, Schema } from "effect"

const StringList = Schema.Array(Schema.String)

// ---------------------------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------------------------

export class ConfigInvalid extends Schema.TaggedError<ConfigInvalid>()("ConfigInvalid", {
  variable: Schema.String,
  value: Schema.String,
  allowed: Schema.String
}) {
  override get message(): string {
    return `Invalid ${this.variable}=${JSON.stringify(this.value)}: expected ${this.allowed}`
  }
  get hint(): string {
    return `Fix or unset ${this.variable} (environment variable or the matching CLI flag).`
  }
}

export class InvalidArguments extends Schema.TaggedError<InvalidArguments>()("InvalidArguments", {
  command: Schema.String,
  problem: Schema.String
}) {
  override get message(): string {
    return `${this.command}: ${this.problem}`
  }
  get hint(): string {
    return `See \`lmstudio-bridge ${this.command} --help\`.`
  }
}

export class ChecksFailed extends Schema.TaggedError<ChecksFailed>()("ChecksFailed", {
  problems: StringList
}) {
  override get message(): string {
    return `${this.problems.length} check(s) found a problem: ${this.problems.join(", ")}`
  }
  get hint(): string {
    return "Apply the fix printed under each problem, then run `lmstudio-bridge doctor` again."
  }
}

// ---------------------------------------------------------------------------------------------------------------
// LM Studio transport
// ---------------------------------------------------------------------------------------------------------------

export class LmStudioUnreachable extends Schema.TaggedError<LmStudioUnreachable>()("LmStudioUnreachable", {
  baseUrl: Schema.String,
  endpoint: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `LM Studio is not reachable at ${this.baseUrl} (${this.endpoint}): ${this.reason}`
  }
  get hint(): string {
    return "Start the server in LM Studio (Developer tab) or run `lms server start`; set LMSTUDIO_BASE_URL if it runs elsewhere."
  }
}

export class LmStudioTimeout extends Schema.TaggedError<LmStudioTimeout>()("LmStudioTimeout", {
  baseUrl: Schema.String,
  endpoint: Schema.String,
  timeoutMs: Schema.Number,
  model: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `LM Studio did not answer ${this.endpoint} within ${this.timeoutMs} ms${
      this.model ? ` (model ${this.model})` : ""
    }`
  }
  get hint(): string {
    return "The model may be loading or too slow for this request: retry, lower max_tokens, or raise LMSTUDIO_TIMEOUT_SECONDS."
  }
}

export class LmStudioConnectionLost extends Schema.TaggedError<LmStudioConnectionLost>()("LmStudioConnectionLost", {
  baseUrl: Schema.String,
  endpoint: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `LM Studio closed the connection during ${this.endpoint} before the answer was complete: ${this.reason}`
  }
  get hint(): string {
    return "The model may have crashed or been unloaded mid-answer; check `lms ps` and LM Studio's log, then retry."
  }
}

export class LmStudioHttpError extends Schema.TaggedError<LmStudioHttpError>()("LmStudioHttpError", {
  baseUrl: Schema.String,
  endpoint: Schema.String,
  status: Schema.Number,
  detail: Schema.String,
  code: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `LM Studio answered ${this.endpoint} with HTTP ${this.status}${
      this.code ? ` (${this.code})` : ""
    }: ${this.detail}`
  }
  get hint(): string {
    if (this.status >= 500) {
      return "LM Studio failed internally; check its server log (`lms log stream --source server`) and retry."
    }
    if (this.status === 401 || this.status === 403) {
      return "LM Studio requires authentication: set LMSTUDIO_API_TOKEN (or LM_API_TOKEN) to a valid API token."
    }
    return "The request was refused; check the parameters named in the message."
  }
}

export class LmStudioMalformedResponse extends Schema.TaggedError<LmStudioMalformedResponse>()(
  "LmStudioMalformedResponse",
  {
    baseUrl: Schema.String,
    endpoint: Schema.String,
    detail: Schema.String
  }
) {
  override get message(): string {
    return `LM Studio sent a response to ${this.endpoint} that could not be understood: ${this.detail}`
  }
  get hint(): string {
    return "Is LMSTUDIO_BASE_URL really an LM Studio server? Otherwise update LM Studio; the response did not match its API."
  }
}

export class LmStudioApiUnsupported extends Schema.TaggedError<LmStudioApiUnsupported>()("LmStudioApiUnsupported", {
  baseUrl: Schema.String,
  api: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `This LM Studio server does not offer the ${this.api} API: ${this.detail}`
  }
  get hint(): string {
    return "Update LM Studio (0.3.29+ for /v1/responses, 0.4.0+ for /api/v1/*)."
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------------------------

export class InvalidModelName extends Schema.TaggedError<InvalidModelName>()("InvalidModelName", {
  model: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Invalid model name ${JSON.stringify(this.model)}: ${this.reason}`
  }
  get hint(): string {
    return "Use a model key as listed by list_models / `lmstudio-bridge models list`, e.g. qwen/qwen3-4b."
  }
}

export class ModelNotFound extends Schema.TaggedError<ModelNotFound>()("ModelNotFound", {
  model: Schema.String,
  available: StringList,
  suggestions: StringList
}) {
  override get message(): string {
    const list = this.available.length > 0 ? this.available.join(", ") : "none"
    return `Model ${JSON.stringify(this.model)} was not found. Available models: ${list}`
  }
  get hint(): string {
    if (this.suggestions.length > 0) {
      return `Did you mean ${this.suggestions.map((s) => JSON.stringify(s)).join(" or ")}?`
    }
    return "Download the model in LM Studio (or `lms get <model>`), or pick one from the available list."
  }
}

export class NoModelLoaded extends Schema.TaggedError<NoModelLoaded>()("NoModelLoaded", {
  baseUrl: Schema.String,
  model: Schema.optional(Schema.String),
  detail: Schema.String
}) {
  override get message(): string {
    return `No model is loaded in LM Studio${
      this.model ? ` to serve ${JSON.stringify(this.model)}` : ""
    }: ${this.detail}`
  }
  get hint(): string {
    return "Load one with lms_load_model / `lms load <model> --ttl 600`, or enable JIT loading in LM Studio's server settings."
  }
}

export class ModelMismatch extends Schema.TaggedError<ModelMismatch>()("ModelMismatch", {
  requested: Schema.String,
  served: Schema.String,
  endpoint: Schema.String
}) {
  override get message(): string {
    return `Asked for model ${JSON.stringify(this.requested)} but LM Studio served ${
      JSON.stringify(this.served)
    } (${this.endpoint})`
  }
  get hint(): string {
    return "LM Studio silently answers with the only loaded model when the name is unknown: check the name, or load the model first."
  }
}

export class WrongModelKind extends Schema.TaggedError<WrongModelKind>()("WrongModelKind", {
  requested: Schema.String,
  expected: Schema.Literal("llm", "embedding"),
  endpoint: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return (
      `LM Studio refused ${this.endpoint} for ${JSON.stringify(this.requested)} (${this.detail}): either it is not ` +
      `${
        this.expected === "llm" ? "an LLM" : "an embedding model"
      }, or it is not loaded and the request fell to another loaded model`
    )
  }
  get hint(): string {
    return this.expected === "llm"
      ? "Use an LLM for chat and completions (list_models shows each model's type); if it is one, load it again with lms_ensure_model_loaded."
      : "Use an embedding model for embeddings (list_models shows each model's type); if it is one, load it again with lms_ensure_model_loaded."
  }
}

/**
 * The prompt does not fit the context the instance is loaded with: LM Studio never truncates an API prompt, it fails
 * the request (protocol §12.3).
 */
export class ContextOverflow extends Schema.TaggedError<ContextOverflow>()("ContextOverflow", {
  /** The model or instance the request was for, when named. */
  model: Schema.optional(Schema.String),
  tokensNeeded: Schema.Number,
  tokensAvailable: Schema.Number,
  detail: Schema.String
}) {
  override get message(): string {
    return (
      `the prompt needs ${this.tokensNeeded} tokens but ${
        this.model === undefined ? "the model" : JSON.stringify(this.model)
      } is loaded with a context of ${this.tokensAvailable} tokens`
    )
  }
  get hint(): string {
    return (
      "Shorten the input, or load the model with a larger context: lms_load_model with `context_length` (e.g. " +
      `${Math.min(131_072, 2 ** Math.ceil(Math.log2(Math.max(this.tokensNeeded * 1.25, 4096))))}` +
      "), or `lms load <model> --context-length N`; for agents, use fewer servers."
    )
  }
}

export class InvalidTtl extends Schema.TaggedError<InvalidTtl>()("InvalidTtl", {
  value: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Invalid ttl_seconds ${this.value}: ${this.reason}`
  }
  get hint(): string {
    return "Give a whole number of seconds, at least 1 (values above MAX_MODEL_TTL_SECONDS are capped), or use keep_loaded."
  }
}

export class ModelLoadFailed extends Schema.TaggedError<ModelLoadFailed>()("ModelLoadFailed", {
  model: Schema.String,
  via: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Loading ${JSON.stringify(this.model)} via ${this.via} failed: ${this.reason}`
  }
  get hint(): string {
    return "Check free memory and the model's context length in LM Studio; a smaller context_length often helps."
  }
}

export class ModelVerificationFailed extends Schema.TaggedError<ModelVerificationFailed>()("ModelVerificationFailed", {
  model: Schema.String,
  attempts: Schema.Number,
  loaded: StringList
}) {
  override get message(): string {
    const list = this.loaded.length > 0 ? this.loaded.join(", ") : "none"
    return `Model ${
      JSON.stringify(this.model)
    } was reported loaded but never appeared in the loaded list after ${this.attempts} checks (loaded: ${list})`
  }
  get hint(): string {
    return "LM Studio may have run out of memory or evicted the model; see `lms ps` and LM Studio's log."
  }
}

export class PreviousResponseNotFound extends Schema.TaggedError<PreviousResponseNotFound>()(
  "PreviousResponseNotFound",
  { previousResponseId: Schema.String }
) {
  override get message(): string {
    return `LM Studio does not know the previous response ${JSON.stringify(this.previousResponseId)}`
  }
  get hint(): string {
    return "Start a new conversation without previous_response_id; LM Studio may have been restarted or its history cleared."
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Resilience and the lms CLI
// ---------------------------------------------------------------------------------------------------------------

export class CircuitOpen extends Schema.TaggedError<CircuitOpen>()("CircuitOpen", {
  dependency: Schema.String,
  retryAfterSeconds: Schema.Number
}) {
  override get message(): string {
    return `${this.dependency} failed repeatedly; calls are paused for ${this.retryAfterSeconds} s`
  }
  get hint(): string {
    return `Fix the cause (see health_check / \`lmstudio-bridge health\`); the bridge retries automatically in ${this.retryAfterSeconds} s.`
  }
}

export class LmsCliUnavailable extends Schema.TaggedError<LmsCliUnavailable>()("LmsCliUnavailable", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `The lms CLI is not available at ${JSON.stringify(this.path)}: ${this.reason}`
  }
  get hint(): string {
    return "Install it with LM Studio (run `~/.lmstudio/bin/lms bootstrap`) or set LMS_CLI_PATH."
  }
}

export class LmsCliFailed extends Schema.TaggedError<LmsCliFailed>()("LmsCliFailed", {
  args: StringList,
  exitCode: Schema.Number,
  stderr: Schema.String
}) {
  override get message(): string {
    return `\`lms ${this.args.join(" ")}\` failed with exit code ${this.exitCode}: ${
      this.stderr.trim() || "(no output)"
    }`
  }
  get hint(): string {
    return "Run the same lms command in a terminal to see the full message."
  }
}

export class LmsCliTimeout extends Schema.TaggedError<LmsCliTimeout>()("LmsCliTimeout", {
  args: StringList,
  timeoutMs: Schema.Number
}) {
  override get message(): string {
    return `\`lms ${this.args.join(" ")}\` did not finish within ${this.timeoutMs} ms and was killed`
  }
  get hint(): string {
    return "LM Studio may be busy or stuck; check it, or raise LMS_CLI_TIMEOUT_SECONDS for slow model loads."
  }
}

export class LmsCliOutputInvalid extends Schema.TaggedError<LmsCliOutputInvalid>()("LmsCliOutputInvalid", {
  args: StringList,
  detail: Schema.String
}) {
  override get message(): string {
    return `\`lms ${this.args.join(" ")}\` printed output the bridge could not read: ${this.detail}`
  }
  get hint(): string {
    return "Update LM Studio's CLI (`lms` ships with LM Studio), or set LMSTUDIO_LIFECYCLE=rest to manage models over HTTP."
  }
}

/** Errors of the lms CLI port. */
export type LmsError = LmsCliUnavailable | LmsCliFailed | LmsCliTimeout | LmsCliOutputInvalid | CircuitOpen

export class BridgeOverloaded extends Schema.TaggedError<BridgeOverloaded>()("BridgeOverloaded", {
  queued: Schema.Number,
  limit: Schema.Number,
  retryAfterSeconds: Schema.Number
}) {
  override get message(): string {
    return `The bridge is busy: ${this.queued} requests are queued (limit ${this.limit})`
  }
  get hint(): string {
    return `Retry in about ${this.retryAfterSeconds} s, or send fewer requests at once.`
  }
}

/** Errors of the LM Studio HTTP client. */
export const LmStudioError = Schema.Union(
  LmStudioUnreachable,
  LmStudioTimeout,
  LmStudioConnectionLost,
  LmStudioHttpError,
  LmStudioMalformedResponse,
  LmStudioApiUnsupported,
  ModelNotFound,
  NoModelLoaded,
  ModelMismatch,
  WrongModelKind,
  ContextOverflow,
  PreviousResponseNotFound,
  CircuitOpen
)
export type LmStudioError = typeof LmStudioError.Type

/**
 * Answers that mean "the model the bridge believes loaded is not there" (DESIGN §6 "Truth about LM Studio"): no model
 * loaded, the request served by another model, or the instance unknown. The belief is stale: refresh, re-ensure once
 * (one shared load), retry. (`WrongModelKind` means the same when the model is of the kind LM Studio says it is not:
 * only the caller, who knows the model's type, can tell.)
 */
export const StaleModelBelief = Schema.Union(NoModelLoaded, ModelMismatch, ModelNotFound)
export type StaleModelBelief = typeof StaleModelBelief.Type
export const isStaleModelBelief: (u: unknown) => u is StaleModelBelief = Schema.is(StaleModelBelief)

/** What every error of ours offers to the faces (CLI, MCP). */
export interface Explained {
  readonly _tag: string
  readonly message: string
  readonly hint: string
}

export const isExplained = (u: unknown): u is Explained =>
  Predicate.isRecord(u) && typeof u._tag === "string" && typeof u.hint === "string" && typeof u.message === "string"

/** One-line rendering: `<Tag>: <message>` — used by the CLI; the MCP face adds the hint and the fields. */
export const renderError = (e: Explained): string => `${e._tag}: ${e.message}`
