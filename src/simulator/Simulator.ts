/**
 * The LM Studio simulator as a scoped resource: an HTTP server on a port (0 = ephemeral) with its own state. Closing
 * the scope stops the server and its TTL sweeper. Used by `lmstudio-bridge simulate`, the demo, tests and benchmarks.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Context, Effect, Layer, type Scope } from "effect"
import { createServer } from "node:http"
import * as SimServer from "./SimServer.js"
import { type SimOptions, SimState } from "./SimState.js"

export interface SimulatorOptions extends SimOptions {
  readonly port?: number | undefined
  readonly host?: string | undefined
}

export interface RunningSimulator {
  readonly baseUrl: string
  readonly port: number
  readonly host: string
  readonly state: SimState["Type"]
}

/** Starts a simulator in the current scope. */
export const start = (options: SimulatorOptions = {}): Effect.Effect<RunningSimulator, never, Scope.Scope> =>
  Effect.gen(function*() {
    const host = options.host ?? "127.0.0.1"
    const state = yield* Layer.build(SimState.layer(options)).pipe(Effect.map(Context.get(SimState)))
    const server = yield* NodeHttpServer.make(() => createServer({ keepAliveTimeout: 65_000 }), {
      port: options.port ?? 0,
      host
    }).pipe(Effect.orDie)
    // The platform starts request handlers uninterruptible; like LM Studio, the simulator stops work for a client that
    // went away, so the handler is made interruptible (streams already are).
    yield* server.serve(SimServer.app.pipe(Effect.provideService(SimState, state), Effect.interruptible))
    const address = server.address
    const port = address._tag === "TcpAddress" ? address.port : 0
    const shownHost = host.includes(":") ? `[${host}]` : host
    return { baseUrl: `http://${shownHost}:${port}`, port, host, state }
  })

export class Simulator extends Context.Tag("lmstudio-bridge/simulator/Simulator")<Simulator, RunningSimulator>() {
  static readonly layer = (options: SimulatorOptions = {}): Layer.Layer<Simulator> =>
    Layer.scoped(Simulator, start(options))
}
