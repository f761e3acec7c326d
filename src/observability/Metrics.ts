/**
 * The bridge's metrics (docs/observability.md): Effect `Metric`s named, measured (seconds) and bucketed as the
 * OpenTelemetry semantic conventions for MCP and GenAI say (`mcp.*`, `gen_ai.*`; string literals, as the JS constants
 * are moving), plus the bridge's own under `lmstudio_bridge.*`.
 *
 * Recording is free when metrics are off: every site inside an effect goes through `record` or `timed`, which read one
 * context entry and do nothing unless a `Recorder` was installed (by `Telemetry.layer`, only when `METRICS_PORT` or
 * `serve --http` asks for them); the MCP server, which runs each request itself, looks the recorder up once.
 * The recorder keeps every label value bounded: a label sees at most `LABEL_VALUES_MAX` distinct values, later ones
 * are counted under `_OTHER` (the conventions' fallback), so no prompt, id, path or stray model name can grow a series.
 */
import {
  Cause,
  Clock,
  Context,
  Effect,
  Exit,
  Metric,
  MetricBoundaries,
  type MetricHook,
  MetricKey,
  MetricLabel,
  Option
} from "effect"

type Kind = "histogram" | "counter" | "gauge"

/** One metric as documented: name, kind, unit (UCUM), labels and, for histograms, the bucket boundaries. */
export interface MetricSpec {
  readonly name: string
  readonly kind: Kind
  readonly unit: string
  readonly description: string
  readonly labels: ReadonlyArray<string>
  readonly buckets?: ReadonlyArray<number>
}

// Bucket boundaries from the conventions (gen-ai-metrics.md, mcp.md), and the bridge's own where none is given.
const GENAI_SECONDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
const MCP_SECONDS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300]
const TOKENS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
const AGENT_SECONDS = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 102.4, 204.8, 409.6]
const LOAD_SECONDS = [0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600]
const WAIT_SECONDS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
const PER_RUN = [1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 32, 64]

const spec = <const N extends string, const L extends ReadonlyArray<string>>(
  name: N,
  kind: Kind,
  unit: string,
  description: string,
  labels: L,
  buckets?: ReadonlyArray<number>
) => ({ name, kind, unit, description, labels, ...(buckets !== undefined ? { buckets } : {}) }) satisfies MetricSpec

const GENAI_LABELS = [
  "gen_ai.operation.name",
  "gen_ai.provider.name",
  "gen_ai.request.model",
  "server.address"
] as const

/** Every metric the bridge records, in the order docs/observability.md lists them. */
export const CATALOG = {
  mcpServer: spec(
    "mcp.server.operation.duration",
    "histogram",
    "s",
    "MCP request duration as seen by the bridge's MCP server, from the request to its result.",
    ["mcp.method.name", "gen_ai.tool.name", "error.type", "network.transport"],
    MCP_SECONDS
  ),
  mcpClient: spec(
    "mcp.client.operation.duration",
    "histogram",
    "s",
    "Duration of a request the bridge sent to a child MCP server (mcp.json), until its answer.",
    ["mcp.method.name", "gen_ai.tool.name", "error.type", "lmstudio_bridge.mcp.server"],
    MCP_SECONDS
  ),
  genAiDuration: spec(
    "gen_ai.client.operation.duration",
    "histogram",
    "s",
    "Duration of one request to LM Studio (chat, text_completion, embeddings, responses), retries included.",
    [...GENAI_LABELS, "error.type"],
    GENAI_SECONDS
  ),
  genAiTokens: spec(
    "gen_ai.client.token.usage",
    "histogram",
    "{token}",
    "Input and output tokens of one request, as LM Studio reported them.",
    [...GENAI_LABELS, "gen_ai.token.type"],
    TOKENS
  ),
  genAiFirstChunk: spec(
    "gen_ai.client.operation.time_to_first_chunk",
    "histogram",
    "s",
    "Time from sending a streamed request to LM Studio until its first chunk.",
    GENAI_LABELS,
    GENAI_SECONDS
  ),
  agentDuration: spec(
    "gen_ai.invoke_agent.duration",
    "histogram",
    "s",
    "Duration of one autonomous agent run, by how it ended.",
    ["gen_ai.agent.name", "lmstudio_bridge.agent.stop_reason", "error.type"],
    AGENT_SECONDS
  ),
  agentRounds: spec(
    "lmstudio_bridge.agent.rounds",
    "histogram",
    "{round}",
    "Model rounds per agent run.",
    ["lmstudio_bridge.agent.stop_reason"],
    PER_RUN
  ),
  agentToolCalls: spec(
    "lmstudio_bridge.agent.tool_calls",
    "histogram",
    "{call}",
    "Tool calls per agent run.",
    ["lmstudio_bridge.agent.stop_reason"],
    PER_RUN
  ),
  executeTool: spec(
    "gen_ai.execute_tool.duration",
    "histogram",
    "s",
    "Duration of one tool call the local model made during an agent run, by server, tool and outcome.",
    ["gen_ai.tool.name", "lmstudio_bridge.mcp.server", "lmstudio_bridge.tool.outcome", "error.type"],
    GENAI_SECONDS
  ),
  loadAttempts: spec(
    "lmstudio_bridge.model.load.attempts",
    "counter",
    "{attempt}",
    "Model load attempts (each retry is one), by backend (cli, rest, jit) and outcome (success or the error).",
    ["lmstudio_bridge.load.backend", "lmstudio_bridge.load.outcome"]
  ),
  loadDuration: spec(
    "lmstudio_bridge.model.load.duration",
    "histogram",
    "s",
    "Duration of one model load attempt, by backend and outcome.",
    ["lmstudio_bridge.load.backend", "lmstudio_bridge.load.outcome"],
    LOAD_SECONDS
  ),
  verifyFailures: spec(
    "lmstudio_bridge.model.verification.failures",
    "counter",
    "{failure}",
    "Loads or ensures whose verification against LM Studio failed, by reason.",
    ["lmstudio_bridge.verification.reason"]
  ),
  modelsLoaded: spec(
    "lmstudio_bridge.models.loaded",
    "gauge",
    "{instance}",
    "Model instances LM Studio reported loaded the last time the bridge asked.",
    []
  ),
  retries: spec(
    "lmstudio_bridge.retries",
    "counter",
    "{retry}",
    "Retries of a failed request, by dependency and cause (the error that was retried).",
    ["lmstudio_bridge.dependency", "lmstudio_bridge.retry.cause"]
  ),
  breakerState: spec(
    "lmstudio_bridge.breaker.state",
    "gauge",
    "1",
    "Circuit breaker state per dependency: 0 closed, 1 half-open, 2 open.",
    ["lmstudio_bridge.dependency"]
  ),
  breakerTransitions: spec(
    "lmstudio_bridge.breaker.transitions",
    "counter",
    "{transition}",
    "Circuit breaker state changes per dependency, by the state entered.",
    ["lmstudio_bridge.dependency", "lmstudio_bridge.breaker.to"]
  ),
  queueDepth: spec(
    "lmstudio_bridge.admission.queue.depth",
    "gauge",
    "{request}",
    "LLM requests waiting for a permit (LM Studio's parallel slots), across models.",
    []
  ),
  queueWait: spec(
    "lmstudio_bridge.admission.wait.duration",
    "histogram",
    "s",
    "Time an LLM request waited for a permit, by outcome (admitted, refused, cancelled).",
    ["lmstudio_bridge.admission.outcome"],
    WAIT_SECONDS
  ),
  childEvents: spec(
    "lmstudio_bridge.child.events",
    "counter",
    "{event}",
    "Child MCP server lifecycle: start, start_failed, restart (after a crash), crash, hang (stopped after a timeout).",
    ["lmstudio_bridge.mcp.server", "lmstudio_bridge.child.event"]
  ),
  contextCompactions: spec(
    "lmstudio_bridge.context.compactions",
    "counter",
    "{compaction}",
    "Agent rounds whose prompt was shortened to fit the model's context, by what was done (shorten: results collapsed or cut; drop: old rounds left out).",
    ["lmstudio_bridge.context.action"]
  ),
  contextOverflows: spec(
    "lmstudio_bridge.context.overflows",
    "counter",
    "{overflow}",
    "Requests that did not fit the model's context, by who found it (bridge before sending, lmstudio after).",
    ["lmstudio_bridge.context.detected_by"]
  )
} as const

export type MetricId = keyof typeof CATALOG

/**
 * The label values of an update, in the catalog's order of the metric's labels (`CATALOG[id].labels`); an absent
 * (undefined) label is left out of the series. Positional rather than an object keyed by label name: the recorder
 * then reads each value from a small array instead of looking a name up in objects of twenty shapes (a megamorphic
 * keyed load per label, most of what an update cost; docs/benchmarks.md, issue 15).
 */
export type Values<I extends MetricId> = ValuesOf<(typeof CATALOG)[I]["labels"]>
type ValuesOf<L extends ReadonlyArray<string>> = { readonly [K in keyof L]: string | undefined }

/** At most this many distinct values per label; more are recorded as `_OTHER`. */
export const LABEL_VALUES_MAX = 64
export const OTHER = "_OTHER"
/** At most this many trie nodes (label values as given, before bounding) per metric; other sets are bounded each time. */
const RAW_NODES_MAX = 4096

/** What one series is updated through: Effect's hook for the metric key with the series' labels. */
type Hook = MetricHook.MetricHook<number, unknown>

/** Separates the values of a series key; marks an absent label (neither occurs in a value a caller gives). */
const SEP = "\u0001"
const ABSENT = "\u0000"

const node = (): Node => ({ next: new Map(), hook: undefined })

/** The metric's key (untagged), as `Metric.histogram` / `counter` / `gauge` would make it. */
const keyOf = (s: MetricSpec): MetricKey.MetricKey.Untyped => {
  switch (s.kind) {
    case "histogram":
      return MetricKey.histogram(s.name, MetricBoundaries.fromIterable(s.buckets ?? []), s.description)
    case "counter":
      return MetricKey.counter(s.name, { description: s.description, incremental: true })
    case "gauge":
      return MetricKey.gauge(s.name, { description: s.description })
  }
}

/** A node of a metric's series trie: the next nodes by the next label's value, and the series ending here. */
interface Node {
  readonly next: Map<string, Node>
  hook: Hook | undefined
}

/** One metric while metrics are on: its key, its label names, and its series. */
interface Series {
  readonly key: MetricKey.MetricKey.Untyped
  readonly names: ReadonlyArray<string>
  /** The label sets as given, one level per label in catalog order: a known series is found without allocating. */
  readonly root: Node
  nodes: number
  /** Each series by its bounded values: label sets that bound alike share one hook. */
  readonly byBounded: Map<string, Hook>
}

/**
 * Installed while metrics are on: the metrics themselves and the label bound. Updates are synchronous. A known
 * series costs one map lookup per label (the values as given, in catalog order), no allocation, and its hook in
 * Effect's metric registry is called directly (found once per series, so its key is never hashed on an update).
 */
export class Recorder {
  private readonly all = new Map<MetricId, Series>()
  private readonly seen = new Map<string, Set<string>>()

  /** `clock`: the runtime's, read once when the recorder is installed (not looked up on each timing). */
  constructor(private readonly clock: Clock.Clock = Clock.make()) {}

  /** Now, for `secondsSince`. */
  now(): bigint {
    return this.clock.unsafeCurrentTimeNanos()
  }

  /** Seconds from `t0` (a `now()`) until now. */
  secondsSince(t0: bigint): number {
    return Number(this.clock.unsafeCurrentTimeNanos() - t0) / 1e9
  }

  private series(id: MetricId): Series {
    let s = this.all.get(id)
    if (s === undefined) {
      const spec: MetricSpec = CATALOG[id]
      s = { key: keyOf(spec), names: spec.labels, root: node(), nodes: 0, byBounded: new Map() }
      this.all.set(id, s)
    }
    return s
  }

  /** The value itself while the label has seen fewer than `LABEL_VALUES_MAX` values (or has seen it), else `_OTHER`. */
  bound(key: string, value: string): string {
    let values = this.seen.get(key)
    if (values === undefined) {
      values = new Set()
      this.seen.set(key, values)
    }
    if (values.has(value)) return value
    if (values.size >= LABEL_VALUES_MAX) return OTHER
    values.add(value)
    return value
  }

  /** The series of a label set: found by its values as given, else by its bounded values (made the first time). */
  private hookOf(s: Series, values: ReadonlyArray<string | undefined>): Hook {
    let at: Node | undefined = s.root
    for (let i = 0; i < values.length && at !== undefined; i++) at = at.next.get(values[i] ?? ABSENT)
    if (at?.hook !== undefined) return at.hook
    let bounded = ""
    const tags: Array<MetricLabel.MetricLabel> = []
    for (let i = 0; i < s.names.length; i++) {
      const value = values[i]
      const b = value === undefined ? ABSENT : this.bound(s.names[i]!, value)
      bounded += b + SEP
      if (value !== undefined) tags.push(MetricLabel.make(s.names[i]!, b))
    }
    let hook = s.byBounded.get(bounded)
    if (hook === undefined) {
      hook = Metric.globalMetricRegistry.get(MetricKey.taggedWithLabels(s.key, tags)) as Hook
      s.byBounded.set(bounded, hook)
    }
    this.remember(s, values, hook)
    return hook
  }

  /** Adds a label set as given to the trie while it has fewer than `RAW_NODES_MAX` nodes (else: bounded each time). */
  private remember(s: Series, values: ReadonlyArray<string | undefined>, hook: Hook) {
    let at = s.root
    for (let i = 0; i < values.length; i++) {
      const value = values[i] ?? ABSENT
      let child = at.next.get(value)
      if (child === undefined) {
        if (s.nodes >= RAW_NODES_MAX) return
        child = node()
        s.nodes++
        at.next.set(value, child)
      }
      at = child
    }
    at.hook = hook
  }

  /** Observes a histogram, adds to a counter, or sets a gauge; `values` in the order of the metric's catalog labels. */
  update<I extends MetricId>(id: I, value: number, values: Values<I>): void {
    this.hookOf(this.series(id), values as ReadonlyArray<string | undefined>).update(value)
  }
}

/**
 * The recorder of the runtime (a context entry with a default, so no effect needs it): undefined while metrics are
 * off. A context entry rather than a FiberRef: every fiber the bridge forks copies and joins its FiberRefs, and
 * one more of them cost each call more than its recording (docs/benchmarks.md, issue 15).
 */
export class CurrentRecorder extends Context.Reference<CurrentRecorder>()("lmstudio-bridge/Metrics/CurrentRecorder", {
  defaultValue: (): Recorder | undefined => undefined
}) {}

const withRecorder = <A, E, R>(f: (r: Recorder | undefined) => Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.contextWithEffect((ctx: Context.Context<never>) => f(Context.get(ctx, CurrentRecorder)))

/** Runs `f` with the recorder when metrics are on; nothing otherwise. */
export const record = (f: (r: Recorder) => void): Effect.Effect<void> =>
  withRecorder((r) => (r === undefined ? Effect.void : Effect.sync(() => f(r))))

/** Are metrics on for this fiber? (To skip measuring work when nobody records it.) */
export const metricsOn: Effect.Effect<boolean> = withRecorder((r) => Effect.succeed(r !== undefined))

/**
 * Measures `self` when metrics are on: `f` gets the recorder, the seconds it took and how it ended. When off, `self`
 * runs unchanged (no clock reads).
 */
export const timed = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  f: (r: Recorder, seconds: number, exit: Exit.Exit<A, E>) => void
): Effect.Effect<A, E, R> =>
  withRecorder((r) => {
    if (r === undefined) return self
    const t0 = r.now()
    return Effect.onExit(self, (exit) => Effect.sync(() => f(r, r.secondsSince(t0), exit)))
  })

/** `error.type` of a typed failure: its `_tag` (a bounded set: the error classes of docs/observability.md). */
export const errorType = (e: unknown): string =>
  typeof e === "object" && e !== null && "_tag" in e && typeof e._tag === "string" ? e._tag : OTHER

/** `error.type` of an exit: none for a success, the failure's tag, `cancelled` for an interruption, else `_OTHER`. */
export const errorTypeOfExit = <A, E>(exit: Exit.Exit<A, E>): string | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) return errorType(failure.value)
  return Cause.isInterruptedOnly(exit.cause) ? "cancelled" : OTHER
}
