/**
 * The simulator's downloaded models and how LM Studio describes them on each API (protocol §2.1, §3, §4.1, §6.4).
 * Written from the protocol reference only; nothing here is shared with the bridge's client.
 */

export type SimModelType = "llm" | "vlm" | "embedding"
/** Where a model puts its reasoning in chat responses (protocol §2.2, §9.7). */
export type ReasoningKey = "reasoning_content" | "reasoning" | "none"

export interface SimModel {
  readonly key: string
  readonly type: SimModelType
  readonly publisher: string
  readonly displayName: string
  readonly architecture: string
  readonly quantization: { readonly name: string; readonly bits: number }
  readonly format: "gguf" | "mlx"
  readonly sizeBytes: number
  readonly paramsString: string | null
  readonly maxContextLength: number
  readonly trainedForToolUse: boolean
  readonly vision: boolean
  readonly reasoningKey: ReasoningKey
  readonly embeddingDimensions: number
}

export interface SimInstance {
  readonly identifier: string
  readonly modelKey: string
  readonly contextLength: number
  /** Idle TTL in ms, or null for "until unloaded". */
  readonly ttlMs: number | null
  readonly loadedAt: number
  readonly lastUsedTime: number | null
  /** JIT-loaded instances are the ones auto-evict unloads (protocol §5). */
  readonly jit: boolean
  readonly parallel: number
  /** LM Link: the device the instance runs on (protocol §12.5); null when it runs on this machine. */
  readonly device: string | null
  readonly active: number
  readonly requestsServed: number
}

const model = (
  key: string,
  fields: Partial<SimModel> & Pick<SimModel, "type" | "architecture" | "maxContextLength">
): SimModel => {
  const slash = key.indexOf("/")
  const publisher = slash > 0 ? key.slice(0, slash) : "lmstudio-community"
  const bare = slash > 0 ? key.slice(slash + 1) : key
  return {
    key,
    publisher,
    displayName: bare.replace(/[-_]/g, " "),
    quantization: { name: "Q4_K_M", bits: 4 },
    format: "gguf",
    sizeBytes: 2_500_000_000,
    paramsString: null,
    trainedForToolUse: false,
    vision: false,
    reasoningKey: "none",
    embeddingDimensions: 0,
    ...fields
  }
}

export const defaultCatalog: ReadonlyArray<SimModel> = [
  model("qwen/qwen3-4b", {
    type: "llm",
    architecture: "qwen3",
    maxContextLength: 32768,
    trainedForToolUse: true,
    reasoningKey: "reasoning_content",
    paramsString: "4B",
    sizeBytes: 2_497_280_000
  }),
  model("openai/gpt-oss-20b", {
    type: "llm",
    architecture: "gpt-oss",
    maxContextLength: 131072,
    trainedForToolUse: true,
    reasoningKey: "reasoning",
    paramsString: "20B",
    quantization: { name: "MXFP4", bits: 4 },
    sizeBytes: 12_109_566_560
  }),
  model("google/gemma-3-1b", {
    type: "llm",
    architecture: "gemma3",
    maxContextLength: 32768,
    paramsString: "1B",
    sizeBytes: 720_425_472
  }),
  model("qwen/qwen2.5-vl-7b", {
    type: "vlm",
    architecture: "qwen2_vl",
    maxContextLength: 32768,
    vision: true,
    trainedForToolUse: true,
    paramsString: "7B",
    format: "mlx",
    quantization: { name: "4bit", bits: 4 },
    sizeBytes: 5_600_000_000
  }),
  model("text-embedding-nomic-embed-text-v1.5", {
    type: "embedding",
    publisher: "nomic-ai",
    architecture: "nomic-bert",
    maxContextLength: 2048,
    quantization: { name: "Q4_0", bits: 4 },
    sizeBytes: 84_106_624,
    embeddingDimensions: 768
  })
]

/** A model from a bare key given on the command line (`simulate --models a,b`): the type is guessed from the name. */
export const modelFromKey = (key: string): SimModel => {
  const known = defaultCatalog.find((m) => m.key === key)
  if (known) return known
  const lower = key.toLowerCase()
  if (lower.includes("embed")) {
    return model(key, { type: "embedding", architecture: "bert", maxContextLength: 2048, embeddingDimensions: 768 })
  }
  return model(key, {
    type: lower.includes("vl") ? "vlm" : "llm",
    architecture: "llama",
    maxContextLength: 32768,
    trainedForToolUse: /qwen|llama-3|gpt-oss|mistral|granite/.test(lower),
    reasoningKey: /gpt-oss/.test(lower) ? "reasoning" : /qwen3|r1|think/.test(lower) ? "reasoning_content" : "none",
    vision: lower.includes("vl")
  })
}

const isLlm = (m: SimModel): boolean => m.type !== "embedding"

// ---------------------------------------------------------------------------------------------------------------
// Wire shapes
// ---------------------------------------------------------------------------------------------------------------

/** `GET /api/v0/models` entry (protocol §3): plural `embeddings`, `vlm`, `state`, `capabilities` array. */
export const v0Model = (m: SimModel, instances: ReadonlyArray<SimInstance>) => {
  const loaded = instances.find((i) => i.modelKey === m.key)
  return {
    id: m.key,
    object: "model",
    type: m.type === "embedding" ? "embeddings" : m.type,
    publisher: m.publisher,
    arch: m.architecture,
    compatibility_type: m.format,
    quantization: m.quantization.name,
    state: loaded ? "loaded" : "not-loaded",
    max_context_length: m.maxContextLength,
    ...(loaded ? { loaded_context_length: loaded.contextLength } : {}),
    ...(isLlm(m) ? { capabilities: m.trainedForToolUse ? ["tool_use"] : [] } : {})
  }
}

/** `GET /api/v1/models` entry (protocol §4.1): singular `embedding`, no `vlm`, `loaded_instances`. */
export const v1Model = (m: SimModel, instances: ReadonlyArray<SimInstance>) => {
  const mine = instances.filter((i) => i.modelKey === m.key)
  const base = {
    type: m.type === "embedding" ? "embedding" : "llm",
    publisher: m.publisher,
    key: m.key,
    display_name: m.displayName,
    ...(isLlm(m) ? { architecture: m.architecture } : {}),
    quantization: { name: m.quantization.name, bits_per_weight: m.quantization.bits },
    size_bytes: m.sizeBytes,
    params_string: m.paramsString,
    loaded_instances: mine.map((i) => ({
      id: i.identifier,
      config: isLlm(m)
        ? { context_length: i.contextLength, eval_batch_size: 512, parallel: i.parallel, flash_attention: true }
        : { context_length: i.contextLength }
    })),
    max_context_length: m.maxContextLength,
    format: m.format
  }
  if (!isLlm(m)) return base
  return {
    ...base,
    capabilities: {
      vision: m.vision,
      trained_for_tool_use: m.trainedForToolUse,
      ...(m.reasoningKey !== "none" ? { reasoning: { allowed_options: ["off", "on"], default: "on" } } : {})
    },
    description: null
  }
}

/** `lms ls --json` entry (protocol §6.4): SDK ModelInfo; MLX shows as `safetensors`. */
export const lmsModelInfo = (m: SimModel) => ({
  type: m.type === "embedding" ? "embedding" : "llm",
  modelKey: m.key,
  format: m.format === "mlx" ? "safetensors" : "gguf",
  displayName: m.displayName,
  publisher: m.publisher,
  path: `${m.publisher}/${m.key.slice(m.key.indexOf("/") + 1)}-GGUF/${
    m.key.slice(m.key.indexOf("/") + 1)
  }-${m.quantization.name}.gguf`,
  sizeBytes: m.sizeBytes,
  indexedModelIdentifier: `${m.publisher}/${m.key.slice(m.key.indexOf("/") + 1)}`,
  deviceIdentifier: null as string | null,
  ...(m.paramsString ? { paramsString: m.paramsString } : {}),
  architecture: m.architecture,
  quantization: m.quantization,
  ...(isLlm(m) ? { vision: m.vision, trainedForToolUse: m.trainedForToolUse } : {}),
  maxContextLength: m.maxContextLength
})

/** `lms ps --json` entry (protocol §6.4): instance info plus `status`, `queued`, `parallel`. */
export const lmsInstanceInfo = (m: SimModel, i: SimInstance) => ({
  ...lmsModelInfo(m),
  deviceIdentifier: i.device,
  identifier: i.identifier,
  ttlMs: i.ttlMs,
  lastUsedTime: i.lastUsedTime,
  contextLength: i.contextLength,
  status: i.active > 0 ? (m.type === "embedding" ? "computingEmbedding" : "generating") : "idle",
  queued: i.active,
  parallel: isLlm(m) ? i.parallel : null
})
