import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { JWK } from 'jose'
import type { StoreKeysSettings } from '../config.js'
import { ConfigError } from '../errors.js'
import type { Logger, Store } from '../interfaces.js'
import { generatePrivateJwk, KeySet, type KeyStatus, type SigningAlg } from './keys.js'

const DAY_MS = 86_400_000
/** The key set's record and the lock its writers take (the store adds its own prefix). */
export const KEY_RECORD = 'grantd-keys:set'
export const KEY_LOCK = 'grantd-keys:lock'
/** Rewritten at every rotation; the TTL only has to outlive the longest quiet period. */
const RECORD_TTL_SECONDS = 10 * 365 * 86_400
const LOCK_TTL_SECONDS = 30
/** A verifier that keeps a JWKS longer than its Cache-Control (jwks-rsa: hours) still gets a day's notice. */
const MIN_PUBLISH_AHEAD_MS = DAY_MS
/** What the JWKS response tells caches in store mode: far below the publish-ahead period. */
export const STORE_JWKS_MAX_AGE = 3600
/** Clock skew between processes and verifiers, and the poll lag of a process still signing with a key. */
const SKEW_MS = 60_000

/** One key as the store keeps it: the private JWK encrypted, its schedule in clear. */
interface StoredKey {
  kid: string
  alg: SigningAlg
  /** AES-256-GCM of the private JWK: iv.ciphertext.tag, base64url. */
  enc: string
  /** Published from creation; signs from `signFrom` (ms). */
  signFrom: number
  /** Set when a successor is scheduled: signs until then, then retired. */
  signUntil?: number
}

interface KeyRecord {
  v: 1
  keys: StoredKey[]
}

/**
 * Publish-ahead: rotateDays/4, and never under a day (SPEC §13). `rotateDays` is at least
 * 4 (config.ts), so the two agree.
 */
export function publishAheadMs(settings: Pick<StoreKeysSettings, 'rotateDays'>): number {
  return Math.max(MIN_PUBLISH_AHEAD_MS, (settings.rotateDays * DAY_MS) / 4)
}

function aesKey(secret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'grantd store keys', 'grantd private signing keys at rest v1', 32))
}

/**
 * Keys in the store (SPEC §13, `keys.source: "store"`). Each key's state follows from its
 * schedule and the clock, so every process that reads the same record at the same time
 * signs with the same key, without a write at promotion:
 *   now < signFrom → next (published only); signFrom ≤ now < signUntil → current;
 *   signUntil ≤ now < signUntil + longest token lifetime (+ skew and poll lag) → retired; then gone.
 * A write happens only to create a key (bootstrap, or a successor `publishAhead` before it
 * signs) and, with it, to prune keys whose tokens have all expired. Writers hold a lock
 * taken with Store.add, and re-read under it, so two processes never both create a key.
 */
export class StoreKeySource {
  private record: KeyRecord = { v: 1, keys: [] }
  private readonly jwkCache = new Map<string, JWK>()
  private signature = ''
  private keys: KeySet | undefined
  private timer: NodeJS.Timeout | undefined
  private readonly aes: Buffer[]
  private refreshing: Promise<KeySet | undefined> | undefined

  constructor(
    private readonly store: Store,
    private readonly settings: StoreKeysSettings,
    /** Longest lifetime of a token the keys sign, in seconds (read at each refresh: a reload may change it). */
    private readonly tokenLifetime: () => number,
    private readonly log: Logger,
    private readonly clock: () => number = Date.now,
  ) {
    this.aes = settings.secrets.map(aesKey)
  }

  get current(): KeySet {
    if (!this.keys) throw new Error('store keys not loaded')
    return this.keys
  }

  /** Load (creating the first keys if the store has none) before the server listens. */
  async init(): Promise<KeySet> {
    const deadline = Date.now() + 15_000
    for (;;) {
      await this.read()
      if (this.needsWrite(this.clock())) await this.writeUnderLock()
      const built = await this.build(this.clock())
      if (built) return built
      // Another process holds the lock and is creating the first keys: wait for them.
      if (Date.now() > deadline) throw new ConfigError('keys: the store has no usable keys and none could be created (another process holds the key lock?)')
      await new Promise((r) => setTimeout(r, 250))
    }
  }

  /** Poll every `pollSeconds`; `onChange` gets each new key set. */
  start(onChange: (keys: KeySet) => void): void {
    this.timer = setInterval(() => {
      void this.refresh().then((keys) => { if (keys) onChange(keys) })
    }, this.settings.pollSeconds * 1000)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
  }

  /** Re-read the store, rotate when due; the key set at this time (the same object while nothing changed), undefined on failure. Never throws. */
  refresh(): Promise<KeySet | undefined> {
    this.refreshing ??= (async () => {
      try {
        await this.read()
        if (this.needsWrite(this.clock())) await this.writeUnderLock()
        return (await this.build(this.clock())) ?? this.keys
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'store keys: refresh failed; the current keys keep serving')
        return undefined
      } finally {
        this.refreshing = undefined
      }
    })()
    return this.refreshing
  }

  private async read(): Promise<void> {
    const raw = await this.store.get(KEY_RECORD)
    if (raw === undefined) {
      this.record = { v: 1, keys: [] }
      return
    }
    const parsed = JSON.parse(raw) as KeyRecord
    if (parsed.v !== 1 || !Array.isArray(parsed.keys)) throw new Error('the key record in the store has an unknown format')
    this.record = parsed
  }

  private retention(): number {
    return this.tokenLifetime() * 1000 + 2 * SKEW_MS
  }

  /** What `plan` would change in the record at this time. */
  private needsWrite(now: number): boolean {
    return plan(structuredClone(this.record), this.settings, now, this.retention()).changed
  }

  private async writeUnderLock(): Promise<void> {
    const token = randomUUID()
    if (!(await this.store.add(KEY_LOCK, token, LOCK_TTL_SECONDS))) return
    try {
      // Another process may have written between our read and our lock.
      await this.read()
      const now = this.clock()
      const { record, create } = plan(this.record, this.settings, now, this.retention())
      for (const c of create) {
        const jwk = await generatePrivateJwk(c.alg)
        const kid = String(jwk.kid)
        this.jwkCache.set(kid, jwk)
        record.keys.push({ kid, alg: c.alg, enc: this.encrypt(jwk, kid), signFrom: c.signFrom })
        this.log.info({ kid, alg: c.alg, signs_from: new Date(c.signFrom).toISOString() }, c.signFrom > now ? 'store keys: published a new key ahead of signing' : 'store keys: created the first key')
      }
      await this.store.put(KEY_RECORD, JSON.stringify(record), RECORD_TTL_SECONDS)
      this.record = record
    } finally {
      await this.store.delete(KEY_LOCK).catch(() => false)
    }
  }

  /** The key set at `now`; the same object while nothing changed. Undefined when nothing signs yet. */
  private async build(now: number): Promise<KeySet | undefined> {
    const retention = this.retention()
    const published: Array<{ key: StoredKey; status: KeyStatus }> = []
    for (const key of this.record.keys) {
      const status = statusAt(key, now, retention)
      if (status) published.push({ key, status })
    }
    const order = (alg: SigningAlg) => {
      const i = this.settings.algs.indexOf(alg)
      return i < 0 ? this.settings.algs.length : i
    }
    // The first current key signs access tokens by default: follow keys.algs' order.
    published.sort((a, b) => order(a.key.alg) - order(b.key.alg) || a.key.signFrom - b.key.signFrom)
    if (!published.some((p) => p.status === 'current')) return undefined
    const signature = published.map((p) => `${p.key.kid}:${p.status}`).join(',')
    if (this.keys && signature === this.signature) return this.keys
    const jwks = published.map((p) => ({ ...this.decrypt(p.key), status: p.status }))
    this.keys = await KeySet.fromJwks({ keys: jwks }, 'keys (store)')
    this.signature = signature
    return this.keys
  }

  private encrypt(jwk: JWK, kid: string): string {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.aes[0]!, iv)
    cipher.setAAD(Buffer.from(kid))
    const body = Buffer.concat([cipher.update(JSON.stringify(jwk), 'utf8'), cipher.final()])
    return `${iv.toString('base64url')}.${body.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`
  }

  private decrypt(key: StoredKey): JWK {
    const cached = this.jwkCache.get(key.kid)
    if (cached) return cached
    const [iv, body, tag] = key.enc.split('.').map((p) => Buffer.from(p, 'base64url'))
    for (const aes of this.aes) {
      try {
        const decipher = createDecipheriv('aes-256-gcm', aes, iv!)
        decipher.setAAD(Buffer.from(key.kid))
        decipher.setAuthTag(tag!)
        const jwk = JSON.parse(Buffer.concat([decipher.update(body!), decipher.final()]).toString('utf8')) as JWK
        this.jwkCache.set(key.kid, jwk)
        return jwk
      } catch {
        // try the next secret (cookies.keys rotation)
      }
    }
    throw new ConfigError(`keys (store): cannot decrypt key ${key.kid}: keys.secret (or cookies.keys) differs from the one it was stored with`)
  }
}

/** A key's status at `now`, or undefined once every token it signed has expired. */
export function statusAt(key: Pick<StoredKey, 'signFrom' | 'signUntil'>, now: number, retentionMs: number): KeyStatus | undefined {
  if (now < key.signFrom) return 'next'
  if (key.signUntil === undefined || now < key.signUntil) return 'current'
  return now < key.signUntil + retentionMs ? 'retired' : undefined
}

/**
 * The record's next state at `now` (mutates and returns it): a first key per alg, a
 * successor published `publishAhead` before the current key's `rotateDays` end (never
 * signing sooner than that after its publication), keys of algs no longer configured
 * retired, and keys whose tokens have all expired pruned.
 */
export function plan(record: KeyRecord, settings: Pick<StoreKeysSettings, 'rotateDays' | 'algs'>, now: number, retentionMs: number): { record: KeyRecord; create: Array<{ alg: SigningAlg; signFrom: number }>; changed: boolean } {
  const ahead = publishAheadMs(settings)
  const rotate = settings.rotateDays * DAY_MS
  const create: Array<{ alg: SigningAlg; signFrom: number }> = []
  let changed = false
  const before = record.keys.length
  record.keys = record.keys.filter((k) => statusAt(k, now, retentionMs) !== undefined)
  if (record.keys.length !== before) changed = true
  for (const key of record.keys) {
    if (!settings.algs.includes(key.alg) && key.signUntil === undefined) {
      key.signUntil = Math.max(now, key.signFrom)
      changed = true
    }
  }
  for (const alg of settings.algs) {
    const chain = record.keys.filter((k) => k.alg === alg).sort((a, b) => a.signFrom - b.signFrom)
    const last = chain[chain.length - 1]
    if (!last || (last.signUntil !== undefined && last.signUntil <= now)) {
      // Nothing of this alg signs, so no verifier can hold a stale set for it: sign at once.
      create.push({ alg, signFrom: now })
    } else if (last.signUntil === undefined && now >= last.signFrom + rotate - ahead) {
      const signFrom = Math.max(now + ahead, last.signFrom + rotate)
      last.signUntil = signFrom
      create.push({ alg, signFrom })
    }
  }
  if (create.length > 0) changed = true
  return { record, create, changed }
}

/**
 * Tests only: `GRANTD_TEST_CLOCK_FILE` names a file holding a millisecond offset added to
 * the key lifecycle's clock, so a test can move a child process through days of rotation.
 * Token times (iat, exp) keep the real clock.
 */
export function testClockFromEnv(log: Logger): (() => number) | undefined {
  const file = process.env.GRANTD_TEST_CLOCK_FILE
  if (!file) return undefined
  log.warn({ file }, 'GRANTD_TEST_CLOCK_FILE is set: the key lifecycle runs on a test clock (never set this in production)')
  return () => {
    let offset = 0
    try {
      offset = Number(readFileSync(file, 'utf8').trim()) || 0
    } catch {
      // no file yet: real time
    }
    return Date.now() + offset
  }
}
