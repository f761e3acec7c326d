/**
 * The one-click installs (issue 16): `npm run bundle`'s MCP Bundle — its manifest valid by the official `mcpb
 * validate`, the packed file unpacked by `mcpb unpack` and started the way a host starts it (the manifest's command,
 * `${__dirname}` and the user's settings filled in), answering `tools/list` with every tool the manifest names — and
 * the MCP registry's server.json, kept equal to what the script makes from package.json.
 */
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { start } from "../../src/simulator/Simulator.js"
import { j, repoRoot, runEffect, tempDir, TOOL_CONTRACT } from "../helpers.js"

const mcpbCli = join(repoRoot, "node_modules", "@anthropic-ai", "mcpb", "dist", "cli", "cli.js")

describe("MCP Bundle and server.json", () => {
  it.scopedLive(
    "the bundle's manifest is valid, and the unpacked bundle starts as a host starts it",
    () =>
      Effect.gen(function*() {
        const committed = readFileSync(join(repoRoot, "server.json"), "utf8")
        const made = yield* runEffect(process.execPath, [join(repoRoot, "scripts", "mcpb.mjs")])
        assert.strictEqual(made.code, 0, made.stdout + made.stderr)
        const bundle = join(repoRoot, "dist", "lmstudio-bridge.mcpb")
        const valid = yield* runEffect(process.execPath, [
          mcpbCli,
          "validate",
          join(repoRoot, "dist", "mcpb", "manifest.json")
        ])
        assert.strictEqual(valid.code, 0, valid.stdout + valid.stderr)

        const dir = yield* tempDir
        const unpacked = yield* runEffect(process.execPath, [mcpbCli, "unpack", bundle, dir])
        assert.strictEqual(unpacked.code, 0, unpacked.stdout + unpacked.stderr)
        const manifest = j(JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")))
        const sim = yield* start()
        const settings: Record<string, string> = {
          "${__dirname}": dir,
          "${user_config.lmstudio_base_url}": sim.baseUrl,
          "${user_config.default_model}": "",
          "${user_config.mcp_json_path}": ""
        }
        const fill = (s: string) => Object.entries(settings).reduce((t, [k, v]) => t.split(k).join(v), s)
        const config = manifest.get("server", "mcp_config")
        const env = Object.fromEntries(
          Object.entries(config.get("env").raw as Record<string, string>).map(([k, v]) => [k, fill(v)])
        )
        const client = yield* Effect.acquireRelease(
          Effect.promise(async () => {
            const c = new Client({ name: "mcpb-e2e", version: "1.0.0" })
            await c.connect(
              new StdioClientTransport({
                command: config.get("command").str === "node" ? process.execPath : config.get("command").str,
                args: config.get("args").arr.map((a) => fill(a.str)),
                env: { PATH: process.env.PATH ?? "", LOG_LEVEL: "warn", ...env },
                stderr: "pipe"
              })
            )
            return c
          }),
          (c) => Effect.promise(() => c.close())
        )
        const { tools } = yield* Effect.promise(() => client.listTools())
        assert.deepStrictEqual(tools.map((t) => t.name).sort(), [...TOOL_CONTRACT].sort())
        assert.deepStrictEqual(manifest.get("tools").arr.map((t) => t.get("name").str), tools.map((t) => t.name))
        const health = yield* Effect.promise(() => client.callTool({ name: "health_check", arguments: {} }))
        assert.strictEqual(j(health.structuredContent).get("reachable").raw, true)

        // server.json: what the script makes, committed as is; the npm package as the registry will check it.
        assert.strictEqual(readFileSync(join(repoRoot, "server.json"), "utf8"), committed, "server.json is up to date")
        const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as Record<string, string>
        const server = j(JSON.parse(committed))
        assert.strictEqual(server.get("name").str, pkg.mcpName)
        assert.strictEqual(server.get("version").str, pkg.version)
        assert.isAtMost(server.get("description").str.length, 100)
        const npm = server.get("packages", 0)
        assert.deepStrictEqual(
          [
            npm.get("registryType").str,
            npm.get("identifier").str,
            npm.get("version").str,
            npm.get("transport", "type").str
          ],
          ["npm", pkg.name, pkg.version, "stdio"]
        )
        assert.strictEqual(npm.get("packageArguments", 0, "value").str, "serve")
      }),
    { timeout: 120_000 }
  )
})
