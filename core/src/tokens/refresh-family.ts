import { OAuthError } from '../errors.js'
import type { Client, RefreshTokenRecord, RefreshTokens, Store, StoreEntry, TokenSettings } from '../interfaces.js'
import { randomToken, secretKey } from './tokens.js'

type Check = (record: RefreshTokenRecord) => Promise<void> | void
type NewRecord = Omit<RefreshTokenRecord, 'iat' | 'exp'>

/** What a rotated-out token leaves behind: when it was rotated and what it said. */
interface Tombstone {
  rotated_at: number
  record: RefreshTokenRecord
}

/** A token that was read and checked and that rotation still has to spend. */
interface Redeemed {
  readonly family: string
  /** The SHA-256 of the token (its storage key without the `rt:` prefix). */
  readonly key: string
  /** The stored text of the record, for the tombstone. */
  readonly raw: string
  readonly record: RefreshTokenRecord
  readonly client: Client
  readonly check: Check | undefined
  readonly requestId: string | undefined
}

/** What reading a presented token found: a final answer, or a token to spend first. */
type Found = { readonly record: RefreshTokenRecord | undefined; readonly spend?: undefined } | { readonly spend: Redeemed }

/**
 * Refresh tokens and their families (RFC 6749 §6, RFC 9700 §4.14).
 *
 * A token is `<grant id>.<256 random bits>`; the grant id (the family) is public so the
 * store can group a family's entries (one Redis Cluster slot) without a lookup, and the
 * record is stored under the SHA-256 of the whole token, never the token itself.
 *
 * Public clients' tokens always rotate (RFC 9700 §4.14.2), confidential clients' when
 * `refreshTokenRotation` is on ({@link RefreshFamily.rotates}).
 *
 * With rotation, redeeming consumes the record and leaves a tombstone (`rtu:`) in one
 * atomic store call (in a token request, the same call also stores the successor:
 * {@link RefreshRotation}). The tombstone is written *before* the consume, so whoever finds the record
 * gone also finds the tombstone: of two concurrent redemptions one wins and the other is
 * a reuse, never a plain miss. Presenting a rotated-out token revokes the whole family
 * (every refresh token of the grant, and through `gid` every access token).
 *
 * `refreshTokenReuseInterval` seconds after a rotation the tombstone is still honoured
 * for the same client: the parallel-refresh race of single-page apps (two tabs refreshing
 * with the same token, IdentityServer4#3015) then yields two valid branches instead of a
 * revoked family. It is 0 by default: strict one-time use.
 */
export class RefreshFamily implements RefreshTokens {
  /** A revoked family is remembered as long as any of its tokens could still be presented. */
  private readonly revocationTtl: number
  /** Called when a rotated-out token comes back and its family is revoked (metrics). */
  onReuse?: (family: { client_id: string; sub: string; tenant?: string; request_id?: string }) => void

  constructor(private readonly store: Store, private readonly settings: TokenSettings) {
    this.revocationTtl = Math.max(settings.refreshTokenTtl, settings.accessTokenTtl, 1)
  }

  /** The refresh tokens one token request sees: rotation spends the old token and stores the new one in one store call. */
  forRequest(requestId?: string): RefreshRotation {
    return new RefreshRotation(this, requestId)
  }

  async issue(record: NewRecord, ttlSeconds: number): Promise<string> {
    const { token, entry } = this.successor(record, ttlSeconds)
    await this.store.put(entry.key, entry.value, entry.ttlSeconds, { family: record.grant_id })
    return token
  }

  private successor(record: NewRecord, ttlSeconds: number): { token: string; entry: StoreEntry } {
    const token = `${record.grant_id}.${randomToken(32)}`
    const now = Math.floor(Date.now() / 1000)
    const full: RefreshTokenRecord = { ...record, iat: now, exp: now + ttlSeconds }
    return { token, entry: { key: `rt:${secretKey(token)}`, value: JSON.stringify(full), ttlSeconds } }
  }

  async redeem(token: string, client: Client, check?: Check): Promise<RefreshTokenRecord | undefined> {
    const found = await this.find(token, client, check, undefined)
    return found.spend ? this.spend(found.spend) : found.record
  }

  /**
   * Read and check a presented token. Without rotation the record is the answer; with it the
   * record still has to be spent ({@link spend} or {@link rotate}); a record that is gone is
   * answered from its tombstone (unknown, a tolerated parallel refresh, or a replay).
   */
  async find(token: string, client: Client, check: Check | undefined, requestId: string | undefined): Promise<Found> {
    const family = familyOf(token)
    if (!family) return { record: undefined }
    const key = secretKey(token)
    // Independent reads go out together: one round trip to a pipelining store.
    const [revoked, raw] = await Promise.all([this.store.isFamilyRevoked(family), this.store.get(`rt:${key}`, { family })])
    if (revoked) return { record: undefined }
    const record = live(parse(raw), family)

    if (record && record.client_id !== client.client_id) {
      // RFC 6749 §10.4: a refresh token presented by another client is a compromise signal.
      await this.revokeFamily(family)
      return { record: undefined }
    }
    if (record && check) await check(record)
    if (!this.rotates(client)) return { record }
    if (record) return { spend: { family, key, raw: raw!, record, client, check, requestId } }
    return { record: await this.reused(family, key, client, check, requestId) }
  }

  /** Spend a redeemed token: consume it, leaving its tombstone. The loser of a race is a reuse. */
  async spend(r: Redeemed): Promise<RefreshTokenRecord | undefined> {
    if ((await this.store.consume(`rt:${r.key}`, { family: r.family, leave: this.tombstone(r) })) !== undefined) return r.record
    // Another redemption consumed it between our read and our consume: this one is the reuse.
    return this.reused(r.family, r.key, r.client, r.check, r.requestId)
  }

  /**
   * Spend a redeemed token and store its successor `next` (of the same family): one atomic store
   * call where the store has {@link Store.rotate}, else the consume and then, for the winner only,
   * the put. The loser of a race is a reuse: refused (the family revoked), or inside the reuse
   * interval a second branch of the family.
   */
  async rotate(r: Redeemed, next: NewRecord, ttlSeconds: number): Promise<string> {
    const { token, entry } = this.successor(next, ttlSeconds)
    const spend = { family: r.family, leave: this.tombstone(r) }
    let won: string | undefined
    if (this.store.rotate) {
      won = await this.store.rotate(`rt:${r.key}`, { ...spend, next: entry })
    } else {
      won = await this.store.consume(`rt:${r.key}`, spend)
      if (won !== undefined) await this.store.put(entry.key, entry.value, entry.ttlSeconds, { family: r.family })
    }
    if (won !== undefined) return token
    if (!(await this.reused(r.family, r.key, r.client, r.check, r.requestId))) throw spent()
    await this.store.put(entry.key, entry.value, entry.ttlSeconds, { family: r.family })
    return token
  }

  /** The Tombstone shape, built around the stored text (JSON.parse accepted it) instead of re-serialising the record. */
  private tombstone(r: Redeemed): StoreEntry {
    const remaining = Math.max(1, r.record.exp - Math.floor(Date.now() / 1000))
    return { key: `rtu:${r.key}`, value: `{"rotated_at":${Date.now()},"record":${r.raw}}`, ttlSeconds: remaining }
  }

  /** A token whose record is gone: unknown (no tombstone), a tolerated parallel refresh, or a replay. */
  private async reused(family: string, key: string, client: Client, check: Check | undefined, requestId: string | undefined): Promise<RefreshTokenRecord | undefined> {
    const tombstone = parseTombstone(await this.store.get(`rtu:${key}`, { family }))
    if (!tombstone) return undefined
    const grace = this.settings.refreshTokenReuseInterval
    if (grace > 0 && tombstone.record.client_id === client.client_id && Date.now() - tombstone.rotated_at <= grace * 1000) {
      if (check) await check(tombstone.record)
      return tombstone.record
    }
    const tenant = tombstone.record.context?.tenant
    this.onReuse?.({
      client_id: tombstone.record.client_id, sub: tombstone.record.sub, ...(typeof tenant === 'string' ? { tenant } : {}), ...(requestId !== undefined ? { request_id: requestId } : {}),
    })
    await this.revokeFamily(family)
    return undefined
  }

  rotates(client: Client): boolean {
    return this.settings.refreshTokenRotation || !client.confidential
  }

  async peek(token: string): Promise<RefreshTokenRecord | undefined> {
    const family = familyOf(token)
    if (!family || (await this.store.isFamilyRevoked(family))) return undefined
    return live(parse(await this.store.get(`rt:${secretKey(token)}`, { family })), family)
  }

  async revoke(token: string, client: Client): Promise<void> {
    const family = familyOf(token)
    if (!family) return
    const key = secretKey(token)
    // A rotated-out token of the client revokes too: the client says the grant is over.
    const record = (await this.peek(token)) ?? parseTombstone(await this.store.get(`rtu:${key}`, { family }))?.record
    // RFC 7009 §2.1: a token of another client is not revoked (and the answer is still 200).
    if (record && record.client_id === client.client_id && record.grant_id === family) await this.revokeFamily(family)
  }

  private revokeFamily(family: string): Promise<void> {
    return this.store.revokeFamily(family, this.revocationTtl)
  }
}

/**
 * The refresh tokens of one token request. With rotation, {@link redeem} reads and checks the
 * token and returns its record unspent; the grant's successor ({@link issue}, called by the
 * core's issue step) then spends it, leaves its tombstone and is stored in one store call
 * (one Redis round trip instead of two). Exactly one concurrent redemption still wins: the
 * spend is the same atomic consume, only later. Whatever the grant does, the token is spent
 * by the end of the request: {@link settle} spends one that no successor took, and
 * {@link abandon} one whose request failed after it was redeemed (as an immediate spend would have).
 */
export class RefreshRotation implements RefreshTokens {
  private pending: Redeemed | undefined

  constructor(private readonly family: RefreshFamily, private readonly requestId: string | undefined) {}

  async redeem(token: string, client: Client, check?: Check): Promise<RefreshTokenRecord | undefined> {
    const found = await this.family.find(token, client, check, this.requestId)
    if (!found.spend) return found.record
    // A second redemption in one request: the first is spent now, as it would have been.
    if (this.pending) await this.settle()
    this.pending = found.spend
    return found.spend.record
  }

  issue(record: NewRecord, ttlSeconds: number): Promise<string> {
    const pending = this.pending
    if (pending === undefined || pending.family !== record.grant_id) return this.family.issue(record, ttlSeconds)
    this.pending = undefined
    return this.family.rotate(pending, record, ttlSeconds)
  }

  /** Spend a redeemed token that no successor took; a lost race refuses the request (invalid_grant). */
  async settle(): Promise<void> {
    const pending = this.pending
    if (pending === undefined) return
    this.pending = undefined
    if (!(await this.family.spend(pending))) throw spent()
  }

  /** The request failed after the redemption: the token is spent all the same (errors here are not the request's). */
  async abandon(): Promise<void> {
    await this.settle().catch(() => undefined)
  }

  peek(token: string): Promise<RefreshTokenRecord | undefined> {
    return this.family.peek(token)
  }

  revoke(token: string, client: Client): Promise<void> {
    return this.family.revoke(token, client)
  }

  rotates(client: Client): boolean {
    return this.family.rotates(client)
  }
}

function spent(): OAuthError {
  return new OAuthError('invalid_grant', 'the refresh token is invalid, expired, revoked or was already used', { detail: 'spent by a concurrent redemption' })
}

function familyOf(token: string): string | undefined {
  const dot = token.indexOf('.')
  if (dot < 16 || dot > 64 || token.length > 256) return undefined
  const family = token.slice(0, dot)
  return /^[A-Za-z0-9_-]+$/.test(family) ? family : undefined
}

/** The record, if it is unexpired and really of the family its token names. */
function live(record: RefreshTokenRecord | undefined, family: string): RefreshTokenRecord | undefined {
  if (!record || record.grant_id !== family || record.exp <= Math.floor(Date.now() / 1000)) return undefined
  return record
}

function parse(raw: string | undefined): RefreshTokenRecord | undefined {
  if (raw === undefined) return undefined
  try {
    return JSON.parse(raw) as RefreshTokenRecord
  } catch {
    return undefined
  }
}

function parseTombstone(raw: string | undefined): Tombstone | undefined {
  if (raw === undefined) return undefined
  try {
    const value = JSON.parse(raw) as Tombstone
    return typeof value.rotated_at === 'number' && typeof value.record?.client_id === 'string' ? value : undefined
  } catch {
    return undefined
  }
}
