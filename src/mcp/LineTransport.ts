/**
 * The stdio transport: newline-delimited JSON-RPC on stdin/stdout, like the SDK's, but bad input never ends the
 * session. The SDK's transport closes (exit 0, "client disconnected") when a line passes its 10 MiB buffer, and drops
 * lines that are not JSON without an answer. Here (see Limits.ts):
 *
 * - a line above `maxBytes` is skipped as it streams in (never held in memory past the limit) and answered with a
 *   JSON-RPC error naming the limit, with the request's id when its first or last bytes carry it;
 * - text that is not JSON gets `-32700`, JSON that is not a JSON-RPC message `-32600`, nesting past MAX_DEPTH
 *   `-32602` (a request) or `-32600`;
 * - then the next line is read as usual. Every refusal is logged on stderr.
 */
import type { JSONRPCMessage, Transport } from "@modelcontextprotocol/server"
import type { Readable, Writable } from "node:stream"
import { checkText, sniffId, tooLarge } from "./Limits.js"

/** Bytes kept from the start and the end of an over-long line, to find its id. */
const SNIFF_BYTES = 4096

export class LineTransport implements Transport {
  onclose?: () => void
  onerror?: (error: Error) => void
  onmessage?: (message: JSONRPCMessage) => void

  private chunks: Array<Buffer> = []
  private size = 0
  /** Set while an over-long line is being skipped. */
  private skipping: { bytes: number; head: Buffer; tail: Buffer } | undefined
  private closed = false
  private markClosed: () => void = () => undefined
  /** Settles once the transport is closed, by whoever closes it (the SDK owns `onclose`). */
  readonly whenClosed: Promise<void> = new Promise((resolve) => (this.markClosed = resolve))

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    private readonly maxBytes: number,
    /** Says why a message was refused (stderr). */
    private readonly refused: (reason: string, bytes: number) => void
  ) {}

  private readonly onData = (chunk: Buffer) => {
    let start = 0
    for (;;) {
      const nl = chunk.indexOf(10, start)
      if (nl === -1) {
        this.take(chunk.subarray(start))
        return
      }
      this.take(chunk.subarray(start, nl))
      this.endOfLine()
      start = nl + 1
    }
  }

  private readonly onError = (error: Error) => this.onerror?.(error)

  private take(part: Buffer): void {
    if (part.length === 0) return
    if (this.skipping !== undefined) {
      const s = this.skipping
      s.bytes += part.length
      if (s.head.length < SNIFF_BYTES) s.head = Buffer.concat([s.head, part.subarray(0, SNIFF_BYTES - s.head.length)])
      s.tail = Buffer.concat([s.tail, part]).subarray(-SNIFF_BYTES)
      return
    }
    if (this.size + part.length > this.maxBytes) {
      const held = Buffer.concat([...this.chunks, part])
      this.skipping = { bytes: held.length, head: held.subarray(0, SNIFF_BYTES), tail: held.subarray(-SNIFF_BYTES) }
      this.chunks = []
      this.size = 0
      return
    }
    this.chunks.push(part)
    this.size += part.length
  }

  private endOfLine(): void {
    if (this.skipping !== undefined) {
      const { bytes, head, tail } = this.skipping
      this.skipping = undefined
      this.refused(`message of ${bytes} bytes is above BRIDGE_MAX_MESSAGE_BYTES (${this.maxBytes})`, bytes)
      void this.send(tooLarge(sniffId(head.toString("utf8"), tail.toString("utf8")), bytes, this.maxBytes))
      return
    }
    const line = Buffer.concat(this.chunks).toString("utf8").replace(/\r$/, "")
    const bytes = this.size
    this.chunks = []
    this.size = 0
    if (line.trim() === "") return
    const checked = checkText(line)
    if (checked._tag === "Refused") {
      this.refused(checked.reason, bytes)
      void this.send(checked.answer)
      return
    }
    for (const message of checked.messages) this.onmessage?.(message)
  }

  start(): Promise<void> {
    this.input.on("data", this.onData)
    this.input.on("error", this.onError)
    return Promise.resolve()
  }

  send(message: JSONRPCMessage | ReturnType<typeof tooLarge>): Promise<void> {
    if (this.closed) return Promise.resolve()
    return new Promise((resolve) => {
      if (this.output.write(`${JSON.stringify(message)}\n`)) resolve()
      else this.output.once("drain", () => resolve())
    })
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve()
    this.closed = true
    this.input.off("data", this.onData)
    this.input.off("error", this.onError)
    if (this.input.listenerCount("data") === 0) this.input.pause()
    this.chunks = []
    this.skipping = undefined
    this.markClosed()
    this.onclose?.()
    return Promise.resolve()
  }
}
