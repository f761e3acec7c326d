/** `lmstudio-bridge health`: is LM Studio there, which APIs does it offer, what is loaded. */
import { Command } from "@effect/cli"
import { Clock, Effect } from "effect"
import { AppConfig } from "../Config.js"
import { LmsCli } from "../lmstudio/LmsCli.js"
import { LmStudioClient } from "../lmstudio/LmStudioClient.js"
import { ModelCatalog } from "../lmstudio/ModelCatalog.js"
import { ModelLifecycle } from "../lmstudio/ModelLifecycle.js"
import { type AppLayerFactory, baseUrl, json, printJson, printLine, withApp } from "./Shared.js"

export const healthCommand = (appLayer: AppLayerFactory) =>
  Command.make("health", { baseUrl, json }, (flags) =>
    Effect.gen(function*() {
      const client = yield* LmStudioClient
      const config = yield* AppConfig
      const started = yield* Clock.currentTimeMillis
      const greeting = yield* client.greeting()
      const latencyMs = (yield* Clock.currentTimeMillis) - started
      const apis = yield* client.apis
      const loaded = (yield* (yield* ModelCatalog).loadedNow).map((l) => ({
        identifier: l.instance.id,
        model: l.model.key,
        type: l.model.type
      }))
      const lifecycle = yield* (yield* ModelLifecycle).status
      const breakers = [yield* client.breaker, yield* (yield* LmsCli).breaker]
      if (flags.json) {
        return yield* printJson({
          reachable: true,
          base_url: client.baseUrl,
          base_url_source: config.baseUrlSource,
          lmstudio: greeting.lmstudio,
          apis,
          loaded,
          latency_ms: latencyMs,
          lifecycle: {
            mode: lifecycle.mode,
            backend: lifecycle.backend,
            reason: lifecycle.reason,
            ttl_enforced_by: lifecycle.ttlEnforcedBy,
            lms_cli: lifecycle.lmsCli
          },
          breakers: breakers.map((b) => ({
            dependency: b.dependency,
            state: b.state,
            consecutive_failures: b.consecutiveFailures,
            retry_after_seconds: b.retryAfterSeconds
          }))
        })
      }
      const offered = Object.entries(apis).filter(([, on]) => on).map(([name]) => name)
      yield* printLine(
        `LM Studio is reachable at ${client.baseUrl} (${latencyMs} ms; address from ${config.baseUrlSource})`
      )
      yield* printLine(`APIs: ${offered.join(", ") || "none detected"}`)
      yield* printLine(
        loaded.length === 0 ? "Loaded models: none" : `Loaded models: ${loaded.map((l) => l.identifier).join(", ")}`
      )
      yield* printLine(`Model loading: ${lifecycle.backend} (${lifecycle.reason}); lms CLI: ${lifecycle.lmsCli}`)
      yield* printLine(`Circuit breakers: ${breakers.map((b) => `${b.dependency} ${b.state}`).join(", ")}`)
    })).pipe(
      Command.withDescription("Check that LM Studio answers and show its APIs and loaded models"),
      withApp(appLayer)
    )
