/**
 * LM Studio's response bodies as the client decodes them: lenient schemas (unknown keys ignored, optional almost
 * everywhere, both reasoning keys, arguments as string or object) written from the protocol reference. Kept apart
 * from the client so the service file stays about behaviour.
 */
import { Schema } from "effect"

const Opt = <A, I, R>(s: Schema.Schema<A, I, R>) => Schema.optional(Schema.NullOr(s))

/** `{"error": "..."}` (unknown route) or `{"error": {message, type, param, code}}` (OpenAI / v1). */
export const ErrorBody = Schema.Struct({
  error: Schema.Union(
    Schema.String,
    Schema.Struct({
      message: Opt(Schema.String),
      type: Opt(Schema.String),
      code: Opt(Schema.Union(Schema.String, Schema.Number)),
      param: Opt(Schema.String)
    })
  )
})
export type ErrorBody = typeof ErrorBody.Type

export const UsageWire = Schema.Struct({
  prompt_tokens: Opt(Schema.Number),
  completion_tokens: Opt(Schema.Number),
  total_tokens: Opt(Schema.Number),
  completion_tokens_details: Opt(Schema.Struct({ reasoning_tokens: Opt(Schema.Number) }))
})
export type UsageWire = typeof UsageWire.Type

/** Arguments are a JSON string on LM Studio; some servers send an object. */
const ArgumentsWire = Schema.Union(Schema.String, Schema.Unknown)

export const ToolCallWire = Schema.Struct({
  index: Opt(Schema.Number),
  id: Opt(Schema.Union(Schema.String, Schema.Number)),
  type: Opt(Schema.String),
  function: Opt(Schema.Struct({ name: Opt(Schema.String), arguments: Opt(ArgumentsWire) }))
})
export type ToolCallWire = typeof ToolCallWire.Type

export const ChatCompletionWire = Schema.Struct({
  id: Opt(Schema.String),
  model: Opt(Schema.String),
  choices: Schema.Array(
    Schema.Struct({
      message: Schema.Struct({
        content: Opt(Schema.String),
        reasoning_content: Opt(Schema.String),
        reasoning: Opt(Schema.String),
        tool_calls: Opt(Schema.Array(ToolCallWire))
      }),
      finish_reason: Opt(Schema.String)
    })
  ),
  usage: Opt(UsageWire)
})

export type ChatCompletionWire = typeof ChatCompletionWire.Type

export const ChatChunkWire = Schema.Struct({
  model: Opt(Schema.String),
  choices: Opt(
    Schema.Array(
      Schema.Struct({
        delta: Opt(
          Schema.Struct({
            content: Opt(Schema.String),
            reasoning_content: Opt(Schema.String),
            reasoning: Opt(Schema.String),
            tool_calls: Opt(Schema.Array(ToolCallWire))
          })
        ),
        text: Opt(Schema.String),
        finish_reason: Opt(Schema.String)
      })
    )
  ),
  usage: Opt(UsageWire)
})
export type ChatChunkWire = typeof ChatChunkWire.Type

export const CompletionWire = Schema.Struct({
  id: Opt(Schema.String),
  model: Opt(Schema.String),
  choices: Schema.Array(Schema.Struct({ text: Opt(Schema.String), finish_reason: Opt(Schema.String) })),
  usage: Opt(UsageWire)
})

export const EmbeddingsWire = Schema.Struct({
  model: Opt(Schema.String),
  data: Schema.Array(Schema.Struct({ embedding: Schema.Array(Schema.Number), index: Opt(Schema.Number) })),
  usage: Opt(Schema.Struct({ prompt_tokens: Opt(Schema.Number), total_tokens: Opt(Schema.Number) }))
})

export const OpenAiModelsWire = Schema.Struct({
  data: Schema.Array(Schema.Struct({ id: Schema.String }))
})

export const V0ModelWire = Schema.Struct({
  id: Schema.String,
  type: Opt(Schema.String),
  publisher: Opt(Schema.String),
  arch: Opt(Schema.String),
  quantization: Opt(Schema.String),
  state: Opt(Schema.String),
  max_context_length: Opt(Schema.Number),
  loaded_context_length: Opt(Schema.Number),
  capabilities: Opt(Schema.Array(Schema.String))
})
export type V0ModelWire = typeof V0ModelWire.Type
export const V0ModelsWire = Schema.Struct({ data: Schema.Array(V0ModelWire) })

export const V1ModelWire = Schema.Struct({
  key: Schema.String,
  type: Opt(Schema.String),
  publisher: Opt(Schema.String),
  display_name: Opt(Schema.String),
  architecture: Opt(Schema.String),
  quantization: Opt(Schema.Struct({ name: Opt(Schema.String) })),
  size_bytes: Opt(Schema.Number),
  max_context_length: Opt(Schema.Number),
  format: Opt(Schema.String),
  loaded_instances: Opt(
    Schema.Array(
      Schema.Struct({
        id: Schema.String,
        config: Opt(Schema.Struct({ context_length: Opt(Schema.Number), parallel: Opt(Schema.Number) }))
      })
    )
  ),
  capabilities: Opt(
    Schema.Struct({
      vision: Opt(Schema.Boolean),
      trained_for_tool_use: Opt(Schema.Boolean),
      reasoning: Opt(Schema.Unknown)
    })
  )
})
export type V1ModelWire = typeof V1ModelWire.Type
export const V1ModelsWire = Schema.Struct({ models: Schema.Array(V1ModelWire) })

export const V1LoadWire = Schema.Struct({
  type: Opt(Schema.String),
  instance_id: Schema.String,
  load_time_seconds: Opt(Schema.Number),
  status: Opt(Schema.String)
})

export const V1UnloadWire = Schema.Struct({ instance_id: Schema.String })

export const GreetingWire = Schema.Struct({ lmstudio: Schema.Boolean })

// ---------------------------------------------------------------------------------------------------------------
// Responses API
// ---------------------------------------------------------------------------------------------------------------

const ContentPart = Schema.Struct({ type: Opt(Schema.String), text: Opt(Schema.String) })

export const ResponseItemWire = Schema.Struct({
  type: Schema.String,
  id: Opt(Schema.String),
  role: Opt(Schema.String),
  content: Opt(Schema.Union(Schema.String, Schema.Array(ContentPart))),
  summary: Opt(Schema.Array(ContentPart)),
  call_id: Opt(Schema.Union(Schema.String, Schema.Number)),
  name: Opt(Schema.String),
  arguments: Opt(ArgumentsWire)
})
export type ResponseItemWire = typeof ResponseItemWire.Type

export const ResponseWire = Schema.Struct({
  id: Schema.String,
  status: Opt(Schema.String),
  model: Opt(Schema.String),
  output: Schema.Array(ResponseItemWire),
  output_text: Opt(Schema.String),
  usage: Opt(
    Schema.Struct({
      input_tokens: Opt(Schema.Number),
      output_tokens: Opt(Schema.Number),
      total_tokens: Opt(Schema.Number),
      output_tokens_details: Opt(Schema.Struct({ reasoning_tokens: Opt(Schema.Number) }))
    })
  )
})
export type ResponseWire = typeof ResponseWire.Type

export const ResponseEventWire = Schema.Struct({
  type: Schema.String,
  delta: Opt(Schema.String),
  response: Opt(ResponseWire),
  error: Opt(Schema.Unknown)
})

// ---------------------------------------------------------------------------------------------------------------
// Request bodies: what the client sends. A field left `undefined` is not sent (JSON has no undefined).
// ---------------------------------------------------------------------------------------------------------------

const Maybe = <A, I, R>(s: Schema.Schema<A, I, R>) => Schema.optional(s)

const ToolChoiceWire = Schema.Literal("auto", "none", "required")

const ChatMessageWire = Schema.Struct({
  role: Schema.Literal("system", "user", "assistant", "tool"),
  content: Schema.NullOr(Schema.String),
  tool_calls: Maybe(
    Schema.Array(
      Schema.Struct({
        id: Schema.String,
        type: Schema.Literal("function"),
        function: Schema.Struct({ name: Schema.String, arguments: Schema.String })
      })
    )
  ),
  tool_call_id: Maybe(Schema.String),
  name: Maybe(Schema.String)
})

const Parameters = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/** `POST /v1/chat/completions` (protocol §2.2). */
export const ChatRequestWire = Schema.Struct({
  model: Maybe(Schema.String),
  messages: Schema.Array(ChatMessageWire),
  temperature: Maybe(Schema.Number),
  max_tokens: Maybe(Schema.Number),
  stop: Maybe(Schema.Array(Schema.String)),
  response_format: Maybe(Schema.Unknown),
  tools: Maybe(
    Schema.Array(
      Schema.Struct({
        type: Schema.Literal("function"),
        function: Schema.Struct({ name: Schema.String, description: Maybe(Schema.String), parameters: Parameters })
      })
    )
  ),
  tool_choice: Maybe(ToolChoiceWire),
  /** JIT idle TTL in seconds (protocol §5). */
  ttl: Maybe(Schema.Number),
  stream: Maybe(Schema.Literal(true)),
  stream_options: Maybe(Schema.Struct({ include_usage: Schema.Boolean }))
})
export type ChatRequestWire = typeof ChatRequestWire.Type

/** `POST /v1/completions`. */
export const CompletionRequestWire = Schema.Struct({
  model: Maybe(Schema.String),
  prompt: Schema.String,
  max_tokens: Maybe(Schema.Number),
  temperature: Maybe(Schema.Number),
  stop: Maybe(Schema.Array(Schema.String)),
  ttl: Maybe(Schema.Number)
})
export type CompletionRequestWire = typeof CompletionRequestWire.Type

/** `POST /v1/embeddings`. */
export const EmbeddingsRequestWire = Schema.Struct({
  model: Maybe(Schema.String),
  input: Schema.Union(Schema.String, Schema.Array(Schema.String)),
  ttl: Maybe(Schema.Number)
})
export type EmbeddingsRequestWire = typeof EmbeddingsRequestWire.Type

/** `POST /v1/responses` (protocol §3). */
export const ResponsesRequestWire = Schema.Struct({
  model: Maybe(Schema.String),
  input: Schema.Union(Schema.String, Schema.Array(Schema.Unknown)),
  previous_response_id: Maybe(Schema.String),
  instructions: Maybe(Schema.String),
  tools: Maybe(
    Schema.Array(
      Schema.Struct({
        type: Schema.Literal("function"),
        name: Schema.String,
        description: Maybe(Schema.String),
        parameters: Parameters
      })
    )
  ),
  tool_choice: Maybe(ToolChoiceWire),
  reasoning: Maybe(Schema.Struct({ effort: Schema.Literal("low", "medium", "high") })),
  max_output_tokens: Maybe(Schema.Number),
  temperature: Maybe(Schema.Number),
  ttl: Maybe(Schema.Number),
  stream: Maybe(Schema.Literal(true))
})
export type ResponsesRequestWire = typeof ResponsesRequestWire.Type

/** `POST /api/v1/models/load` (protocol §4.2; it documents no TTL field, sent only when given). */
export const LoadRequestWire = Schema.Struct({
  model: Schema.String,
  context_length: Maybe(Schema.Number),
  ttl: Maybe(Schema.Number),
  identifier: Maybe(Schema.String)
})
export type LoadRequestWire = typeof LoadRequestWire.Type

/** `POST /api/v1/models/unload`. */
export const UnloadRequestWire = Schema.Struct({ instance_id: Schema.String })
export type UnloadRequestWire = typeof UnloadRequestWire.Type
