/**
 * Finding LM Studio by itself (protocol §12.4) from a temporary home: the pointer file, ~/.cache/lm-studio,
 * ~/.lmstudio; the port file (present, missing, corrupt, overridden); the base URL's precedence; `lms` and mcp.json
 * in LM Studio's home. End to end: the built bridge, with no LMSTUDIO_BASE_URL, finds the simulator through the port
 * file, `lms` in `<home>/bin`, and LM Studio's own mcp.json (with an OAuth entry it lists but does not use).
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import type * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { locateMcpJson as locateMcpJsonWith } from "../src/agent/McpConfig.js"
import { baseUrlOf, DEFAULT_BASE_URL } from "../src/Config.js"
import { locate } from "../src/lmstudio/LmsCli.js"
import { discoverHome, findHome, lmsInHome } from "../src/LmStudioHome.js"
import { start } from "../src/simulator/Simulator.js"
import { binPath, j, lmsShimPath, run, tempDir } from "./helpers.js"

const portFile = (home: string, body: string) => {
  mkdirSync(join(home, ".internal"), { recursive: true })
  writeFileSync(join(home, ".internal", "http-server.json"), body)
}

const onDisk = <A, E>(effect: Effect.Effect<A, E, FileSystem.FileSystem>) =>
  Effect.provide(effect, NodeFileSystem.layer)

const locateMcpJson = (...args: Parameters<typeof locateMcpJsonWith>) => onDisk(locateMcpJsonWith(...args))

describe("LM Studio's home and port file", () => {
  it.scoped("home: the pointer file, else ~/.cache/lm-studio, else ~/.lmstudio; a pointer to nowhere is said", () =>
    Effect.gen(function*() {
      const user = yield* tempDir
      assert.strictEqual((yield* onDisk(findHome(user))).home, undefined)
      assert.include(
        (yield* onDisk(findHome(user))).reason,
        "none of ~/.lmstudio-home-pointer, ~/.cache/lm-studio, ~/.lmstudio exists"
      )
      mkdirSync(join(user, ".lmstudio"))
      assert.strictEqual((yield* onDisk(findHome(user))).home, join(user, ".lmstudio"))
      mkdirSync(join(user, ".cache", "lm-studio"), { recursive: true })
      assert.strictEqual((yield* onDisk(findHome(user))).home, join(user, ".cache", "lm-studio"))
      const elsewhere = join(user, "LM Studio data")
      mkdirSync(elsewhere)
      writeFileSync(join(user, ".lmstudio-home-pointer"), `${elsewhere}\n`)
      assert.deepStrictEqual(yield* onDisk(findHome(user)), {
        home: elsewhere,
        reason: `named by ${join(user, ".lmstudio-home-pointer")}`
      })
      writeFileSync(join(user, ".lmstudio-home-pointer"), join(user, "gone"))
      const dangling = yield* onDisk(findHome(user))
      assert.strictEqual(dangling.home, join(user, ".cache", "lm-studio"))
      assert.include(dangling.reason, "which is not a folder")
    }))

  it.scoped("port file: read, missing, corrupt, without a port, overridden by LMS_API_SERVER_INFO_PATH", () =>
    Effect.gen(function*() {
      const user = yield* tempDir
      const home = join(user, ".lmstudio")
      mkdirSync(home)
      const missing = yield* onDisk(discoverHome(user, {}))
      assert.deepStrictEqual([missing.port, missing.portFile], [undefined, join(home, ".internal", "http-server.json")])
      assert.include(missing.portProblem, "does not exist")
      portFile(home, JSON.stringify({ port: 41343, pid: 1 }))
      assert.deepStrictEqual([
        (yield* onDisk(discoverHome(user, {}))).port,
        (yield* onDisk(discoverHome(user, {}))).portProblem
      ], [41343, undefined])
      portFile(home, "{ broken")
      assert.include((yield* onDisk(discoverHome(user, {}))).portProblem, "is not valid JSON")
      portFile(home, JSON.stringify({ port: "1234" }))
      assert.include((yield* onDisk(discoverHome(user, {}))).portProblem, "has no valid \"port\"")
      const other = join(user, "server.json")
      writeFileSync(other, JSON.stringify({ port: 5555 }))
      assert.deepStrictEqual([
        (yield* onDisk(discoverHome(user, { LMS_API_SERVER_INFO_PATH: other }))).port,
        (yield* onDisk(discoverHome(user, { LMS_API_SERVER_INFO_PATH: other }))).portFile
      ], [5555, other])
    }))

  it.scoped("the base URL: --base-url, then LMSTUDIO_BASE_URL, then the port file, then the default (with why)", () =>
    Effect.gen(function*() {
      const user = yield* tempDir
      mkdirSync(join(user, ".lmstudio"))
      portFile(join(user, ".lmstudio"), JSON.stringify({ port: 41343 }))
      const found = yield* onDisk(discoverHome(user, {}))
      assert.deepStrictEqual(baseUrlOf("http://a:1", Option.some("http://b:2"), found), {
        url: "http://a:1",
        source: "--base-url"
      })
      assert.deepStrictEqual(baseUrlOf(undefined, Option.some("http://b:2"), found), {
        url: "http://b:2",
        source: "LMSTUDIO_BASE_URL"
      })
      assert.strictEqual(baseUrlOf(undefined, Option.none(), found).url, "http://127.0.0.1:41343")
      const none = baseUrlOf(undefined, Option.none(), yield* onDisk(discoverHome(yield* tempDir, {})))
      assert.strictEqual(none.url, DEFAULT_BASE_URL)
      assert.include(none.source, "does not exist")
    }))

  it.scoped("lms in <home>/bin after PATH; LM Studio's own mcp.json last in the search order", () =>
    Effect.gen(function*() {
      const user = yield* tempDir
      const home = join(user, ".cache", "lm-studio")
      mkdirSync(join(home, "bin"), { recursive: true })
      writeFileSync(join(home, "bin", "lms"), "")
      const found = yield* onDisk(discoverHome(user, {}))
      assert.strictEqual(yield* onDisk(lmsInHome(found)), join(home, "bin", "lms"))
      assert.deepStrictEqual(
        yield* Effect.provide(locate(Option.none(), "", user, yield* onDisk(lmsInHome(found))), NodeFileSystem.layer),
        Option.some(join(home, "bin", "lms"))
      )
      const cwd = yield* tempDir
      assert.strictEqual((yield* locateMcpJson(Option.none(), cwd, user, found.home)).path, null)
      writeFileSync(join(home, "mcp.json"), "{}")
      assert.deepStrictEqual(yield* locateMcpJson(Option.none(), cwd, user, found.home), {
        path: join(home, "mcp.json"),
        reason: `LM Studio's mcp.json in its home ${home}`
      })
      writeFileSync(join(user, ".mcp.json"), "{}")
      assert.strictEqual((yield* locateMcpJson(Option.none(), cwd, user, found.home)).path, join(user, ".mcp.json"))
    }))
})

describe("the bridge finds LM Studio by itself (built binary, temporary HOME)", () => {
  it.scopedLive("port file, lms in <home>/bin and <home>/mcp.json are found and named by doctor; OAuth servers are listed, not used", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const user = yield* tempDir
      const home = join(user, ".cache", "lm-studio")
      mkdirSync(join(home, "bin"), { recursive: true })
      symlinkSync(lmsShimPath, join(home, "bin", "lms"))
      portFile(home, JSON.stringify({ port: Number(new URL(sim.baseUrl).port) }))
      writeFileSync(
        join(home, "mcp.json"),
        JSON.stringify({
          mcpServers: {
            notes: { command: "node", args: ["notes-server.js"] },
            github: { url: "https://mcp.example.test/github", auth: { CLIENT_ID: "abc", CLIENT_SECRET: "s3cr3t" } }
          }
        })
      )
      const env = {
        HOME: user,
        LMSTUDIO_BASE_URL: undefined,
        LMS_CLI_PATH: undefined,
        MCP_JSON_PATH: undefined,
        PATH: `${dirname(process.execPath)}:/usr/bin:/bin`
      }
      const bridge = (...args: Array<string>) => Effect.promise(() => run(process.execPath, [binPath, ...args], env))
      const health = yield* bridge("health", "--json")
      assert.strictEqual(health.code, 0, health.stderr)
      assert.strictEqual(j(JSON.parse(health.stdout)).get("base_url").str, sim.baseUrl)
      assert.include(
        j(JSON.parse(health.stdout)).get("base_url_source").str,
        join(home, ".internal", "http-server.json")
      )
      assert.strictEqual(j(JSON.parse(health.stdout)).get("lifecycle", "lms_cli").str, join(home, "bin", "lms"))
      const doctor = j(JSON.parse((yield* bridge("doctor", "--json")).stdout))
      const check = (name: string) =>
        doctor.get("checks").arr.find((c) => c.get("name").str === name)!.get("detail").str
      assert.include(check("LM Studio home"), `${home} (${home} exists)`)
      assert.include(check("LM Studio home"), `port ${new URL(sim.baseUrl).port}`)
      assert.include(
        check("Configuration"),
        `mcp.json: ${join(home, "mcp.json")} (LM Studio's mcp.json in its home ${home})`
      )
      const mcps = yield* bridge("mcps", "list", "--json")
      assert.strictEqual(mcps.code, 0, mcps.stderr)
      assert.deepStrictEqual(
        j(JSON.parse(mcps.stdout)).get("servers").arr.map((s) => [s.get("name").str, s.get("enabled").raw]),
        [["notes", true], ["github", false]]
      )
      assert.include(j(JSON.parse(mcps.stdout)).get("servers", 1, "note").str, "OAuth")
      assert.notInclude(mcps.stdout, "s3cr3t")
      // A corrupt port file: said plainly, and the default port is what the bridge tries.
      portFile(home, "{ not json")
      const corrupt = j(JSON.parse((yield* bridge("doctor", "--json")).stdout))
      const server = corrupt.get("checks").arr.find((c) => c.get("name").str === "LM Studio home")!.get("detail").str
      assert.include(server, "is not valid JSON")
      assert.include(
        corrupt.get("checks").arr.find((c) => c.get("name").str === "Configuration")!.get("detail").str,
        `LM Studio at ${DEFAULT_BASE_URL} (from the default`
      )
    }))
})
