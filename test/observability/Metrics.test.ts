/**
 * The metrics catalog and recorder: names, units and buckets on the conventions, label values bounded, nothing
 * recorded while metrics are off, and the Prometheus names (unit suffix) the exporter gives them.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Metric } from "effect"
import { readFileSync } from "node:fs"
import { prometheusName } from "../../src/observability/Exporters.js"
import { CATALOG, CurrentRecorder, LABEL_VALUES_MAX, OTHER, record, Recorder } from "../../src/observability/Metrics.js"

const countOf = (name: string, labels: Record<string, string>) =>
  Metric.unsafeSnapshot()
    .filter((p) => p.metricKey.name === name)
    .filter((p) => Object.entries(labels).every(([k, v]) => p.metricKey.tags.some((t) => t.key === k && t.value === v)))
    .reduce((n, p) => n + ("count" in p.metricState ? Number(p.metricState.count) : 0), 0)

describe("metrics", () => {
  it("names, units and buckets follow the OpenTelemetry conventions", () => {
    assert.strictEqual(CATALOG.mcpServer.name, "mcp.server.operation.duration")
    assert.strictEqual(CATALOG.mcpServer.unit, "s")
    assert.deepStrictEqual(CATALOG.mcpServer.buckets, [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300])
    assert.strictEqual(CATALOG.genAiDuration.name, "gen_ai.client.operation.duration")
    assert.deepStrictEqual(CATALOG.genAiDuration.buckets?.slice(0, 3), [0.01, 0.02, 0.04])
    assert.strictEqual(CATALOG.genAiTokens.unit, "{token}")
    assert.strictEqual(CATALOG.genAiTokens.buckets?.at(-1), 67108864)
    assert.strictEqual(CATALOG.agentDuration.name, "gen_ai.invoke_agent.duration")
    assert.strictEqual(CATALOG.executeTool.name, "gen_ai.execute_tool.duration")
    for (const m of Object.values(CATALOG)) {
      assert.match(m.name, /^(mcp|gen_ai|lmstudio_bridge)\.[a-z_.]+$/, m.name)
      if (m.kind === "histogram") assert.isAbove(m.buckets?.length ?? 0, 5, m.name)
    }
  })

  it("docs/observability.md lists every metric with its Prometheus name, unit and every label", () => {
    const doc = readFileSync(new URL("../../docs/observability.md", import.meta.url), "utf8")
    for (const m of Object.values(CATALOG)) {
      const row = doc.split("\n").find((l) => l.startsWith(`| \`${m.name}\` |`))
      assert.isDefined(row, `${m.name} is not in the metrics table`)
      const prom = prometheusName(m.name, m.unit).replaceAll(".", "_") + (m.kind === "counter" ? "_total" : "")
      assert.include(row, `\`${prom}\``)
      assert.include(row, `| \`${m.unit}\` |`)
      for (const label of m.labels) assert.include(row, `\`${label.replaceAll(".", "_")}\``, `${m.name}: ${label}`)
    }
  })

  it("Prometheus names: seconds as a suffix, curly units none", () => {
    assert.strictEqual(prometheusName("mcp.server.operation.duration", "s"), "mcp.server.operation.duration_seconds")
    assert.strictEqual(prometheusName("gen_ai.client.token.usage", "{token}"), "gen_ai.client.token.usage")
    assert.strictEqual(prometheusName("lmstudio_bridge.breaker.state", "1"), "lmstudio_bridge.breaker.state")
  })

  it("a label keeps at most LABEL_VALUES_MAX values; later ones are _OTHER", () => {
    const r = new Recorder()
    for (let i = 0; i < LABEL_VALUES_MAX; i++) assert.strictEqual(r.bound("gen_ai.request.model", `m${i}`), `m${i}`)
    assert.strictEqual(r.bound("gen_ai.request.model", "one-too-many"), OTHER)
    assert.strictEqual(r.bound("gen_ai.request.model", "m0"), "m0", "a value seen before stays itself")
    assert.strictEqual(r.bound("another.label", "fresh"), "fresh", "each label has its own bound")
  })

  it.effect("nothing is recorded while metrics are off; with a recorder, the update lands with its labels", () =>
    Effect.gen(function*() {
      const reason = `unit-${Math.random()}`
      const labels = { "lmstudio_bridge.verification.reason": reason }
      yield* record((r) => r.update("verifyFailures", 1, [reason]))
      assert.strictEqual(countOf("lmstudio_bridge.model.verification.failures", labels), 0)
      yield* record((r) => r.update("verifyFailures", 1, [reason])).pipe(
        Effect.provideService(CurrentRecorder, new Recorder())
      )
      assert.strictEqual(countOf("lmstudio_bridge.model.verification.failures", labels), 1)
      assert.isUndefined(Context.get(yield* Effect.context<never>(), CurrentRecorder))
    }))

  it("updates through the series cache: one series per label set, absent labels left out, bounded values shared", () => {
    const r = new Recorder()
    const tag = `dep-${Math.random()}`
    const DEP = "lmstudio_bridge.dependency"
    const CAUSE = "lmstudio_bridge.retry.cause"
    const retries = () =>
      Metric.unsafeSnapshot().filter((p) =>
        p.metricKey.name === "lmstudio_bridge.retries" &&
        p.metricKey.tags.some((t) => t.key === DEP && (t.value.startsWith(tag) || t.value === OTHER))
      )
    const valueOf = (p: ReturnType<typeof retries>[number], key: string) =>
      p.metricKey.tags.find((t) => t.key === key)?.value
    const count = (dep: string, cause: string | undefined) =>
      retries()
        .filter((p) => valueOf(p, DEP) === dep && valueOf(p, CAUSE) === cause)
        .reduce((n, p) => n + ("count" in p.metricState ? Number(p.metricState.count) : 0), 0)
    // 70 dependencies × 80 causes, twice: more label sets as given than the cache keeps, each still counted once.
    for (let round = 0; round < 2; round++) {
      for (let d = 0; d < 70; d++) {
        for (let c = 0; c < 80; c++) r.update("retries", 1, [`${tag}-${d}`, `c${c}`])
      }
    }
    r.update("retries", 1, [`${tag}-0`, undefined])
    assert.strictEqual(count(`${tag}-0`, "c0"), 2)
    assert.strictEqual(count(`${tag}-0`, undefined), 1, "an absent label is a series of its own, without the label")
    assert.strictEqual(count(OTHER, "c0"), 6 * 2, "dependencies 65–70 bound to _OTHER")
    assert.strictEqual(count(`${tag}-0`, OTHER), 16 * 2, "causes 65–80 bound to _OTHER")
    assert.strictEqual(count(OTHER, OTHER), 6 * 16 * 2)
    assert.strictEqual(new Set(retries().map((p) => valueOf(p, DEP))).size, LABEL_VALUES_MAX + 1)
    assert.strictEqual(retries().length, 65 * 65 + 1, "one series per bounded label set")
  })

  it("alternating label sets each keep their own series; equal values in new strings share one", () => {
    const r = new Recorder()
    const dep = `alt-${Math.random()}`
    const count = (cause: string) =>
      Metric.unsafeSnapshot()
        .filter((p) =>
          p.metricKey.name === "lmstudio_bridge.retries" &&
          p.metricKey.tags.some((t) => t.key === "lmstudio_bridge.dependency" && t.value === dep) &&
          p.metricKey.tags.some((t) => t.key === "lmstudio_bridge.retry.cause" && t.value === cause)
        )
        .reduce((n, p) => n + ("count" in p.metricState ? Number(p.metricState.count) : 0), 0)
    // Six sets in an alternating order.
    for (let i = 0; i < 60; i++) r.update("retries", 1, [dep, `c${i % 2 === 0 ? 0 : 1 + (i % 5)}`])
    assert.strictEqual(count("c0"), 30)
    assert.strictEqual([1, 2, 3, 4, 5].reduce((n, c) => n + count(`c${c}`), 0), 30)
    // Equal values in new strings (as a request's model name arrives) land on the same series.
    r.update("retries", 1, [dep, ["c", "0"].join("")])
    assert.strictEqual(count("c0"), 31)
  })
})
