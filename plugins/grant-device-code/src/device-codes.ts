import { OAuthError, randomToken, secretKey, type Store } from '@grantd/core'
import { generateUserCode } from './user-code.js'

/** Where a device authorization stands (RFC 8628 §3.5). */
export type DeviceStatus = 'pending' | 'approved' | 'denied'

/** What the store keeps about a device authorization, keyed by the hash of its `device_code`. */
export interface DeviceRecord {
  readonly client_id: string
  readonly scope: readonly string[]
  /** The issuer the request came to (the verification page is built from it). */
  readonly iss: string
  /** Seconds since the epoch when the codes expire. */
  readonly exp: number
  /** The polling interval the client was given (slow_down adds to it). */
  readonly interval: number
  readonly status: DeviceStatus
  /** Set once the user decided: who, in which SSO session, how they signed in. */
  readonly sub?: string
  readonly sid?: string
  readonly auth_time?: number
  readonly amr?: readonly string[]
  readonly acr?: string
  readonly tenant?: string
}

/** A device authorization just created (RFC 8628 §3.2). */
export interface IssuedDeviceCode {
  readonly deviceCode: string
  readonly userCode: string
  /** The record's store id: the hash of the device code, never the code itself. */
  readonly id: string
}

/**
 * The device codes in the store. Every key derives from a secret by hashing (SPEC §9): the
 * record under `device:H(device_code)`, the user code's index `device-uc:H(user_code)` → the
 * record id. Records outlive `exp` by a grace period so that a late poll learns
 * `expired_token` instead of `invalid_grant`.
 */
export class DeviceCodes {
  constructor(private readonly store: () => Store, private readonly expiresIn: number) {}

  /** How long after `exp` an expired record is still recognised. */
  private get grace(): number {
    return Math.max(this.expiresIn, 60)
  }

  static recordKey(id: string): string {
    return `device:${id}`
  }

  private userCodeKey(userCode: string): string {
    return `device-uc:${secretKey(userCode)}`
  }

  async issue(input: Omit<DeviceRecord, 'status' | 'exp'>): Promise<IssuedDeviceCode> {
    // RFC 8628 §5.2: the device code is the client's credential: 256 bits, stored hashed.
    const deviceCode = randomToken(32)
    const id = secretKey(deviceCode)
    const exp = Math.floor(Date.now() / 1000) + this.expiresIn
    const record: DeviceRecord = { ...input, status: 'pending', exp }
    await this.store().put(DeviceCodes.recordKey(id), JSON.stringify(record), this.expiresIn + this.grace)
    // A user code must point at one authorization: a collision draws again.
    for (let attempt = 0; attempt < 8; attempt++) {
      const userCode = generateUserCode()
      if (await this.store().add(this.userCodeKey(userCode), id, this.expiresIn)) return { deviceCode, userCode, id }
    }
    await this.store().delete(DeviceCodes.recordKey(id))
    throw new OAuthError('temporarily_unavailable', 'no free user code, try again', { status: 503 })
  }

  /** The record id a (normalised) user code names, while it is live. */
  async idOfUserCode(userCode: string): Promise<string | undefined> {
    return this.store().get(this.userCodeKey(userCode))
  }

  async get(id: string): Promise<DeviceRecord | undefined> {
    const raw = await this.store().get(DeviceCodes.recordKey(id))
    return raw === undefined ? undefined : parseRecord(raw)
  }

  /**
   * Record the user's decision, once: of two concurrent decisions only the first counts.
   * False when the authorization is no longer pending or has expired.
   */
  async decide(id: string, decision: Required<Pick<DeviceRecord, 'status' | 'sub' | 'sid' | 'auth_time'>> & Pick<DeviceRecord, 'amr' | 'acr' | 'tenant'>): Promise<boolean> {
    const now = Math.floor(Date.now() / 1000)
    const current = await this.get(id)
    if (!current || current.status !== 'pending' || current.exp <= now) return false
    if (!(await this.store().add(`device-decided:${id}`, decision.status, current.exp - now + this.grace))) return false
    const updated: DeviceRecord = { ...current, ...decision }
    await this.store().put(DeviceCodes.recordKey(id), JSON.stringify(updated), current.exp - now + this.grace)
    return true
  }

  /**
   * Redeem an approved authorization: an atomic get-and-delete (exactly one of N concurrent
   * polls gets it), leaving a marker so a replay is told apart from an unknown code.
   */
  async redeem(id: string): Promise<DeviceRecord | undefined> {
    const raw = await this.store().consume(DeviceCodes.recordKey(id), { leave: { key: `device-used:${id}`, value: '1', ttlSeconds: this.expiresIn + this.grace } })
    return raw === undefined ? undefined : parseRecord(raw)
  }

  async wasRedeemed(id: string): Promise<boolean> {
    return (await this.store().get(`device-used:${id}`)) !== undefined
  }

  /**
   * RFC 8628 §3.5 polling rate: true when this poll came sooner than the current interval
   * after the previous one. Then the interval grows by 5 seconds, for this and every later
   * poll, in every process sharing the store (the count of slow_downs lives there).
   */
  async tooFast(id: string, record: DeviceRecord): Promise<{ tooFast: boolean; interval: number }> {
    const store = this.store()
    const now = Math.floor(Date.now() / 1000)
    const ttl = Math.max(1, record.exp - now + this.grace)
    const slowed = Number((await store.get(`device-slow:${id}`)) ?? 0) || 0
    const interval = record.interval + 5 * slowed
    if (await store.add(`device-poll:${id}`, '1', interval)) return { tooFast: false, interval }
    const count = await store.increment(`device-slow:${id}`, ttl)
    const grown = record.interval + 5 * count
    // The client must now wait the grown interval from this poll.
    await store.put(`device-poll:${id}`, '1', grown)
    return { tooFast: true, interval: grown }
  }
}

function parseRecord(raw: string): DeviceRecord | undefined {
  try {
    const r = JSON.parse(raw) as DeviceRecord
    if (typeof r.client_id !== 'string' || !Array.isArray(r.scope) || typeof r.exp !== 'number' || typeof r.interval !== 'number') return undefined
    if (r.status !== 'pending' && r.status !== 'approved' && r.status !== 'denied') return undefined
    return r
  } catch {
    return undefined
  }
}
