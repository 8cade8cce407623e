import type { Client, RefreshTokenRecord, RefreshTokens, Store, TokenSettings } from '../interfaces.js'
import { randomToken, secretKey } from './tokens.js'

/** What a rotated-out token leaves behind: when it was rotated and what it said. */
interface Tombstone {
  rotated_at: number
  record: RefreshTokenRecord
}

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
 * atomic store call. The tombstone is written *before* the consume, so whoever finds the record
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

  async issue(record: Omit<RefreshTokenRecord, 'iat' | 'exp'>, ttlSeconds: number): Promise<string> {
    const token = `${record.grant_id}.${randomToken(32)}`
    const now = Math.floor(Date.now() / 1000)
    const full: RefreshTokenRecord = { ...record, iat: now, exp: now + ttlSeconds }
    await this.store.put(`rt:${secretKey(token)}`, JSON.stringify(full), ttlSeconds, { family: record.grant_id })
    return token
  }

  async redeem(token: string, client: Client, check?: (record: RefreshTokenRecord) => Promise<void> | void): Promise<RefreshTokenRecord | undefined> {
    const family = familyOf(token)
    if (!family) return undefined
    const key = secretKey(token)
    // Independent reads go out together: one round trip to a pipelining store.
    const [revoked, raw] = await Promise.all([this.store.isFamilyRevoked(family), this.store.get(`rt:${key}`, { family })])
    if (revoked) return undefined
    const record = live(parse(raw), family)

    if (record && record.client_id !== client.client_id) {
      // RFC 6749 §10.4: a refresh token presented by another client is a compromise signal.
      await this.revokeFamily(family)
      return undefined
    }
    if (record && check) await check(record)
    if (!this.rotates(client)) return record

    if (record) {
      const remaining = Math.max(1, record.exp - Math.floor(Date.now() / 1000))
      // The Tombstone shape, built around the stored text (JSON.parse accepted it) instead of re-serialising the record.
      const leave = { key: `rtu:${key}`, value: `{"rotated_at":${Date.now()},"record":${raw!}}`, ttlSeconds: remaining }
      if ((await this.store.consume(`rt:${key}`, { family, leave })) !== undefined) return record
      // Another redemption consumed it between our read and our consume: this one is the reuse.
    }
    return this.reused(family, key, client, check)
  }

  /** A token whose record is gone: unknown (no tombstone), a tolerated parallel refresh, or a replay. */
  private async reused(family: string, key: string, client: Client, check?: (record: RefreshTokenRecord) => Promise<void> | void): Promise<RefreshTokenRecord | undefined> {
    const tombstone = parseTombstone(await this.store.get(`rtu:${key}`, { family }))
    if (!tombstone) return undefined
    const grace = this.settings.refreshTokenReuseInterval
    if (grace > 0 && tombstone.record.client_id === client.client_id && Date.now() - tombstone.rotated_at <= grace * 1000) {
      if (check) await check(tombstone.record)
      return tombstone.record
    }
    const tenant = tombstone.record.context?.tenant
    this.onReuse?.({ client_id: tombstone.record.client_id, sub: tombstone.record.sub, ...(typeof tenant === 'string' ? { tenant } : {}) })
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
