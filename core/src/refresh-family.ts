import type { Client, RefreshTokenRecord, RefreshTokens, Store, TokenSettings } from './interfaces.js'
import { randomToken, secretKey } from './tokens.js'

/**
 * Refresh tokens and their families (RFC 6749 §6, RFC 9700 §4.14).
 *
 * A token is `<grant id>.<256 random bits>`; the grant id (the family) is public so the
 * store can group a family's entries (one Redis Cluster slot) without a lookup, and the
 * record is stored under the SHA-256 of the whole token, never the token itself.
 *
 * With rotation, redeeming consumes the record atomically and leaves a tombstone
 * (`rtu:`). Presenting a token whose tombstone exists means it was rotated out: a
 * replay, so the whole family is revoked. `refreshTokenReuseInterval` seconds after a
 * rotation the tombstone is still honoured for the same client, which absorbs the
 * parallel-refresh race of single-page apps (IdentityServer4#3015); it is 0 by default.
 */
export class RefreshFamily implements RefreshTokens {
  constructor(private readonly store: Store, private readonly settings: TokenSettings) {}

  async issue(record: Omit<RefreshTokenRecord, 'iat' | 'exp'>, ttlSeconds: number): Promise<string> {
    const token = `${record.grant_id}.${randomToken(32)}`
    const now = Math.floor(Date.now() / 1000)
    const full: RefreshTokenRecord = { ...record, iat: now, exp: now + ttlSeconds }
    await this.store.put(`rt:${secretKey(token)}`, JSON.stringify(full), ttlSeconds, { family: record.grant_id })
    return token
  }

  async redeem(token: string, client: Client): Promise<RefreshTokenRecord | undefined> {
    const family = familyOf(token)
    if (!family) return undefined
    const key = secretKey(token)
    if (await this.store.isFamilyRevoked(family)) return undefined

    if (!this.settings.refreshTokenRotation) {
      const record = parse(await this.store.get(`rt:${key}`, { family }))
      return record && record.client_id === client.client_id && record.grant_id === family ? record : undefined
    }

    const raw = await this.store.consume(`rt:${key}`, { family })
    const record = parse(raw)
    if (record) {
      if (record.client_id !== client.client_id || record.grant_id !== family) {
        // RFC 6749 §10.4: a token presented by another client is a compromise signal.
        await this.store.revokeFamily(family, this.settings.refreshTokenTtl)
        return undefined
      }
      const remaining = record.exp - Math.floor(Date.now() / 1000)
      if (remaining <= 0) return undefined
      const tombstone = JSON.stringify({ rotated_at: Date.now(), record })
      await this.store.put(`rtu:${key}`, tombstone, remaining, { family })
      return record
    }

    const used = await this.store.get(`rtu:${key}`, { family })
    if (used === undefined) return undefined
    const grace = this.settings.refreshTokenReuseInterval
    if (grace > 0) {
      try {
        const { rotated_at, record: prior } = JSON.parse(used) as { rotated_at: number; record: RefreshTokenRecord }
        if (Date.now() - rotated_at <= grace * 1000 && prior.client_id === client.client_id) return prior
      } catch {
        // fall through to revocation
      }
    }
    await this.store.revokeFamily(family, this.settings.refreshTokenTtl)
    return undefined
  }

  async peek(token: string): Promise<RefreshTokenRecord | undefined> {
    const family = familyOf(token)
    if (!family || (await this.store.isFamilyRevoked(family))) return undefined
    const record = parse(await this.store.get(`rt:${secretKey(token)}`, { family }))
    if (!record || record.exp <= Math.floor(Date.now() / 1000)) return undefined
    return record
  }

  async revoke(token: string, client: Client): Promise<void> {
    const record = await this.peek(token)
    // RFC 7009 §2.1: a token of another client is not revoked (and the answer is still 200).
    if (record && record.client_id === client.client_id) await this.store.revokeFamily(record.grant_id, this.settings.refreshTokenTtl)
  }
}

function familyOf(token: string): string | undefined {
  const dot = token.indexOf('.')
  if (dot < 16 || dot > 64 || token.length > 256) return undefined
  const family = token.slice(0, dot)
  return /^[A-Za-z0-9_-]+$/.test(family) ? family : undefined
}

function parse(raw: string | undefined): RefreshTokenRecord | undefined {
  if (raw === undefined) return undefined
  try {
    return JSON.parse(raw) as RefreshTokenRecord
  } catch {
    return undefined
  }
}
