/**
 * Metrics end to end (issue 15): the built bridge serving over stdio with METRICS_PORT, a series of calls (a success,
 * a tool error, a call LM Studio answers 500 once and the retry serves, an agent run over a real child server), then
 * a scrape. The exposition passes a real `promtool check metrics` (Debian's `prometheus` package; `.ci/run` installs
 * it) and its counters and histogram counts equal what was done; a real Prometheus started on a temp dir scrapes the
 * bridge and its HTTP API returns the series. With metrics off, no port is opened and no OpenTelemetry module loaded.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn, spawnSync } from "node:child_process"
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"
import { prometheusName } from "../../src/observability/Exporters.js"
import { CATALOG, type MetricSpec } from "../../src/observability/Metrics.js"
import type { Scenario } from "../../src/simulator/Scenario.js"
import { start } from "../../src/simulator/Simulator.js"
import {
  binPath,
  bridgeWithStderr,
  eventually,
  flakyMcpJson,
  freePort,
  j,
  repoRoot,
  runEffect,
  tempDir
} from "../helpers.js"
import { call, textOf } from "../support/children.js"

const scenario: Scenario = {
  rules: [
    {
      match: { userContains: "meta", afterToolResult: false, hasTools: true },
      reply: { toolCalls: [{ name: "flaky__meta", arguments: {} }] }
    }
  ]
}

const metricsUrlOf = (stderr: string): string | undefined => /"url":"(http:\/\/[^"]+\/metrics)"/.exec(stderr)?.[1]

const fetchText = (url: string) =>
  Effect.promise(() => fetch(url).then(async (r) => ({ status: r.status, text: await r.text() })))

/** The value of the one sample `name{labels…}` whose labels include all of `want`; undefined when there is none. */
const sample = (exposition: string, name: string, want: Record<string, string>): number | undefined => {
  let total: number | undefined
  for (const line of exposition.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    const labels = /\{(.*)\}/.exec(line)?.[1] ?? ""
    const has = Object.entries(want).every(([k, v]) => labels.includes(`${k}="${v}"`))
    if (!has) continue
    total = (total ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1))
  }
  return total
}

/** A catalog metric's name in the exposition, without `_total` (Prometheus' queries use the counter's full name). */
const promName = (m: MetricSpec) =>
  prometheusName(m.name, m.unit).replaceAll(".", "_") + (m.kind === "counter" ? "_total" : "")

/** TCP ports the process listens on (Linux: its socket fds matched against /proc/net/tcp*, state 0A = LISTEN). */
const listeningPorts = (pid: number): Array<number> => {
  const inodes = new Set<string>()
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (m) inodes.add(m[1]!)
    } catch {
      // closed meanwhile
    }
  }
  const ports: Array<number> = []
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const row of readFileSync(table, "utf8").split("\n").slice(1)) {
      const f = row.trim().split(/\s+/)
      if (f.length > 9 && f[3] === "0A" && inodes.has(f[9]!)) ports.push(parseInt(f[1]!.split(":")[1]!, 16))
    }
  }
  return ports
}

describe("metrics on the OpenTelemetry conventions, scraped by real Prometheus tools (issue 15)", () => {
  it.scopedLive(
    "a scrape after known calls: promtool accepts it, the counts equal what was done, Prometheus stores the series",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const mcpJson = flakyMcpJson(dir)
        const sim = yield* start({ scenario })
        const { client, stderr } = yield* bridgeWithStderr({
          LMSTUDIO_BASE_URL: sim.baseUrl,
          METRICS_PORT: "0",
          MCP_JSON_PATH: mcpJson
        })
        const url = yield* eventually(Effect.sync(() => metricsUrlOf(stderr())), (u) => u !== undefined, "metrics URL")
        assert.match(url!, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/, "loopback by default")

        // Two successes, a tool error, a chat that LM Studio answers 500 once (retried), an agent run.
        const chat = { messages: [{ role: "user", content: "Say hi." }] }
        for (let i = 0; i < 2; i++) {
          const r = yield* call(client, "chat_completion", chat)
          assert.notStrictEqual(r.isError, true, textOf(r))
        }
        const bad = yield* call(client, "get_model_info", { model: "no-such/model" })
        assert.strictEqual(bad.isError, true)
        yield* sim.state.setFaults({ failNext: { status: 500, path: "/v1/chat/completions", count: 1 } })
        const retried = yield* call(client, "chat_completion", chat)
        assert.notStrictEqual(retried.isError, true, textOf(retried))
        const run = yield* call(client, "autonomous_with_mcp", {
          mcp_name: "flaky",
          task: "Record the meta, then answer."
        })
        assert.notStrictEqual(run.isError, true, textOf(run))
        const report = j(run.structuredContent)
        assert.strictEqual(report.get("stop_reason").str, "completed")
        assert.strictEqual(report.get("tool_calls").arr.length, 1)

        const { status, text } = yield* fetchText(url!)
        assert.strictEqual(status, 200)

        // promtool from Debian's prometheus package: the exposition is valid and lint-clean.
        const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" })
        assert.isUndefined(
          check.error,
          `promtool must be installed (Debian package prometheus): ${check.error?.message}`
        )
        assert.strictEqual(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`)

        // The MCP server histogram: 3 chat_completion calls fine, 1 get_model_info a tool error.
        const served = "mcp_server_operation_duration_seconds_count"
        assert.strictEqual(
          sample(text, served, { mcp_method_name: "tools/call", gen_ai_tool_name: "chat_completion" }),
          3
        )
        assert.strictEqual(
          sample(text, served, { gen_ai_tool_name: "get_model_info", error_type: "tool_error" }),
          1
        )
        assert.notInclude(text, "gen_ai_tool_name=\"chat_completion\",network_transport=\"pipe\",error_type")

        // LLM requests as LM Studio saw them: every chat and responses POST is one operation, but the 500's retry
        // is the same operation again (and the empty POST /v1/responses that detects the API is none).
        const posts = (yield* sim.state.get).recent.filter((r) =>
          r.method === "POST" && (r.path === "/v1/chat/completions" || r.path === "/v1/responses") &&
          JSON.stringify(r.body) !== "{}"
        ).length
        const operations = sample(text, "gen_ai_client_operation_duration_seconds_count", {
          gen_ai_operation_name: "chat",
          gen_ai_provider_name: "lmstudio"
        })
        assert.strictEqual(operations, posts - 1, `${posts} POSTs, one of them a retry`)
        assert.strictEqual(
          sample(text, "gen_ai_client_token_usage_count", {
            gen_ai_operation_name: "chat",
            gen_ai_token_type: "input"
          }),
          operations
        )
        assert.isAbove(
          sample(text, "gen_ai_client_token_usage_sum", {
            gen_ai_operation_name: "chat",
            gen_ai_token_type: "output"
          }) ??
            0,
          0
        )
        assert.strictEqual(
          sample(text, "lmstudio_bridge_retries_total", {
            lmstudio_bridge_dependency: "LM Studio",
            lmstudio_bridge_retry_cause: "LmStudioHttpError 500"
          }),
          1
        )

        // The agent run and its tool call, on both sides of the child server.
        assert.strictEqual(
          sample(text, "gen_ai_invoke_agent_duration_seconds_count", {
            gen_ai_agent_name: "lmstudio-bridge",
            lmstudio_bridge_agent_stop_reason: "completed"
          }),
          1
        )
        assert.strictEqual(
          sample(text, "gen_ai_execute_tool_duration_seconds_count", {
            gen_ai_tool_name: "meta",
            lmstudio_bridge_mcp_server: "flaky",
            lmstudio_bridge_tool_outcome: "ok"
          }),
          1
        )
        assert.strictEqual(
          sample(text, "mcp_client_operation_duration_seconds_count", {
            mcp_method_name: "tools/call",
            gen_ai_tool_name: "meta",
            lmstudio_bridge_mcp_server: "flaky"
          }),
          1
        )
        assert.strictEqual(
          sample(text, "lmstudio_bridge_child_events_total", {
            lmstudio_bridge_mcp_server: "flaky",
            lmstudio_bridge_child_event: "start"
          }),
          1
        )
        assert.strictEqual(
          sample(text, "lmstudio_bridge_agent_rounds_count", { lmstudio_bridge_agent_stop_reason: "completed" }),
          1
        )
        assert.strictEqual(
          sample(text, "lmstudio_bridge_breaker_state", { lmstudio_bridge_dependency: "LM Studio" }),
          0,
          "closed"
        )
        // Only the bridge's own metrics, and no raw prompt in any label.
        assert.notInclude(text, "effect_fiber")
        assert.notInclude(text, "Say hi")

        // A real Prometheus scrapes the bridge once and answers for the series.
        const promPort = yield* freePort
        const target = new URL(url!)
        writeFileSync(
          join(dir, "prometheus.yml"),
          [
            "global:",
            "  scrape_interval: 1s",
            "scrape_configs:",
            "  - job_name: lmstudio-bridge",
            "    static_configs:",
            `      - targets: ["${target.host}"]`
          ].join("\n")
        )
        yield* Effect.acquireRelease(
          Effect.sync(() =>
            spawn("prometheus", [
              `--config.file=${join(dir, "prometheus.yml")}`,
              `--storage.tsdb.path=${join(dir, "tsdb")}`,
              `--web.listen-address=127.0.0.1:${promPort}`
            ], { stdio: "ignore" })
          ),
          (p) => Effect.sync(() => p.kill("SIGKILL"))
        )
        const query = `http://127.0.0.1:${promPort}/api/v1/query?query=${
          encodeURIComponent(`${served}{gen_ai_tool_name="chat_completion"}`)
        }`
        const answer = yield* eventually(
          Effect.promise(() => fetch(query).then((r) => r.json()).catch(() => ({}))),
          (a) => {
            try {
              return j(a).get("data").get("result").arr.length > 0
            } catch {
              return false // Prometheus is not up yet, or has not scraped yet
            }
          },
          "the series in Prometheus"
        )
        const series = j(answer).get("data").get("result").arr[0]!
        assert.strictEqual(series.get("metric").get("job").str, "lmstudio-bridge")
        assert.strictEqual(series.get("value").arr[1]!.str, "3")

        // The Grafana dashboard as shipped: every panel's query is valid PromQL over the bridge's own metric names,
        // and the panels for what this test did show data once Prometheus has two scrapes (rates need two).
        const dashboard = j(JSON.parse(readFileSync(join(repoRoot, "docs", "grafana", "lmstudio-bridge.json"), "utf8")))
        const queries = dashboard.get("panels").arr.flatMap((panel) =>
          panel.get("type").str === "row" ? [] : panel.get("targets").arr.map((t) => ({
            title: panel.get("title").str,
            expr: t.get("expr").str.replaceAll("$__rate_interval", "1m")
          }))
        )
        assert.isAtLeast(queries.length, 20)
        const known = new Set(Object.values(CATALOG).map((m) => promName(m)))
        for (const q of queries) {
          // Metric names only: label lists (`by (…)`) and matchers (`{…}`) left out.
          const names = q.expr.replace(/by \([^)]*\)/g, "").replace(/\{[^}]*\}/g, "")
          for (const name of names.match(/\b(?:mcp|gen_ai|lmstudio_bridge)_[a-z_]+/g) ?? []) {
            assert.isTrue(
              known.has(name.replace(/_(bucket|count|sum)$/, "")),
              `${q.title}: ${name} is no metric of the bridge`
            )
          }
        }
        const instant = (expr: string) =>
          Effect.promise(() =>
            fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(expr)}`).then((r) => r.json())
          ).pipe(Effect.map(j))
        yield* eventually(
          instant(`count_over_time(up{job="lmstudio-bridge"}[1m])`),
          (a) => Number(a.get("data").get("result").arr[0]?.get("value").arr[1]?.str ?? 0) >= 2,
          "two scrapes"
        )
        const withData: Array<string> = []
        for (const q of queries) {
          const a = yield* instant(q.expr)
          assert.strictEqual(a.get("status").str, "success", `${q.title}: ${q.expr}`)
          if (a.get("data").get("result").arr.length > 0) withData.push(q.title)
        }
        assert.includeMembers(withData, [
          "Tool calls per second",
          "Tool errors per second",
          "LLM request latency p50 / p95",
          "Tokens per second",
          "Retries per second",
          "Breaker state (0 closed, 1 half-open, 2 open)",
          "Runs per minute by stop reason",
          "Agent tool calls per second",
          "Child server events"
        ])
      }),
    { timeout: 90_000 }
  )

  it.scopedLive(
    "metrics off: no port is opened and the OpenTelemetry exporters are not loaded (and with metrics on, both happen)",
    () =>
      Effect.gen(function*() {
        const sim = yield* start({})
        // The exporters are bundled (the package has no node_modules of its own): their lazy import, which runs their
        // code, says so on stderr when it happens.
        const loaded = (stderr: string) =>
          stderr.split("\n").filter((l) => l.includes("OpenTelemetry exporters loaded")).length
        const off = yield* bridgeWithStderr({ LMSTUDIO_BASE_URL: sim.baseUrl })
        const r = yield* call(off.client, "chat_completion", { messages: [{ role: "user", content: "hi" }] })
        assert.notStrictEqual(r.isError, true, textOf(r))
        assert.deepStrictEqual(listeningPorts(off.pid), [])
        assert.strictEqual(loaded(off.stderr()), 0, "the exporters were loaded with metrics off")

        // The control: the same checks see the exporter and the port when metrics are on.
        const on = yield* bridgeWithStderr({ LMSTUDIO_BASE_URL: sim.baseUrl, METRICS_PORT: "0" })
        const url = yield* eventually(Effect.sync(() => metricsUrlOf(on.stderr())), (u) => u !== undefined, "URL")
        assert.include(listeningPorts(on.pid), Number(new URL(url!).port))
        assert.strictEqual(loaded(on.stderr()), 1)
      }),
    { timeout: 60_000 }
  )

  it.scopedLive(
    "a taken metrics port or an address not on this machine stops serve with the fix, before any MCP traffic",
    () =>
      Effect.gen(function*() {
        const holder = yield* Effect.acquireRelease(
          Effect.async<ReturnType<typeof createServer>>((resume) => {
            const s = createServer()
            s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
          }),
          (s) => Effect.sync(() => s.close())
        )
        const address = holder.address()
        const taken = typeof address === "object" && address !== null ? address.port : 0
        const env = { LMSTUDIO_BASE_URL: "http://127.0.0.1:9", LOG_LEVEL: "error" }
        const busy = yield* runEffect(process.execPath, [binPath, "serve"], { ...env, METRICS_PORT: String(taken) })
        assert.strictEqual(busy.code, 1)
        assert.strictEqual(busy.stdout, "", "stdout belongs to MCP")
        assert.include(busy.stderr, `MetricsEndpointFailed: The metrics endpoint cannot listen on 127.0.0.1:${taken}`)
        assert.include(busy.stderr, "set METRICS_PORT to a free port")
        const foreign = yield* runEffect(process.execPath, [binPath, "serve"], {
          ...env,
          METRICS_PORT: "0",
          METRICS_HOST: "192.0.2.1"
        })
        assert.strictEqual(foreign.code, 1)
        assert.include(foreign.stderr, "METRICS_HOST")
        // A one-shot command does not open the endpoint, so a serving bridge's port does not stop it.
        const oneShot = yield* runEffect(process.execPath, [binPath, "health"], { ...env, METRICS_PORT: String(taken) })
        assert.include(oneShot.stderr, "LmStudioUnreachable", "it ran (and found no LM Studio on port 9)")
        assert.notInclude(oneShot.stderr, "MetricsEndpointFailed")
      }),
    { timeout: 60_000 }
  )
})
