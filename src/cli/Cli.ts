/** The command tree. The binary passes in how services are composed (`AppLayerFactory`); handlers stay thin. */
import { Command } from "@effect/cli"
import { agentCommand, mcpsCommand } from "./agent.js"
import { doctorCommand } from "./doctor.js"
import { healthCommand } from "./health.js"
import { chatCommand, completeCommand, embedCommand, respondCommand } from "./inference.js"
import { modelsCommand } from "./models.js"
import { serveCommand } from "./serve.js"
import type { AppLayerFactory, McpServers } from "./Shared.js"
import { simulateCommand } from "./simulate.js"

const rootCommand = (appLayer: AppLayerFactory, version: string, mcp: McpServers) =>
  Command.make("lmstudio-bridge").pipe(
    Command.withDescription("MCP server and CLI that hands work to local LLMs served by LM Studio"),
    Command.withSubcommands([
      serveCommand(appLayer, version, mcp),
      healthCommand(appLayer),
      doctorCommand(appLayer),
      modelsCommand(appLayer),
      chatCommand(appLayer),
      completeCommand(appLayer),
      embedCommand(appLayer),
      respondCommand(appLayer),
      mcpsCommand(appLayer),
      agentCommand(appLayer),
      simulateCommand
    ])
  )

export const makeCli = (appLayer: AppLayerFactory, version: string, mcp: McpServers) =>
  Command.run(rootCommand(appLayer, version, mcp), { name: "lmstudio-bridge", version })
