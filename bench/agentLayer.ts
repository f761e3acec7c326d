/**
 * The AgentLoop service as the agent benchmarks build it: in-process against a simulator, with its LLM requests
 * (chat, respond, embed, the model listings) and child tool calls timed with the nanosecond clock where the bridge makes them, so the
 * bridge's own time is a run's wall time minus exactly those.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Clock, Context, Effect, Layer } from "effect"
import { AgentLoop } from "../src/agent/AgentLoop.js"
import { ChildServers } from "../src/agent/ChildServers.js"
import { McpConfig } from "../src/agent/McpConfig.js"
import { ToolRanking } from "../src/agent/ToolRanking.js"
import { AppConfig, type AppConfigShape } from "../src/Config.js"
import { Admission } from "../src/lmstudio/Admission.js"
import { LmsCli } from "../src/lmstudio/LmsCli.js"
import { LmStudioClient } from "../src/lmstudio/LmStudioClient.js"
import { ModelCatalog } from "../src/lmstudio/ModelCatalog.js"
import { ModelLifecycle } from "../src/lmstudio/ModelLifecycle.js"
import * as NodeTransport from "../src/lmstudio/transport/NodeTransport.js"

/** Nanoseconds spent outside the bridge since the last reset: in LM Studio, and in child tool calls. */
export interface Outside {
  llmNs: number
  toolNs: number
}

/** The agent and the servers of its mcp.json, over timed ports; `outside` accumulates the time spent elsewhere. */
export const timedAgent = (config: Partial<AppConfigShape> & Pick<AppConfigShape, "baseUrl">) =>
  Effect.gen(function*() {
    const outside: Outside = { llmNs: 0, toolNs: 0 }
    const timedInto = <A, E, R>(effect: Effect.Effect<A, E, R>, add: (ns: number) => void) =>
      Effect.flatMap(
        Clock.currentTimeNanos,
        (t0) =>
          Effect.ensuring(
            effect,
            Effect.flatMap(Clock.currentTimeNanos, (t1) => Effect.sync(() => add(Number(t1 - t0))))
          )
      )
    const llm = (ns: number) => (outside.llmNs += ns)
    const timedClient = Layer.effect(
      LmStudioClient,
      Effect.map(LmStudioClient, (c) =>
        LmStudioClient.make({
          ...c,
          chat: (req) => timedInto(c.chat(req), llm),
          respond: (req) => timedInto(c.respond(req), llm),
          embed: (req) => timedInto(c.embed(req), llm),
          // The listings that leases and the catalog read are requests to LM Studio too.
          listOpenAiModels: () => timedInto(c.listOpenAiModels(), llm),
          listV0Models: () => timedInto(c.listV0Models(), llm),
          listV1Models: () => timedInto(c.listV1Models(), llm)
        }))
    )
    const timedChildren = Layer.effect(
      ChildServers,
      Effect.map(ChildServers, (c) =>
        ChildServers.make({
          ...c,
          callTool: (cfg, tool, args) => timedInto(c.callTool(cfg, tool, args), (ns) => (outside.toolNs += ns)),
          toolsOf: (cfg) => timedInto(c.toolsOf(cfg), (ns) => (outside.toolNs += ns))
        }))
    )
    const base = Layer.mergeAll(LmStudioClient.Default, LmsCli.Default, Admission.Default).pipe(
      Layer.provide(NodeTransport.layer),
      Layer.provideMerge(NodeContext.layer),
      Layer.provideMerge(AppConfig.layerFrom({ lifecycle: "jit", ...config }))
    )
    // Without their declared dependencies: these services must use the timed client and children above.
    const layer = Layer.mergeAll(AgentLoop.DefaultWithoutDependencies, McpConfig.Default).pipe(
      Layer.provideMerge(Layer.provideMerge(timedChildren, ChildServers.Default)),
      Layer.provideMerge(ToolRanking.DefaultWithoutDependencies),
      Layer.provideMerge(ModelLifecycle.DefaultWithoutDependencies),
      Layer.provideMerge(ModelCatalog.DefaultWithoutDependencies),
      Layer.provideMerge(Layer.provideMerge(timedClient, base))
    )
    const ctx = yield* Layer.build(layer)
    const servers = (yield* Context.get(ctx, McpConfig).load).servers
    return { agent: Context.get(ctx, AgentLoop), servers, outside }
  })
