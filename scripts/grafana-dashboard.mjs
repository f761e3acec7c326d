// Writes docs/grafana/lmstudio-bridge.json: the Grafana dashboard of the bridge's metrics (docs/observability.md),
// importable as is (Dashboards → New → Import; it asks for a Prometheus data source). `npm run docs:grafana`.
// test/e2e/metrics.test.ts runs every panel's query against a real Prometheus that scraped the bridge.
import { mkdirSync, writeFileSync } from "node:fs"

const DS = { type: "prometheus", uid: "${DS_PROMETHEUS}" }
const RATE = "$__rate_interval"

let id = 0
let y = 0
const panels = []

const row = (title) => {
  panels.push({ type: "row", title, id: ++id, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] })
  y += 1
}

/** A row of panels, each `[title, unit, [[expr, legend], …], kind?]`, sharing the width. */
const line = (...specs) => {
  const w = Math.floor(24 / specs.length)
  specs.forEach(([title, unit, targets, kind = "timeseries"], i) => {
    panels.push({
      type: kind,
      title,
      id: ++id,
      datasource: DS,
      gridPos: { h: 8, w, x: i * w, y },
      fieldConfig: {
        defaults: {
          unit,
          ...(kind === "stat"
            ? {
              mappings: title.startsWith("Breaker")
                ? [{ type: "value", options: { 0: { text: "closed" }, 1: { text: "half-open" }, 2: { text: "open" } } }]
                : []
            }
            : { custom: { drawStyle: "line", lineWidth: 1, fillOpacity: 10, showPoints: "never" } })
        },
        overrides: []
      },
      options: kind === "stat"
        ? { reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false }, colorMode: "value", textMode: "auto" }
        : { legend: { displayMode: "list", placement: "bottom", showLegend: true }, tooltip: { mode: "multi" } },
      targets: targets.map(([expr, legendFormat], k) => ({
        datasource: DS,
        expr,
        legendFormat,
        refId: String.fromCharCode(65 + k)
      }))
    })
  })
  y += 8
}

const p = (q, by, metric, extra = "") =>
  `histogram_quantile(${q}, sum by (le${by ? `, ${by}` : ""}) (rate(${metric}_bucket${extra}[${RATE}])))`

row("Tool calls (MCP server)")
line(
  ["Tool calls per second", "reqps", [[
    `sum by (gen_ai_tool_name) (rate(mcp_server_operation_duration_seconds_count[${RATE}]))`,
    "{{gen_ai_tool_name}}"
  ]]],
  ["Tool errors per second", "reqps", [[
    `sum by (gen_ai_tool_name, error_type) (rate(mcp_server_operation_duration_seconds_count{error_type!=""}[${RATE}]))`,
    "{{gen_ai_tool_name}} {{error_type}}"
  ]]],
  ["Tool call latency p95", "s", [[
    p(0.95, "gen_ai_tool_name", "mcp_server_operation_duration_seconds"),
    "{{gen_ai_tool_name}}"
  ]]]
)
row("Local models (LM Studio)")
line(
  ["LLM request latency p50 / p95", "s", [
    [p(0.5, "gen_ai_request_model", "gen_ai_client_operation_duration_seconds"), "p50 {{gen_ai_request_model}}"],
    [p(0.95, "gen_ai_request_model", "gen_ai_client_operation_duration_seconds"), "p95 {{gen_ai_request_model}}"]
  ]],
  ["Tokens per second", "short", [[
    `sum by (gen_ai_token_type, gen_ai_request_model) (rate(gen_ai_client_token_usage_sum[${RATE}]))`,
    "{{gen_ai_token_type}} {{gen_ai_request_model}}"
  ]]],
  ["Time to first chunk p95 (streams)", "s", [[
    p(0.95, "gen_ai_request_model", "gen_ai_client_operation_time_to_first_chunk_seconds"),
    "{{gen_ai_request_model}}"
  ]]],
  ["LLM errors per second", "reqps", [[
    `sum by (error_type) (rate(gen_ai_client_operation_duration_seconds_count{error_type!=""}[${RATE}]))`,
    "{{error_type}}"
  ]]]
)
row("Model loads")
line(
  ["Load attempts per minute", "short", [[
    `sum by (lmstudio_bridge_load_backend, lmstudio_bridge_load_outcome) (increase(lmstudio_bridge_model_load_attempts_total[5m]))`,
    "{{lmstudio_bridge_load_backend}} {{lmstudio_bridge_load_outcome}}"
  ]]],
  ["Load duration p95", "s", [[
    p(0.95, "lmstudio_bridge_load_backend", "lmstudio_bridge_model_load_duration_seconds"),
    "{{lmstudio_bridge_load_backend}}"
  ]]],
  ["Verification failures", "short", [[
    `sum by (lmstudio_bridge_verification_reason) (increase(lmstudio_bridge_model_verification_failures_total[1h]))`,
    "{{lmstudio_bridge_verification_reason}}"
  ]]],
  ["Loaded instances", "short", [["max(lmstudio_bridge_models_loaded)", "loaded"]], "stat"]
)
row("Resilience: breakers, retries, queue")
line(
  ["Breaker state (0 closed, 1 half-open, 2 open)", "short", [[
    "max by (lmstudio_bridge_dependency) (lmstudio_bridge_breaker_state)",
    "{{lmstudio_bridge_dependency}}"
  ]], "stat"],
  ["Breaker transitions", "short", [[
    `sum by (lmstudio_bridge_dependency, lmstudio_bridge_breaker_to) (increase(lmstudio_bridge_breaker_transitions_total[1h]))`,
    "{{lmstudio_bridge_dependency}} → {{lmstudio_bridge_breaker_to}}"
  ]]],
  ["Retries per second", "reqps", [[
    `sum by (lmstudio_bridge_retry_cause) (rate(lmstudio_bridge_retries_total[${RATE}]))`,
    "{{lmstudio_bridge_retry_cause}}"
  ]]]
)
line(
  ["Queue depth (waiting for a parallel slot)", "short", [["max(lmstudio_bridge_admission_queue_depth)", "waiting"]]],
  ["Queue wait p95", "s", [[
    p(0.95, "lmstudio_bridge_admission_outcome", "lmstudio_bridge_admission_wait_duration_seconds"),
    "{{lmstudio_bridge_admission_outcome}}"
  ]]]
)
row("Agent runs")
line(
  ["Runs per minute by stop reason", "short", [[
    `sum by (lmstudio_bridge_agent_stop_reason) (increase(gen_ai_invoke_agent_duration_seconds_count[5m]))`,
    "{{lmstudio_bridge_agent_stop_reason}}"
  ]]],
  ["Run duration p50 / p95", "s", [
    [p(0.5, "", "gen_ai_invoke_agent_duration_seconds"), "p50"],
    [p(0.95, "", "gen_ai_invoke_agent_duration_seconds"), "p95"]
  ]],
  ["Rounds and tool calls per run p50", "short", [
    [p(0.5, "", "lmstudio_bridge_agent_rounds"), "rounds"],
    [p(0.5, "", "lmstudio_bridge_agent_tool_calls"), "tool calls"]
  ]]
)
line(
  ["Agent tool calls per second", "reqps", [[
    `sum by (lmstudio_bridge_mcp_server, gen_ai_tool_name, lmstudio_bridge_tool_outcome) (rate(gen_ai_execute_tool_duration_seconds_count[${RATE}]))`,
    "{{lmstudio_bridge_mcp_server}}/{{gen_ai_tool_name}} {{lmstudio_bridge_tool_outcome}}"
  ]]],
  ["Child server call latency p95", "s", [[
    p(0.95, "lmstudio_bridge_mcp_server", "mcp_client_operation_duration_seconds"),
    "{{lmstudio_bridge_mcp_server}}"
  ]]],
  ["Child server events", "short", [[
    `sum by (lmstudio_bridge_mcp_server, lmstudio_bridge_child_event) (increase(lmstudio_bridge_child_events_total[1h]))`,
    "{{lmstudio_bridge_mcp_server}} {{lmstudio_bridge_child_event}}"
  ]]]
)
line(
  ["Context: prompts shortened", "short", [[
    `sum by (lmstudio_bridge_context_action) (increase(lmstudio_bridge_context_compactions_total[1h]))`,
    "{{lmstudio_bridge_context_action}}"
  ]]],
  ["Context: overflows", "short", [[
    `sum by (lmstudio_bridge_context_detected_by) (increase(lmstudio_bridge_context_overflows_total[1h]))`,
    "found by {{lmstudio_bridge_context_detected_by}}"
  ]]]
)

const dashboard = {
  __inputs: [{
    name: "DS_PROMETHEUS",
    label: "Prometheus",
    description: "The Prometheus that scrapes lmstudio-bridge (METRICS_PORT)",
    type: "datasource",
    pluginId: "prometheus",
    pluginName: "Prometheus"
  }],
  __requires: [
    { type: "grafana", id: "grafana", name: "Grafana", version: "10.0.0" },
    { type: "datasource", id: "prometheus", name: "Prometheus", version: "1.0.0" },
    { type: "panel", id: "timeseries", name: "Time series", version: "" },
    { type: "panel", id: "stat", name: "Stat", version: "" }
  ],
  title: "lmstudio-bridge",
  uid: "lmstudio-bridge",
  description: "Tool calls, local-model latency and tokens, loads, breakers, queue and agent runs of lmstudio-bridge " +
    "(OpenTelemetry MCP and GenAI conventions). See docs/observability.md.",
  tags: ["lmstudio-bridge", "mcp", "genai", "llm"],
  editable: true,
  graphTooltip: 1,
  refresh: "30s",
  schemaVersion: 39,
  version: 1,
  time: { from: "now-6h", to: "now" },
  timepicker: {},
  templating: { list: [] },
  annotations: { list: [] },
  panels
}

mkdirSync("docs/grafana", { recursive: true })
writeFileSync("docs/grafana/lmstudio-bridge.json", JSON.stringify(dashboard, null, 2) + "\n")
process.stdout.write(`docs/grafana/lmstudio-bridge.json: ${panels.filter((x) => x.type !== "row").length} panels\n`)
