/** `chat`, `complete`, `embed`, `respond`: one LM Studio call each, streamed to the terminal where it helps. */
import { Args, Command, Options } from "@effect/cli"
import { Effect, Option, Stream } from "effect"
import { type ChatMessage, systemMessage, userMessage } from "../domain/Messages.js"
import { LmStudioClient } from "../lmstudio/LmStudioClient.js"
import { ModelCatalog } from "../lmstudio/ModelCatalog.js"
import {
  type AppLayerFactory,
  baseUrl,
  json,
  model,
  note,
  optionalInteger,
  optionalNumber,
  printJson,
  printLine,
  withApp,
  write,
  writeErr
} from "./Shared.js"

const prompt = Args.text({ name: "prompt" }).pipe(Args.withDescription("What to send to the model"))
const maxTokens = optionalInteger("max-tokens", "Maximum tokens to generate")
const temperature = optionalNumber("temperature", "Sampling temperature")
const system = Options.text("system").pipe(
  Options.withAlias("s"),
  Options.withDescription("System prompt"),
  Options.optional
)
const noStream = Options.boolean("no-stream").pipe(
  Options.withDescription("Wait for the whole answer instead of streaming it")
)

/** The instance (or key) to send: the named model, checked against the catalog, else the default (DESIGN §5). */
const modelFor = (flag: Option.Option<string>) =>
  Effect.flatMap(
    ModelCatalog,
    (catalog) =>
      Effect.map(catalog.resolve(Option.getOrUndefined(flag)), (found) => found.instance?.id ?? found.model.key)
  )

const usageJson = (
  u: { readonly promptTokens: number; readonly completionTokens: number; readonly totalTokens: number } | undefined
) => u ? { prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.totalTokens } : null

export const chatCommand = (appLayer: AppLayerFactory) =>
  Command.make(
    "chat",
    { prompt, model, system, maxTokens, temperature, noStream, baseUrl, json },
    (flags) =>
      Effect.gen(function*() {
        const client = yield* LmStudioClient
        const chosen = yield* modelFor(flags.model)
        const messages: Array<ChatMessage> = [
          ...Option.match(flags.system, { onNone: () => [], onSome: (s) => [systemMessage(s)] }),
          userMessage(flags.prompt)
        ]
        const request = {
          model: chosen,
          messages,
          maxTokens: Option.getOrUndefined(flags.maxTokens),
          temperature: Option.getOrUndefined(flags.temperature)
        }
        if (flags.json || flags.noStream) {
          const r = yield* client.chat(request)
          if (flags.json) {
            return yield* printJson({
              content: r.content,
              reasoning: r.reasoning ?? null,
              tool_calls: r.toolCalls,
              model: r.model,
              finish_reason: r.finishReason,
              usage: usageJson(r.usage)
            })
          }
          if (r.reasoning) yield* note(`[reasoning] ${r.reasoning}`)
          return yield* printLine(r.content)
        }
        // Reasoning streams to stderr on its own line; the answer streams to stdout.
        let thinking = false
        yield* Stream.runForEach(client.chatStream(request), (d) => {
          switch (d._tag) {
            case "Reasoning": {
              const prefix = thinking ? "" : "thinking: "
              thinking = true
              return writeErr(prefix + d.text)
            }
            case "Content": {
              const end = thinking ? writeErr("\n") : Effect.void
              thinking = false
              return Effect.zipRight(end, write(d.text))
            }
            case "Finish":
              return Effect.zipRight(
                write("\n"),
                d.reason === "length" ? note("(stopped at --max-tokens)") : Effect.void
              )
            default:
              return Effect.void
          }
        })
      })
  ).pipe(
    Command.withDescription("Chat with a model (streams the answer; --json waits for it)"),
    withApp(appLayer)
  )

const stop = Options.text("stop").pipe(Options.withDescription("Stop sequence (repeatable)"), Options.repeated)

export const completeCommand = (appLayer: AppLayerFactory) =>
  Command.make(
    "complete",
    { prompt, model, maxTokens, temperature, stop, baseUrl, json },
    (flags) =>
      Effect.gen(function*() {
        const client = yield* LmStudioClient
        const chosen = yield* modelFor(flags.model)
        const r = yield* client.complete({
          model: chosen,
          prompt: flags.prompt,
          maxTokens: Option.getOrUndefined(flags.maxTokens),
          temperature: Option.getOrUndefined(flags.temperature),
          stop: flags.stop.length > 0 ? flags.stop : undefined
        })
        if (flags.json) {
          return yield* printJson({
            text: r.text,
            reasoning: r.reasoning ?? null,
            model: r.model,
            finish_reason: r.finishReason,
            usage: usageJson(r.usage)
          })
        }
        if (r.reasoning) yield* note(`[reasoning] ${r.reasoning}`)
        yield* printLine(r.text)
      })
  ).pipe(
    Command.withDescription("Raw text completion (no chat template)"),
    withApp(appLayer)
  )

const texts = Args.text({ name: "text" }).pipe(Args.withDescription("Text(s) to embed"), Args.atLeast(1))

export const embedCommand = (appLayer: AppLayerFactory) =>
  Command.make("embed", { texts, model, baseUrl, json }, (flags) =>
    Effect.gen(function*() {
      const client = yield* LmStudioClient
      const chosen = Option.getOrUndefined(flags.model) ?? (yield* defaultEmbeddingModel)
      const r = yield* client.embed({ model: chosen, input: flags.texts })
      if (flags.json) return yield* printJson({ model: r.model, dimensions: r.dimensions, vectors: r.vectors })
      yield* printLine(`${r.vectors.length} vector(s) of ${r.dimensions} dimensions from ${r.model}`)
      for (const [i, v] of r.vectors.entries()) {
        yield* printLine(`[${i}] ${v.slice(0, 6).map((x) => x.toFixed(4)).join(", ")}${v.length > 6 ? ", …" : ""}`)
      }
    })).pipe(
      Command.withDescription("Embed text with an embedding model"),
      withApp(appLayer)
    )

/** Without --model: a loaded embedding model, else the first downloaded one (LM Studio loads it just in time). */
const defaultEmbeddingModel = Effect.flatMap(ModelCatalog, (catalog) =>
  Effect.map(catalog.snapshot, ({ models }) => {
    const embedding = models.filter((m) => m.type === "embedding")
    return (embedding.find((m) => m.loaded.length > 0) ?? embedding[0])?.key
  }))

const input = Args.text({ name: "input" }).pipe(Args.withDescription("What to send"))
const previous = Options.text("previous-response-id").pipe(
  Options.withDescription("Continue the conversation of this response (resp_…)"),
  Options.optional
)
const effort = Options.choice("reasoning-effort", ["low", "medium", "high"]).pipe(
  Options.withDescription("Reasoning effort for reasoning models"),
  Options.optional
)

export const respondCommand = (appLayer: AppLayerFactory) =>
  Command.make(
    "respond",
    { input, model, previous, effort, noStream, baseUrl, json },
    (flags) =>
      Effect.gen(function*() {
        const client = yield* LmStudioClient
        const chosen = yield* modelFor(flags.model)
        const request = {
          model: chosen,
          input: flags.input,
          previousResponseId: Option.getOrUndefined(flags.previous),
          reasoningEffort: Option.getOrUndefined(flags.effort)
        }
        if (flags.json || flags.noStream) {
          const r = yield* client.respond(request)
          if (flags.json) {
            return yield* printJson({
              response_id: r.id,
              output_text: r.outputText,
              reasoning: r.reasoning ?? null,
              function_calls: r.functionCalls,
              model: r.model,
              usage: usageJson(r.usage)
            })
          }
          yield* printLine(r.outputText)
          return yield* note(`response id: ${r.id} (continue with --previous-response-id ${r.id})`)
        }
        yield* Stream.runForEach(client.respondStream(request), (d) => {
          switch (d._tag) {
            case "Text":
              return write(d.text)
            case "Reasoning":
              return note(d.text)
            case "Completed":
              return Effect.zipRight(
                write("\n"),
                note(`response id: ${d.response.id} (continue with --previous-response-id ${d.response.id})`)
              )
          }
        })
      })
  ).pipe(
    Command.withDescription("Stateful Responses API call; chain turns with --previous-response-id"),
    withApp(appLayer)
  )
