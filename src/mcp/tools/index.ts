/** The tool registry: every tool the MCP server offers, in the order `tools/list` shows them. */
import type { AgentLoop } from "../../agent/AgentLoop.js"
import type { McpConfig } from "../../agent/McpConfig.js"
import type { AppConfig } from "../../Config.js"
import type { Diagnostics } from "../../diagnostics/Diagnostics.js"
import type { Admission } from "../../lmstudio/Admission.js"
import type { LmsCli } from "../../lmstudio/LmsCli.js"
import type { LmStudioClient } from "../../lmstudio/LmStudioClient.js"
import type { ModelCatalog } from "../../lmstudio/ModelCatalog.js"
import type { ModelLifecycle } from "../../lmstudio/ModelLifecycle.js"
import type { Tool } from "../Server.js"
import { autonomousTools } from "./autonomous.js"
import { diagnose } from "./diagnose.js"
import { lifecycleTools } from "./lifecycle.js"
import { lmstudioTools } from "./lmstudio.js"

/** What the tools need to run. */
export type ToolServices =
  | AppConfig
  | LmStudioClient
  | LmsCli
  | Admission
  | ModelCatalog
  | ModelLifecycle
  | Diagnostics
  | McpConfig
  | AgentLoop

export const tools: ReadonlyArray<Tool<ToolServices>> = [
  ...lmstudioTools,
  ...lifecycleTools,
  ...autonomousTools,
  diagnose
]
