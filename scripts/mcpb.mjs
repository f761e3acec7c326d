#!/usr/bin/env node
// `npm run bundle`: the one-click installs, from the built checkout (run `npm run build` first; the npm script does).
// - dist/lmstudio-bridge.mcpb: an MCP Bundle (what Claude Desktop installs): manifest.json, a package.json (ES
//   modules, the version), the bundled executable as the npm package ships it (dist/src/…), README and LICENSE; the
//   manifest is checked with the official `mcpb validate`, then packed with `mcpb pack`.
// - server.json at the top of the checkout: the entry for the MCP registry (the npm package, stdio, `serve`), its
//   version kept equal to package.json's.
// Tool names and descriptions in the manifest come from the tool registry itself (dist/src/mcp/tools/index.js).
import { spawnSync } from "node:child_process"
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"))
const { tools } = await import(join(root, "dist", "src", "mcp", "tools", "index.js"))
const mcpb = join(root, "node_modules", "@anthropic-ai", "mcpb", "dist", "cli", "cli.js")
const stage = join(root, "dist", "mcpb")
const out = join(root, "dist", `${pkg.name}.mcpb`)

/** The settings a user gives in the install dialog, passed to the server as its environment. */
const userConfig = {
  lmstudio_base_url: {
    type: "string",
    title: "LM Studio URL",
    description:
      "Where LM Studio's server listens (empty: found from LM Studio's own files, else http://127.0.0.1:1234)",
    default: "",
    required: false
  },
  default_model: {
    type: "string",
    title: "Default model",
    description: "The model used when a call names none (empty: the loaded LLM)",
    default: "",
    required: false
  },
  mcp_json_path: {
    type: "file",
    title: "mcp.json for autonomous runs",
    description: "The MCP servers the local model may use (empty: the usual places, see the README)",
    required: false
  }
}

const manifest = {
  manifest_version: "0.3",
  name: pkg.name,
  display_name: "LM Studio bridge",
  version: pkg.version,
  description: pkg.description,
  long_description:
    "Hands work to local LLMs served by LM Studio — chat, completion, stateful responses, embeddings — with a safe " +
    "model lifecycle (verified loads, finite TTLs held by LM Studio) and autonomous runs over other MCP servers.",
  author: { name: pkg.author ?? "lmstudio-bridge contributors" },
  license: pkg.license,
  keywords: ["lmstudio", "local-llm", "mcp", "agents"],
  server: {
    type: "node",
    entry_point: "dist/src/bin.js",
    mcp_config: {
      command: "node",
      args: ["${__dirname}/dist/src/bin.js", "serve"],
      env: {
        LMSTUDIO_BASE_URL: "${user_config.lmstudio_base_url}",
        DEFAULT_MODEL: "${user_config.default_model}",
        MCP_JSON_PATH: "${user_config.mcp_json_path}"
      }
    }
  },
  tools: tools.map((t) => ({ name: t.name, description: t.description.split("\n")[0] })),
  tools_generated: false,
  compatibility: { platforms: ["darwin", "win32", "linux"], runtimes: { node: pkg.engines.node } },
  user_config: userConfig
}

const run = (args) => {
  const r = spawnSync(process.execPath, [mcpb, ...args], { encoding: "utf8" })
  if (r.status !== 0) {
    process.stderr.write(`mcpb ${args[0]} failed:\n${r.stdout}${r.stderr}\n`)
    process.exit(1)
  }
  return r.stdout
}

rmSync(stage, { recursive: true, force: true })
rmSync(out, { force: true })
for (const file of pkg.files) {
  mkdirSync(dirname(join(stage, file)), { recursive: true })
  copyFileSync(join(root, file), join(stage, file))
}
writeFileSync(
  join(stage, "package.json"),
  `${JSON.stringify({ name: pkg.name, version: pkg.version, type: "module", license: pkg.license }, null, 2)}\n`
)
writeFileSync(join(stage, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`)
run(["validate", join(stage, "manifest.json")])
run(["pack", stage, out])

const serverJson = {
  $schema: "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
  name: pkg.mcpName,
  title: "LM Studio bridge",
  // The registry takes at most 100 characters.
  description: "Local LLMs in LM Studio as MCP tools: chat, embeddings, safe model loading, autonomous agents",
  version: pkg.version,
  packages: [
    {
      registryType: "npm",
      registryBaseUrl: "https://registry.npmjs.org",
      identifier: pkg.name,
      version: pkg.version,
      runtimeHint: "npx",
      transport: { type: "stdio" },
      packageArguments: [{ type: "positional", value: "serve" }],
      environmentVariables: [
        {
          name: "LMSTUDIO_BASE_URL",
          description: userConfig.lmstudio_base_url.description,
          isRequired: false,
          format: "string"
        },
        {
          name: "DEFAULT_MODEL",
          description: userConfig.default_model.description,
          isRequired: false,
          format: "string"
        }
      ]
    }
  ]
}
writeFileSync(join(root, "server.json"), `${JSON.stringify(serverJson, null, 2)}\n`)
process.stdout.write(`${out}\n${join(root, "server.json")}\n`)
