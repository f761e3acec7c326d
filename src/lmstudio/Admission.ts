/**
 * Admission control for LLM requests (DESIGN §6 "Concurrency"): per-model permits and one bounded queue.
 *
 * LM Studio runs `parallel` predictions of a model at once and queues the rest itself; sending it more only holds
 * sockets, buffers and fibers open in the bridge. So each model gets as many permits as LM Studio reports for the
 * instance (`parallel`), else `LLM_PARALLEL_DEFAULT`; requests beyond that wait here, in order, and at most
 * `LLM_QUEUE_LIMIT` wait in all. Past that limit a request fails at once with `BridgeOverloaded` and a retry hint
 * (instead of unbounded memory). Waiting is interruptible: a cancelled call leaves the queue and takes no permit.
 */
import { Effect, Exit } from "effect"
import { AppConfig } from "../Config.js"
import { BridgeOverloaded } from "../domain/Errors.js"
import { errorTypeOfExit, record, timed } from "../observability/Metrics.js"

export interface AdmissionStats {
  /** Requests waiting for a permit, across models. */
  readonly queued: number
  /** Requests holding a permit, by model. */
  readonly inFlight: Readonly<Record<string, number>>
  readonly queueLimit: number
}

/**
 * One model's permits with a FIFO of waiters. A released permit is handed straight to the oldest live waiter, so
 * each release wakes exactly one fiber (Effect's Semaphore wakes every waiter on each release and lets them race,
 * which with a thousand waiters costs quadratic time and memory; measured in docs/benchmarks.md).
 */
class Permits {
  holding = 0
  private readonly waiters: Array<Waiter | undefined> = []
  private head = 0
  waiting = 0

  constructor(
    readonly model: string,
    readonly permits: number
  ) {}

  /** Takes a permit now if one is free and nobody waits; counted at once so concurrent callers never overshoot. */
  tryTake(): boolean {
    if (this.holding < this.permits && this.waiting === 0) {
      this.holding++
      return true
    }
    return false
  }

  enqueue(waiter: Waiter): void {
    this.waiters.push(waiter)
    this.waiting++
  }

  /** A waiter that left (interrupted) before it got a permit. */
  remove(waiter: Waiter): void {
    const i = this.waiters.indexOf(waiter, this.head)
    if (i >= 0) {
      this.waiters[i] = undefined
      this.waiting--
    }
  }

  /** Gives the permit to the oldest waiter, or frees it. */
  release(): void {
    while (this.head < this.waiters.length) {
      const next = this.waiters[this.head]
      this.waiters[this.head++] = undefined
      if (next !== undefined) {
        this.waiting--
        this.compact()
        next.grant()
        return
      }
    }
    this.compact()
    this.holding--
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.waiters.length) {
      this.waiters.splice(0, this.head)
      this.head = 0
    }
  }
}

interface Waiter {
  readonly grant: () => void
}

export class Admission extends Effect.Service<Admission>()("lmstudio-bridge/Admission", {
  effect: Effect.gen(function*() {
    const config = yield* AppConfig
    // One step at a time touches this state (JavaScript runs one fiber step at a time; no step yields mid-update).
    const slots = new Map<string, Permits>()
    let queued = 0
    /** Moving average of how long an admitted request holds its permit, for the retry hint. */
    let averageMs = 1000

    const slotOf = (model: string, permits: number): Permits => {
      // Keyed by permits too: a model reloaded with another `parallel` gets a fresh set of permits.
      const key = `${model}\u0000${permits}`
      let slot = slots.get(key)
      if (slot === undefined) {
        slot = new Permits(model, permits)
        slots.set(key, slot)
      }
      return slot
    }

    const overloaded = (permits: number) =>
      new BridgeOverloaded({
        queued,
        limit: config.llmQueueLimit,
        retryAfterSeconds: Math.max(1, Math.ceil((averageMs * (queued / permits + 1)) / 1000))
      })

    /**
     * Waits in the model's FIFO until a permit is handed over, leaving the queue when interrupted; refused at once
     * when the queue is full (checked and counted in one step).
     */
    const wait = (slot: Permits, permits: number) =>
      Effect.async<void, BridgeOverloaded>((resume) => {
        if (queued >= config.llmQueueLimit) return resume(Effect.fail(overloaded(permits)))
        queued++
        const waiter: Waiter = {
          grant: () => {
            queued--
            resume(Effect.void)
          }
        }
        slot.enqueue(waiter)
        return Effect.sync(() => {
          queued--
          slot.remove(waiter)
        })
      })

    const depth = (n: number) => record((r) => r.update("queueDepth", n, []))

    /** The wait with its metrics: the queue's depth as it changes, how long the wait took and how it ended. */
    const observedWait = (slot: Permits, permits: number) =>
      Effect.zipRight(
        depth(Math.min(queued + 1, config.llmQueueLimit)),
        timed(wait(slot, permits), (r, seconds, exit) =>
          r.update("queueWait", seconds, [
            Exit.isSuccess(exit) ? "admitted" : errorTypeOfExit(exit) === "BridgeOverloaded" ? "refused" : "cancelled"
          ])).pipe(Effect.ensuring(Effect.suspend(() => depth(queued))))
      )

    /**
     * Runs `effect` (one LLM request for `model`) under the model's permits. `parallel`: what LM Studio reports for
     * the loaded instance, when known.
     */
    const run = <A, E, R>(
      model: string,
      parallel: number | undefined,
      effect: Effect.Effect<A, E, R>
    ): Effect.Effect<A, E | BridgeOverloaded, R> =>
      Effect.clockWith((clock) =>
        // Uninterruptible between taking a permit and installing its release; the request and the wait are not.
        Effect.uninterruptibleMask((restore) =>
          Effect.suspend((): Effect.Effect<A, E | BridgeOverloaded, R> => {
            const permits = parallel !== undefined && Number.isInteger(parallel) && parallel >= 1
              ? parallel
              : config.llmParallelDefault
            const slot = slotOf(model, permits)
            const held = Effect.suspend(() => {
              const t0 = clock.unsafeCurrentTimeMillis()
              return Effect.ensuring(
                restore(effect),
                Effect.sync(() => {
                  averageMs = averageMs * 0.9 + (clock.unsafeCurrentTimeMillis() - t0) * 0.1
                  slot.release()
                })
              )
            })
            if (slot.tryTake()) return held
            return Effect.zipRight(restore(observedWait(slot, permits)), held)
          })
        )
      )

    const stats = Effect.sync((): AdmissionStats => {
      const inFlight: Record<string, number> = {}
      for (const slot of slots.values()) {
        if (slot.holding > 0) inFlight[slot.model] = (inFlight[slot.model] ?? 0) + slot.holding
      }
      return { queued, inFlight, queueLimit: config.llmQueueLimit }
    })

    return { run, stats } as const
  })
}) {}
