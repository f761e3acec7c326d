/**
 * Relevance of tools to a query, for choosing the tools a round offers and for `find_tools` (ToolChoice.ts). With an
 * embedding model in LM Studio (loaded, else downloaded; AGENT_TOOL_RANKING=auto), similarity of embeddings — the
 * model leased and loaded with its TTL like any other, each tool description embedded once per model and cached for
 * the bridge's life, queries cached too. Without one, or when embedding fails (said in a warning), BM25 over names and
 * descriptions.
 */
import { Effect, Ref } from "effect"
import { AppConfig } from "../Config.js"
import type { ToolDefinition } from "../domain/Messages.js"
import { Admission } from "../lmstudio/Admission.js"
import { LmStudioClient } from "../lmstudio/LmStudioClient.js"
import { ModelCatalog } from "../lmstudio/ModelCatalog.js"
import { ModelLifecycle } from "../lmstudio/ModelLifecycle.js"
import { bm25, similarity, unit } from "./ToolChoice.js"

export interface Scored {
  /** One score per tool, in the order the tools were given. */
  readonly scores: ReadonlyArray<number>
  readonly via: "bm25" | "embeddings"
  /** Why embeddings were not used for this query, when they were meant to be. */
  readonly problem?: string | undefined
}

export interface Ranker {
  readonly scores: (query: string) => Effect.Effect<Scored>
  /** The embedding model, when ranking by embeddings. */
  readonly model: string | undefined
}

/** Texts embedded per request. */
const BATCH = 64
/** Toolsets whose ranker (BM25 index, tool vectors) is kept. */
const RANKERS = 16
/** Cached vectors, across runs; the cache starts over past this. */
const CACHE_LIMIT = 20_000

const docOf = (t: ToolDefinition) => `${t.name.replace(/__/g, " ")}: ${t.description ?? ""}`

export class ToolRanking extends Effect.Service<ToolRanking>()("lmstudio-bridge/ToolRanking", {
  dependencies: [Admission.Default, LmStudioClient.Default, ModelCatalog.Default, ModelLifecycle.Default],
  effect: Effect.gen(function*() {
    const config = yield* AppConfig
    const client = yield* LmStudioClient
    const catalog = yield* ModelCatalog
    const lifecycle = yield* ModelLifecycle
    const admission = yield* Admission
    const cache = yield* Ref.make(new Map<string, ReadonlyArray<number>>())

    /** The embedding model to rank with: a loaded one first, else a downloaded one; none under AGENT_TOOL_RANKING=lexical. */
    const embeddingModel = config.agentToolRanking === "lexical"
      ? Effect.succeed(undefined)
      : Effect.map(Effect.option(catalog.snapshot), (snap) => {
        if (snap._tag === "None") return undefined
        const embedding = snap.value.models.filter((m) => m.type === "embedding")
        return (embedding.find((m) => m.loaded.length > 0) ?? embedding[0])?.key
      })

    /** Vectors of `texts` from the cache, embedding the missing ones in batches on the leased model. */
    const vectors = (model: string, texts: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const known = yield* Ref.get(cache)
        const missing = [...new Set(texts.filter((t) => !known.has(`${model}\u0000${t}`)))]
        if (missing.length > 0) {
          const batches = Array.from({ length: Math.ceil(missing.length / BATCH) }, (_, i) =>
            missing.slice(i * BATCH, (i + 1) * BATCH))
          const got = yield* lifecycle.withModel({ model }, (held) =>
            Effect.forEach(batches, (batch) =>
              held.request((m) =>
                admission.run(m.identifier, m.parallel, client.embed({ model: m.identifier, input: batch }))
              ).pipe(Effect.map((r) =>
                batch.map((t, i) =>
                  [t, r.vectors[i] ?? []] as const
                )
              ))))
          yield* Ref.update(cache, (c) => {
            const next = c.size + missing.length > CACHE_LIMIT ? new Map<string, ReadonlyArray<number>>() : new Map(c)
            for (const [t, v] of got.flat()) {
              next.set(`${model}\u0000${t}`, v)
            }
            return next
          })
        }
        const now = yield* Ref.get(cache)
        return texts.map((t) =>
          now.get(`${model}\u0000${t}`) ?? []
        )
      })

    /** Cosine scores of a query against document vectors, both from the cache (embedded when missing). */
    const byEmbeddings = (model: string, docs: ReadonlyArray<string>) => {
      let docVectors: ReadonlyArray<Float64Array> | undefined
      return (query: string) =>
        Effect.gen(function*() {
          docVectors ??= (yield* vectors(model, docs)).map(unit)
          const q = unit((yield* vectors(model, [query]))[0] ?? [])
          return docVectors.map((d) => similarity(q, d))
        })
    }

    // Rankers of the toolsets seen lately, by model and documents: a run over the same servers reuses the index and
    // the tools' vectors.
    const rankers = new Map<string, Ranker>()

    /** A ranker over `tools`: embeddings when a model is there (the tool vectors fetched on the first query), else BM25. */
    const ranker = (tools: ReadonlyArray<ToolDefinition>): Effect.Effect<Ranker> =>
      Effect.map(embeddingModel, (model) => {
        const docs = tools.map(docOf)
        const key = `${model ?? ""}\u0000${docs.join("\u0001")}`
        const hit = rankers.get(key)
        if (hit !== undefined) return hit
        const lexical = bm25(docs)
        const byBm25 = (query: string, problem?: string): Scored => ({
          scores: lexical(query),
          via: "bm25",
          ...(problem !== undefined ? { problem } : {})
        })
        const embedded = model === undefined ? undefined : byEmbeddings(model, docs)
        const made: Ranker = {
          model,
          scores: (query) =>
            embedded === undefined ? Effect.sync(() => byBm25(query)) : embedded(query).pipe(
              Effect.map((scores): Scored => ({ scores, via: "embeddings" })),
              Effect.catchAll((e) => Effect.succeed(byBm25(query, `${e._tag}: ${e.message}`)))
            )
        }
        if (rankers.size >= RANKERS) rankers.delete(rankers.keys().next().value!)
        rankers.set(key, made)
        return made
      })

    return { ranker } as const
  })
}) {}
