/**
 * Pays for itself: `RcMap` with a Scope per use cost ~0.1 ms of CPU per inference call; a ready lease here costs two
 * counter updates (docs/benchmarks.md, "Model lifecycle").
 *
 * Leases: keyed, shared, reference-counted resources that are released after being idle for their own TTL — what
 * `RcMap` does, without a `Scope` per use.
 *
 * - The first user of a key starts its acquisition in a fiber of the table's scope; later users of the same key wait
 *   for that one acquisition (one model load however many calls ask at once). A failed acquisition is forgotten, so
 *   the next user tries again.
 * - Users waiting for an acquisition can be interrupted; when the last one leaves before it finishes, the acquisition
 *   is interrupted too (a stuck load does not outlive everyone who wanted it).
 * - When the last user of a ready lease leaves, the idle clock starts: after `idleTimeToLive` without a user the
 *   resource is released. One sleeping fiber per idle key, started on the first idle moment and kept while uses come
 *   and go (each use only moves its deadline). Time comes only from `Clock` and `Effect.sleep`: `TestClock` drives it.
 * - `invalidate` forgets a key: released at once when nobody holds it, else when its last user leaves. Given the
 *   resource a user saw, it forgets the key only if that is still the key's resource: a user that learns late that
 *   its resource went stale cannot throw away the fresh one another user already acquired.
 * - `acquire` hands out a hold to give back later (for work that swaps its resource half-way, as a run does when its
 *   model had to be loaded again).
 * - When the table's scope closes, every acquisition and idle fiber is interrupted and every ready resource released.
 */
import { Clock, Deferred, Effect, Fiber, type Scope } from "effect"

/** A resource held until `release` runs (once; later runs do nothing). */
export interface Hold<A> {
  readonly resource: A
  readonly release: Effect.Effect<void>
}

export interface Leases<K, A, E> {
  /** Runs `use` with the resource of `key` held: acquired (or shared) first, never released while `use` runs. */
  readonly withLease: <B, E2, R>(key: K, use: (resource: A) => Effect.Effect<B, E2, R>) => Effect.Effect<B, E | E2, R>
  /**
   * Holds the resource of `key` until the hold is released. Call it inside `Effect.uninterruptibleMask` and pass its
   * `restore`: the wait for the resource stays interruptible, and the hold cannot be lost between acquiring and storing.
   */
  readonly acquire: (
    key: K,
    restore: <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>
  ) => Effect.Effect<Hold<A>, E>
  /** The resource of `key`, acquired if needed and given back at once (its idle clock starts). */
  readonly get: (key: K) => Effect.Effect<A, E>
  /**
   * Forgets `key`: its resource is released now if unused, else when its last user leaves. With `seen`, only when the
   * key's resource is still `seen` (compared by identity).
   */
  readonly invalidate: (key: K, seen?: A) => Effect.Effect<void>
  /** Keys present (acquiring, held or idle). */
  readonly size: Effect.Effect<number>
}

export interface LeasesOptions<K, A, E> {
  /** The identity of a key (equal strings share one resource). */
  readonly id: (key: K) => string
  readonly acquire: (key: K) => Effect.Effect<A, E>
  readonly release: (key: K, resource: A) => Effect.Effect<void>
  /** How long a resource nobody uses is kept, in milliseconds. */
  readonly idleTimeToLiveMs: (key: K) => number
}

interface Entry<K, A, E> {
  readonly id: string
  readonly key: K
  readonly done: Deferred.Deferred<A, E>
  refs: number
  /** Set once the acquisition succeeded. */
  ready: boolean
  resource: A | undefined
  /** Still the table's entry for its id (not invalidated, not expired). */
  current: boolean
  acquiring: Fiber.RuntimeFiber<void> | undefined
  idle: Fiber.RuntimeFiber<void> | undefined
  expiresAt: number
}

export const make = <K, A, E>(options: LeasesOptions<K, A, E>): Effect.Effect<Leases<K, A, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    // Plain mutable state is safe: JavaScript runs one fiber step at a time, and no update below yields half-way.
    const entries = new Map<string, Entry<K, A, E>>()
    let closed = false

    const releaseResource = (entry: Entry<K, A, E>): Effect.Effect<void> =>
      entry.ready ? options.release(entry.key, entry.resource as A) : Effect.void

    const forget = (entry: Entry<K, A, E>) => {
      if (entry.current) {
        entry.current = false
        if (entries.get(entry.id) === entry) entries.delete(entry.id)
      }
    }

    const idleLoop = (entry: Entry<K, A, E>): Effect.Effect<void> =>
      Effect.clockWith((clock) => {
        const remaining = entry.expiresAt - clock.unsafeCurrentTimeMillis()
        if (remaining > 0) return Effect.flatMap(Effect.sleep(remaining), () => idleLoop(entry))
        if (entry.refs > 0 || !entry.current || closed) return Effect.void
        forget(entry)
        // Once begun, a release runs to its end (closing the table waits for it rather than cutting it off).
        return Effect.uninterruptible(releaseResource(entry))
      })

    /** One user fewer; the last one out starts the idle clock (or releases a forgotten resource). */
    const leave = (entry: Entry<K, A, E>): Effect.Effect<void> =>
      Effect.suspend(() => {
        entry.refs--
        if (entry.refs > 0 || closed) return Effect.void
        if (!entry.ready) {
          // Nobody waits for this acquisition any more: stop it.
          forget(entry)
          const acquiring = entry.acquiring
          return acquiring ? Fiber.interrupt(acquiring).pipe(Effect.asVoid) : Effect.void
        }
        if (!entry.current) return releaseResource(entry)
        return Clock.currentTimeMillis.pipe(
          Effect.flatMap((now) => {
            entry.expiresAt = now + options.idleTimeToLiveMs(entry.key)
            if (entry.idle !== undefined) return Effect.void
            return idleLoop(entry).pipe(
              Effect.ensuring(Effect.sync(() => (entry.idle = undefined))),
              Effect.interruptible,
              Effect.forkIn(scope),
              Effect.map((fiber) => {
                // The loop may have finished already (a zero TTL): only a running fiber is remembered.
                if (fiber.unsafePoll() === null) entry.idle = fiber
              })
            )
          })
        )
      })

    const start = (key: K, id: string): Effect.Effect<Entry<K, A, E>> =>
      Effect.map(Deferred.make<A, E>(), (done) => {
        const entry: Entry<K, A, E> = {
          id,
          key,
          done,
          refs: 0,
          ready: false,
          resource: undefined,
          current: true,
          acquiring: undefined,
          idle: undefined,
          expiresAt: 0
        }
        entries.set(id, entry)
        return entry
      }).pipe(
        Effect.tap((entry) =>
          options.acquire(key).pipe(
            Effect.interruptible,
            Effect.exit,
            Effect.flatMap((exit) =>
              Effect.suspend(() => {
                entry.acquiring = undefined
                if (exit._tag === "Success") {
                  entry.resource = exit.value
                  entry.ready = true
                } else {
                  forget(entry)
                }
                return Deferred.done(entry.done, exit)
              })
            ),
            Effect.asVoid,
            // Stopped (the last waiter left, or the table closed): `leave` and the finalizer deal with the entry.
            Effect.forkIn(scope),
            Effect.map((fiber) => {
              if (fiber.unsafePoll() === null) entry.acquiring = fiber
            })
          )
        )
      )

    /** Joins the entry of `key` (starting its acquisition if needed) and waits until it is ready. */
    const enter = (
      key: K,
      restore: <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>
    ): Effect.Effect<Entry<K, A, E>, E> =>
      Effect.suspend(() => {
        if (closed) return Effect.interrupt
        const id = options.id(key)
        const existing = entries.get(id)
        if (existing !== undefined && existing.ready) {
          existing.refs++
          return Effect.succeed(existing)
        }
        const joined = existing !== undefined ? Effect.succeed(existing) : start(key, id)
        return Effect.flatMap(joined, (entry) => {
          entry.refs++
          return restore(Deferred.await(entry.done)).pipe(
            Effect.onExit((exit) => (exit._tag === "Success" ? Effect.void : leave(entry))),
            Effect.as(entry)
          )
        })
      })

    const withLease: Leases<K, A, E>["withLease"] = (key, use) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(enter(key, restore), (entry) => Effect.ensuring(restore(use(entry.resource as A)), leave(entry)))
      )

    const acquire: Leases<K, A, E>["acquire"] = (key, restore) =>
      Effect.map(enter(key, restore), (entry) => {
        let released = false
        return {
          resource: entry.resource as A,
          release: Effect.suspend(() => {
            if (released) return Effect.void
            released = true
            return leave(entry)
          })
        }
      })

    const invalidate = (key: K, seen?: A): Effect.Effect<void> =>
      Effect.suspend(() => {
        const entry = entries.get(options.id(key))
        if (entry === undefined) return Effect.void
        if (seen !== undefined && (!entry.ready || entry.resource !== seen)) return Effect.void
        forget(entry)
        if (entry.refs > 0 || !entry.ready) return Effect.void
        const idle = entry.idle
        return Effect.zipRight(idle ? Fiber.interrupt(idle) : Effect.void, releaseResource(entry))
      })

    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        const all = [...entries.values()]
        entries.clear()
        return Effect.forEach(
          all,
          (entry) =>
            Effect.forEach([entry.acquiring, entry.idle], (f) => (f ? Fiber.interrupt(f) : Effect.void), {
              discard: true
            }).pipe(
              // An acquisition interrupted before it began never completes its waiters itself.
              Effect.zipRight(Deferred.interrupt(entry.done)),
              Effect.zipRight(releaseResource(entry))
            ),
          { discard: true }
        )
      })
    )

    return {
      withLease,
      acquire,
      get: (key) => withLease(key, Effect.succeed),
      invalidate,
      size: Effect.sync(() => entries.size)
    }
  })
