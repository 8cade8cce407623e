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
 * A small index kept as one JSON value, updated with the store's atomic
 * {@link Store.indexUpdate} when it has one, else under a short lock taken with the store's
 * atomic `add` (SET NX on Redis), so it works on every {@link Store} and across processes
 * sharing one: two concurrent updates never lose a member. Expired members are pruned when
 * the list is written (a store's own update may leave some for later); readers filter them.
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

  /**
   * Per long list: the text this process last read or wrote, parsed. A list read back
   * unchanged (its text equal) is not parsed again, and its members keep their JSON text
   * ({@link encode}): a user with many sessions costs a string comparison and a join per
   * sign-in instead of a JSON.parse and a JSON.stringify of the whole list.
   */
  private readonly parsed = new Map<string, { raw: string; members: readonly ListMember[] }>()

  constructor(private readonly store: Store) {}

  async read(key: string): Promise<ListMember[]> {
    return live(this.parse(key, await this.store.get(key)))
  }

  /** Add or replace the member with `member.id`; the list lives as long as its longest member. */
  add(key: string, member: ListMember): Promise<void> {
    const added = Object.freeze({ ...member })
    // A store with an atomic index update does it in one operation (one round trip), no lock.
    // The member's text starts {"id":…,"exp":… (a store may rely on it to walk the list without parsing it).
    if (this.store.indexUpdate) {
      const { id, exp, ...rest } = added
      return this.store.indexUpdate(key, { id, member: JSON.stringify({ id, exp, ...rest }), exp, now: nowSeconds(), maxMembers: MAX_MEMBERS })
    }
    return this.update(key, (list) => [...list.filter((m) => m.id !== added.id), added].slice(-MAX_MEMBERS))
  }

  remove(key: string, id: string): Promise<void> {
    if (this.store.indexUpdate) return this.store.indexUpdate(key, { id, now: nowSeconds(), maxMembers: MAX_MEMBERS })
    return this.update(key, (list) => list.filter((m) => m.id !== id))
  }

  /** Read and delete the whole list. */
  async take(key: string): Promise<ListMember[]> {
    const raw = await this.store.consume(key)
    const list = live(this.parse(key, raw))
    this.parsed.delete(key)
    return list
  }

  private parse(key: string, raw: string | undefined): ListMember[] {
    if (raw === undefined) return []
    const known = this.parsed.get(key)
    if (known !== undefined && known.raw === raw) return [...known.members]
    const members = parse(raw)
    this.remember(key, raw, members)
    return members
  }

  private remember(key: string, raw: string, members: readonly ListMember[]): void {
    if (members.length < MEMO_MIN_MEMBERS) {
      this.parsed.delete(key)
      return
    }
    this.parsed.delete(key)
    if (this.parsed.size >= MEMO_MAX_LISTS) this.parsed.delete(this.parsed.keys().next().value!)
    this.parsed.set(key, { raw, members })
  }

  private update(key: string, change: Change): Promise<void> {
    const queued = this.waiting.get(key)
    if (queued) {
      queued.changes.push(change)
      return queued.done
    }
    const changes = [change]
    // Started a microtask later, so the changes made in the same tick join this batch.
    const done = (this.tails.get(key) ?? Promise.resolve()).then(() => {
      // Started: later changes form the next batch.
      this.waiting.delete(key)
      return this.write(key, changes)
    })
    this.waiting.set(key, { changes, done })
    const settled = (): void => {
      if (this.tails.get(key) === tail) this.tails.delete(key)
    }
    const tail: Promise<void> = done.then(settled, settled)
    this.tails.set(key, tail)
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
      let list = live(this.parse(key, await this.store.get(key)))
      for (const change of changes) list = change(list)
      if (list.length === 0) {
        this.parsed.delete(key)
        await this.store.delete(key)
      } else {
        const now = Math.floor(Date.now() / 1000)
        const ttl = Math.max(1, Math.max(...list.map((m) => m.exp)) - now)
        const raw = encode(list)
        await this.store.put(key, raw, ttl)
        this.remember(key, raw, list)
      }
    } finally {
      if (locked) await this.store.delete(lock)
    }
  }
}

/** Lists shorter than this are parsed every time (cheap); longer ones are remembered, at most MEMO_MAX_LISTS of them. */
const MEMO_MIN_MEMBERS = 16
const MEMO_MAX_LISTS = 256

/** Each member's JSON text, made once: members are frozen when parsed or added, so it never goes stale. */
const texts = new WeakMap<ListMember, string>()

/** `JSON.stringify(list)`, reusing the members' texts of a long list. */
function encode(list: readonly ListMember[]): string {
  if (list.length < MEMO_MIN_MEMBERS) return JSON.stringify(list)
  let out = '['
  for (let i = 0; i < list.length; i++) {
    const member = list[i]!
    let text = texts.get(member)
    if (text === undefined) {
      text = JSON.stringify(member)
      if (Object.isFrozen(member)) texts.set(member, text)
    }
    out += i === 0 ? text : `,${text}`
  }
  return `${out}]`
}

function parse(raw: string): ListMember[] {
  try {
    const value = JSON.parse(raw) as unknown
    if (!Array.isArray(value)) return []
    const members: ListMember[] = []
    for (const m of value) {
      if (typeof m === 'object' && m !== null && typeof (m as ListMember).id === 'string' && typeof (m as ListMember).exp === 'number') members.push(Object.freeze(m as ListMember))
    }
    return members
  } catch {
    return []
  }
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000)
}

function live(list: ListMember[]): ListMember[] {
  const now = nowSeconds()
  return list.filter((m) => m.exp > now)
}
