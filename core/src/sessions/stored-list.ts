import type { Store } from '../interfaces.js'

/** One member of a {@link StoredList}, dropped once `exp` (seconds since the epoch) passes. */
export interface ListMember {
  readonly id: string
  readonly exp: number
  readonly [field: string]: string | number | boolean
}

const LOCK_TTL_SECONDS = 5
const LOCK_ATTEMPTS = 50
/** A list is an index (a user's sessions, a session's clients), never unbounded. */
const MAX_MEMBERS = 200

type Change = (list: ListMember[]) => ListMember[]

/** Changes to one list waiting for the update in flight to finish; written together. */
interface Batch {
  readonly changes: Change[]
  readonly done: Promise<void>
}

/**
 * A small index kept as one JSON value, updated under a short lock taken with the store's
 * atomic `add` (SET NX on Redis), so it works on every {@link Store} and across processes
 * sharing one: two concurrent updates never lose a member. Expired members are pruned on
 * every write; readers filter them too.
 *
 * Within one process, updates of a list queue behind the one in flight instead of
 * contending for the store lock (whose loser sleeps 5–25 ms), and the queued ones are
 * applied in order in one locked read-modify-write: a user signing in many times at once
 * costs one read, one parse and one write of the list per batch, not per sign-in.
 */
export class StoredList {
  /** Per list: the batch not started yet, which new changes join. */
  private readonly waiting = new Map<string, Batch>()
  /** Per list: settles when its last batch has been written (or failed). */
  private readonly tails = new Map<string, Promise<void>>()

  constructor(private readonly store: Store) {}

  async read(key: string): Promise<ListMember[]> {
    return live(parse(await this.store.get(key)))
  }

  /** Add or replace the member with `member.id`; the list lives as long as its longest member. */
  add(key: string, member: ListMember): Promise<void> {
    return this.update(key, (list) => [...list.filter((m) => m.id !== member.id), member].slice(-MAX_MEMBERS))
  }

  remove(key: string, id: string): Promise<void> {
    return this.update(key, (list) => list.filter((m) => m.id !== id))
  }

  /** Read and delete the whole list. */
  async take(key: string): Promise<ListMember[]> {
    return live(parse(await this.store.consume(key)))
  }

  private update(key: string, change: Change): Promise<void> {
    const queued = this.waiting.get(key)
    if (queued) {
      queued.changes.push(change)
      return queued.done
    }
    const changes = [change]
    const done = (this.tails.get(key) ?? Promise.resolve()).then(() => {
      // Started: later changes form the next batch.
      this.waiting.delete(key)
      return this.write(key, changes)
    })
    this.waiting.set(key, { changes, done })
    const tail = done.then(ignore, ignore)
    this.tails.set(key, tail)
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key)
    })
    return done
  }

  /** One locked read-modify-write applying `changes` in order. */
  private async write(key: string, changes: readonly Change[]): Promise<void> {
    const lock = `lock:${key}`
    let locked = false
    for (let i = 0; i < LOCK_ATTEMPTS && !locked; i++) {
      locked = await this.store.add(lock, '1', LOCK_TTL_SECONDS)
      if (!locked) await new Promise((r) => setTimeout(r, 5 + Math.random() * 20))
    }
    // A holder that died leaves the lock for at most LOCK_TTL_SECONDS; past our patience we
    // write anyway (an index entry may then be lost, the records it points to are not).
    try {
      let list = live(parse(await this.store.get(key)))
      for (const change of changes) list = change(list)
      if (list.length === 0) await this.store.delete(key)
      else {
        const now = Math.floor(Date.now() / 1000)
        const ttl = Math.max(1, Math.max(...list.map((m) => m.exp)) - now)
        await this.store.put(key, JSON.stringify(list), ttl)
      }
    } finally {
      if (locked) await this.store.delete(lock)
    }
  }
}

function ignore(): void {}

function parse(raw: string | undefined): ListMember[] {
  if (raw === undefined) return []
  try {
    const value = JSON.parse(raw) as unknown
    return Array.isArray(value) ? value.filter((m): m is ListMember => typeof m === 'object' && m !== null && typeof (m as ListMember).id === 'string' && typeof (m as ListMember).exp === 'number') : []
  } catch {
    return []
  }
}

function live(list: ListMember[]): ListMember[] {
  const now = Math.floor(Date.now() / 1000)
  return list.filter((m) => m.exp > now)
}
