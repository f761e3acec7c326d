/**
 * What the MCP face refuses before the SDK sees a message (DESIGN §6 "Bad input"): a message above
 * BRIDGE_MAX_MESSAGE_BYTES, text that is not JSON, JSON that is not a JSON-RPC message (an empty batch included), and
 * nesting deeper than MAX_DEPTH (which would overflow the stack of whatever walks it). Each gets a JSON-RPC error
 * answer naming the problem and the limit, with the request's id when it can be found, and the server keeps serving.
 */
import { type JSONRPCMessage, parseJSONRPCMessage } from "@modelcontextprotocol/server"

/** Deepest nesting of arrays and objects a message may have (the envelope takes three levels). */
export const MAX_DEPTH = 128

/** JSON-RPC 2.0 error codes. */
export const PARSE_ERROR = -32700
export const INVALID_REQUEST = -32600
export const INVALID_PARAMS = -32602

export type JsonRpcId = string | number | null

/** A JSON-RPC error answer. */
export const errorAnswer = (id: JsonRpcId, code: number, message: string, data?: Record<string, unknown>) => ({
  jsonrpc: "2.0" as const,
  id,
  error: { code, message, ...(data !== undefined ? { data } : {}) }
})

/** Whether a value nests deeper than `max` (iterative: it cannot overflow the stack itself). */
export const nestedDeeperThan = (value: unknown, max: number): boolean => {
  const stack: Array<readonly [unknown, number]> = [[value, 1]]
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!
    if (typeof v !== "object" || v === null) continue
    if (depth > max) return true
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1])
    }
  }
  return false
}

const ID_AT_START = /^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*("(?:[^"\\]|\\.){0,200}"|-?\d{1,20})/
const ID_AT_END = /"id"\s*:\s*("(?:[^"\\]|\\.){0,200}"|-?\d{1,20})\s*(?:,\s*"jsonrpc"\s*:\s*"2\.0"\s*)?\}\s*$/

/** The id of a message too large to parse, from its first or last bytes (where serialisers put it), else null. */
export const sniffId = (head: string, tail: string): JsonRpcId => {
  const m = ID_AT_START.exec(head) ?? ID_AT_END.exec(tail)
  if (m === null) return null
  try {
    const id: unknown = JSON.parse(m[1]!)
    return typeof id === "string" || typeof id === "number" ? id : null
  } catch {
    return null
  }
}

const idOf = (json: unknown): JsonRpcId => {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return null
  const id = (json as { readonly id?: unknown }).id
  return typeof id === "string" || typeof id === "number" ? id : null
}

const isRequest = (json: unknown) =>
  typeof json === "object" && json !== null && !Array.isArray(json) && "method" in json && idOf(json) !== null

/** The answer to a message above the size limit. */
export const tooLarge = (id: JsonRpcId, bytes: number, limit: number) =>
  errorAnswer(
    id,
    INVALID_REQUEST,
    `Message too large: ${bytes} bytes, above BRIDGE_MAX_MESSAGE_BYTES (${limit} bytes); it was not read. ` +
      "Send less (e.g. a file path instead of its content), or raise BRIDGE_MAX_MESSAGE_BYTES.",
    { bytes, limit }
  )

/** A message checked: the JSON-RPC message(s) to pass on, or the error answer. */
export type Checked =
  | { readonly _tag: "Ok"; readonly messages: ReadonlyArray<JSONRPCMessage>; readonly json: unknown }
  | { readonly _tag: "Refused"; readonly answer: ReturnType<typeof errorAnswer>; readonly reason: string }

/** Checks parsed JSON: depth, then the JSON-RPC shape (a batch: each element; an empty batch is invalid). */
export const checkJson = (json: unknown): Checked => {
  if (nestedDeeperThan(json, MAX_DEPTH)) {
    const reason = `nested deeper than ${MAX_DEPTH} levels`
    return {
      _tag: "Refused",
      reason,
      answer: errorAnswer(
        idOf(json),
        isRequest(json) ? INVALID_PARAMS : INVALID_REQUEST,
        `Invalid input: the message is ${reason} of arrays and objects; flatten the arguments.`,
        { maxDepth: MAX_DEPTH }
      )
    }
  }
  const items = Array.isArray(json) ? json : [json]
  if (Array.isArray(json) && json.length === 0) {
    return {
      _tag: "Refused",
      reason: "an empty batch",
      answer: errorAnswer(null, INVALID_REQUEST, "Invalid Request: an empty batch")
    }
  }
  const messages: Array<JSONRPCMessage> = []
  for (const item of items) {
    const parsed = parseMessage(item)
    if (parsed._tag === "Invalid") {
      return {
        _tag: "Refused",
        reason: "not a JSON-RPC message",
        // JSON-RPC 2.0 §5: an invalid request is answered, with a null id when it has none to tell.
        answer: errorAnswer(
          idOf(item),
          INVALID_REQUEST,
          `Invalid Request: not a JSON-RPC 2.0 message (${parsed.reason})`
        )
      }
    }
    messages.push(parsed.message)
  }
  return { _tag: "Ok", messages, json }
}

/** One item of a body as the SDK's JSON-RPC schema reads it (the SDK throws on a wrong shape). */
const parseMessage = (
  item: unknown
): { readonly _tag: "Ok"; readonly message: JSONRPCMessage } | {
  readonly _tag: "Invalid"
  readonly reason: string
} => {
  try {
    return { _tag: "Ok", message: parseJSONRPCMessage(item) }
  } catch (e) {
    const issue = typeof e === "object" && e !== null && "issues" in e && Array.isArray(e.issues) ? e.issues[0] : e
    const reason = typeof issue === "object" && issue !== null && "message" in issue ? String(issue.message) : ""
    return { _tag: "Invalid", reason: reason.split("\n")[0] || "wrong shape" }
  }
}

/** Checks one message's text (a stdio line, an HTTP body). */
export const checkText = (text: string): Checked => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return {
      _tag: "Refused",
      reason: "not JSON",
      answer: errorAnswer(null, PARSE_ERROR, `Parse error: ${e instanceof Error ? e.message : String(e)}`)
    }
  }
  return checkJson(json)
}
