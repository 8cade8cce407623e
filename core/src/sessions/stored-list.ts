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

/**
 * A small index kept as one JSON value, updated under a short lock taken with the store's
 * atomic `add` (SET NX on Redis), so it works on every {@link Store} and across processes
 * sharing one: two concurrent updates never lose a member. Expired members are pruned on
 * every write; readers filter them too.
 */
export class StoredList {
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

  private async update(key: string, change: (list: ListMember[]) => ListMember[]): Promise<void> {
    const lock = `lock:${key}`
    let locked = false
    for (let i = 0; i < LOCK_ATTEMPTS && !locked; i++) {
      locked = await this.store.add(lock, '1', LOCK_TTL_SECONDS)
      if (!locked) await new Promise((r) => setTimeout(r, 5 + Math.random() * 20))
    }
    // A holder that died leaves the lock for at most LOCK_TTL_SECONDS; past our patience we
    // write anyway (an index entry may then be lost, the records it points to are not).
    try {
      const list = change(live(parse(await this.store.get(key))))
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
