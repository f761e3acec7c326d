/**
 * The package as users get it (issue 16): `npm pack` of the built checkout, installed with `npm install -g` into a
 * temp prefix with `--offline` (it has no dependencies: the executable is one bundle), then `--version`, `simulate`
 * (with its `lms` shim) and `serve` answering an MCP client — all from the install, which has no node_modules.
 */
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { repoRoot, runEffect, tempDir, TOOL_CONTRACT } from "../helpers.js"

/** Bytes of every file under `dir`. */
const sizeOf = (dir: string): number =>
  readdirSync(dir, { withFileTypes: true }).reduce(
    (n, e) => n + (e.isDirectory() ? sizeOf(join(dir, e.name)) : statSync(join(dir, e.name)).size),
    0
  )

describe("the packed package", () => {
  it.scopedLive(
    "installs offline with no dependencies into a temp prefix; --version, simulate and serve run from it",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const npm = { npm_config_cache: join(dir, "cache"), npm_config_update_notifier: "false" }
        const packed = yield* runEffect("npm", ["pack", "--ignore-scripts", "--pack-destination", dir, repoRoot], npm)
        assert.strictEqual(packed.code, 0, packed.stderr)
        const tarball = join(dir, readdirSync(dir).find((f) => f.endsWith(".tgz"))!)
        const prefix = join(dir, "prefix")
        const installed = yield* runEffect(
          "npm",
          ["install", "-g", "--offline", "--no-audit", "--no-fund", "--prefix", prefix, tarball],
          npm
        )
        assert.strictEqual(installed.code, 0, installed.stderr)
        const root = join(prefix, "lib", "node_modules", "lmstudio-bridge")
        assert.isFalse(existsSync(join(root, "node_modules")), "no dependencies installed")
        assert.isAtMost(sizeOf(root), 10 * 1024 * 1024, "installed size within 10 MB")
        const bin = join(prefix, "bin", "lmstudio-bridge")
        const { version } = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string }
        const v = yield* runEffect(bin, ["--version"])
        assert.strictEqual(v.stdout.trim(), version, v.stderr)

        // simulate, from the install: its URL, and its lms shim answering too.
        const sim = yield* Effect.acquireRelease(
          Effect.async<{ baseUrl: string; shim: string; stop: () => void }>((resume) => {
            const child = spawn(bin, ["simulate", "--port", "0", "--json"], { stdio: ["ignore", "pipe", "pipe"] })
            // The JSON on stdout, the shim's settings on stderr.
            let out = ""
            const read = (d: Buffer) => {
              out += d.toString()
              const url = /"base_url": "([^"]+)"/.exec(out)
              const shim = /LMS_CLI_PATH=(\S+)/.exec(out)
              if (url && shim) {
                resume(Effect.succeed({ baseUrl: url[1]!, shim: shim[1]!, stop: () => child.kill("SIGINT") }))
              }
            }
            child.stdout.on("data", read)
            child.stderr.on("data", read)
          }),
          (s) => Effect.sync(() => s.stop())
        )
        assert.isTrue(sim.shim.startsWith(root), sim.shim)
        const lms = yield* runEffect(process.execPath, [sim.shim, "ls"], {
          LMS_SIM_URL: sim.baseUrl.replace(/\/v1$/, "")
        })
        assert.strictEqual(lms.code, 0, lms.stderr)
        assert.include(lms.stdout, "qwen/qwen3-4b")

        // serve, from the install, to an MCP client over stdio.
        const client = yield* Effect.acquireRelease(
          Effect.promise(async () => {
            const c = new Client({ name: "package-e2e", version: "1.0.0" })
            await c.connect(
              new StdioClientTransport({
                command: bin,
                args: ["serve"],
                env: { PATH: process.env.PATH ?? "", LMSTUDIO_BASE_URL: sim.baseUrl, LOG_LEVEL: "warn" },
                stderr: "pipe"
              })
            )
            return c
          }),
          (c) => Effect.promise(() => c.close())
        )
        const { tools } = yield* Effect.promise(() => client.listTools())
        assert.deepStrictEqual(tools.map((t) => t.name).sort(), [...TOOL_CONTRACT].sort())
        const health = yield* Effect.promise(() => client.callTool({ name: "health_check", arguments: {} }))
        assert.notStrictEqual(health.isError, true, JSON.stringify(health))
      }),
    { timeout: 120_000 }
  )
})
