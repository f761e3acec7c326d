/**
 * Secrets stay secret (issue 14): credentials in LMSTUDIO_BASE_URL (`http://user:pass@host`) are used — LM Studio
 * gets them as Basic auth — but never shown: not in health_check, diagnose, error texts, CLI output or stderr.
 * Header and env values from mcp.json, and credentials or tokens in a child server's URL, stay hidden too.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"
import { start } from "../../src/simulator/Simulator.js"
import { binPath, bridgeWithStderr, runEffect, tempDir } from "../helpers.js"
import { call, fsServer, textOf } from "../support/children.js"

const PASSWORD = "s3cret-Pa55"
const HEADER_SECRET = "hdr-7d1f0c"
const ENV_SECRET = "env-93ab2e"
const QUERY_SECRET = "qry-51e0aa"

/** A port nothing listens on. */
const closedPort = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const s = createServer()
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
)

const noSecrets = (where: string, text: string) => {
  for (const secret of [PASSWORD, HEADER_SECRET, ENV_SECRET, QUERY_SECRET]) {
    assert.notInclude(text, secret, `${where} shows a secret`)
  }
}

describe("secrets stay secret (issue 14)", () => {
  it.scopedLive(
    "credentials in LMSTUDIO_BASE_URL are sent as Basic auth and appear in no answer, error, CLI output or log line",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const sim = yield* start({})
        const port = new URL(sim.baseUrl).port
        const withPassword = `http://alice:${PASSWORD}@127.0.0.1:${port}`
        const mcpJson = join(dir, "mcp.json")
        writeFileSync(
          mcpJson,
          JSON.stringify({
            mcpServers: {
              fs: { command: process.execPath, args: [fsServer, dir], env: { API_KEY: ENV_SECRET } },
              remote: {
                url: `http://bob:${PASSWORD}@127.0.0.1:${yield* closedPort}/mcp?api_key=${QUERY_SECRET}`,
                headers: { Authorization: `Bearer ${HEADER_SECRET}` }
              }
            }
          })
        )
        const { client, stderr } = yield* bridgeWithStderr({
          LMSTUDIO_BASE_URL: withPassword,
          MCP_JSON_PATH: mcpJson,
          LOG_LEVEL: "trace"
        })
        // Every tool the bridge lists, with arguments that reach LM Studio where the tool does.
        const argsOf: Record<string, Record<string, unknown>> = {
          get_model_info: { model: "qwen/qwen3-4b" },
          chat_completion: { messages: [{ role: "user", content: "hi" }], model: "no/such-model" },
          text_completion: { prompt: "Once" },
          create_response: { input: "hi" },
          generate_embeddings: { input: ["a", "b"] },
          lms_load_model: { model: "google/gemma-3-1b", ttl_seconds: 60 },
          lms_ensure_model_loaded: { model: "google/gemma-3-1b" },
          lms_unload_model: { model: "google/gemma-3-1b" },
          autonomous_with_mcp: { mcp_name: "remote", task: "anything" },
          autonomous_with_multiple_mcps: { mcp_names: ["fs", "remote"], task: "anything" },
          autonomous_discover_and_execute: { task: "anything", max_rounds: 1 }
        }
        const listed = (yield* Effect.promise(() => client.listTools())).tools.map((t) => t.name)
        assert.isAbove(listed.length, 15)
        const texts: Array<[string, string]> = []
        for (const tool of listed) {
          const r = yield* call(client, tool, argsOf[tool] ?? {})
          texts.push([tool, `${textOf(r)}\n${JSON.stringify(r.structuredContent ?? null)}`])
        }
        for (const [tool, text] of texts) noSecrets(tool, text)
        // Used: LM Studio saw the credentials, as Basic auth.
        const seen = (yield* sim.state.get).recent.map((q) => q.authorization)
        assert.include(seen, `Basic ${Buffer.from(`alice:${PASSWORD}`).toString("base64")}`)
        // The answers still name where the bridge talks to, without the password.
        const health = texts.find(([t]) => t === "health_check")![1]
        assert.include(health, `127.0.0.1:${port}`)
        const mcps = texts.find(([t]) => t === "list_available_mcps")![1]
        assert.include(mcps, "/mcp?api_key=***")
        // The remote server cannot be reached: its error names it, not its secrets.
        const remote = texts.find(([t]) => t === "autonomous_with_mcp")![1]
        assert.include(remote, "McpServerFailedToStart")

        // An LM Studio that is not there: the error and every log line stay clean.
        const gone = `http://alice:${PASSWORD}@127.0.0.1:${yield* closedPort}`
        const { client: lost, stderr: lostErr } = yield* bridgeWithStderr({
          LMSTUDIO_BASE_URL: gone,
          LOG_LEVEL: "trace"
        })
        const down = yield* call(lost, "health_check", {})
        noSecrets("health_check (unreachable)", `${textOf(down)}\n${JSON.stringify(down.structuredContent ?? null)}`)
        noSecrets("stderr", stderr())
        noSecrets("stderr (unreachable)", lostErr())

        // The CLI: every output, both streams, JSON or not, and a bad URL's ConfigInvalid.
        // Every command of the CLI that talks to LM Studio (all but serve and simulate), JSON or not.
        for (
          const args of [
            ["health"],
            ["health", "--json"],
            ["doctor"],
            ["doctor", "--json"],
            ["models", "list"],
            ["models", "list", "--json"],
            ["models", "loaded"],
            ["models", "load", "google/gemma-3-1b", "--ttl", "60"],
            ["models", "ensure", "google/gemma-3-1b", "--json"],
            ["models", "unload", "google/gemma-3-1b"],
            ["chat", "hi"],
            ["chat", "hi", "--model", "no/such-model"],
            ["complete", "Once", "--max-tokens", "5"],
            ["embed", "a", "b"],
            ["respond", "hi"],
            ["mcps", "list"],
            ["mcps", "list", "--json"],
            ["agent", "run", "--mcp", "remote", "anything"],
            ["agent", "run", "--mcp", "fs", "--json", "anything"]
          ]
        ) {
          const out = yield* runEffect(process.execPath, [binPath, ...args], {
            LMSTUDIO_BASE_URL: withPassword,
            MCP_JSON_PATH: mcpJson,
            LMSTUDIO_LIFECYCLE: "jit",
            LOG_LEVEL: "trace"
          })
          noSecrets(`lmstudio-bridge ${args.join(" ")}`, out.stdout + out.stderr)
          if (args.join(" ") === "doctor") assert.include(out.stdout, "sent as Basic auth")
        }
        const down2 = yield* runEffect(process.execPath, [binPath, "health"], { LMSTUDIO_BASE_URL: gone })
        assert.strictEqual(down2.code, 1)
        assert.include(down2.stderr, "LmStudioUnreachable")
        noSecrets("health (unreachable)", down2.stdout + down2.stderr)
        const bad = yield* runEffect(process.execPath, [binPath, "health"], {
          LMSTUDIO_BASE_URL: `http://alice:${PASSWORD}@127.0.0.1:${port}/?x=1`
        })
        assert.include(bad.stderr, "ConfigInvalid")
        noSecrets("ConfigInvalid", bad.stdout + bad.stderr)
      }),
    120_000
  )
})
