/**
 * The real child MCP servers of the end-to-end tests (from npm) and the SDK client calls the tests make.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { Effect } from "effect"
import { join } from "node:path"
import { repoRoot } from "../helpers.js"

const serverPath = (name: string) => join(repoRoot, "node_modules", "@modelcontextprotocol", name, "dist", "index.js")

export const fsServer = serverPath("server-filesystem")
export const memoryServer = serverPath("server-memory")
export const everythingServer = serverPath("server-everything")

/** Calls a bridge tool (two minutes at most: agent runs take a while on a loaded machine). */
export const call = (client: Client, name: string, args: Record<string, unknown>) =>
  Effect.promise(() => client.callTool({ name, arguments: args }, undefined, { timeout: 120_000 }))

/** The text of a tool result's content. */
export const textOf = (r: Awaited<ReturnType<Client["callTool"]>>) =>
  (Array.isArray(r.content) ? r.content : []).map((c: { type: string; text?: string }) => c.text ?? "").join("\n")

/** mcp.json entries of the three real servers, the filesystem one over `dir` and the memory one keeping its file there. */
export const realServers = (dir: string) => ({
  fs: { command: process.execPath, args: [fsServer, dir] },
  memory: { command: process.execPath, args: [memoryServer], env: { MEMORY_FILE_PATH: join(dir, "memory.jsonl") } },
  everything: { command: process.execPath, args: [everythingServer] }
})
