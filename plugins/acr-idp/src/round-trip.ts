import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { secretKey } from '@grantd/core'

/**
 * What is remembered between the redirect upstream and the callback. SPEC §9: federation
 * state holds no secret in clear, so the record is stored under the hash of the upstream
 * `state` and encrypted (AES-256-GCM) under a key derived from that same `state` (HKDF).
 * Only the browser and the upstream see `state`: a reader of the store learns neither the
 * pending authorization nor the upstream PKCE `code_verifier`, and cannot forge a callback.
 */
export interface RoundTripRecord {
  /** The pending authorization (as the authorization service loads it). */
  pending: string
  idp: string
  codeVerifier: string
  nonce: string
  redirectUri: string
  /** SHA-256 of the browser-binding cookie. */
  browser: string
}

const INFO = 'grantd acr-idp round trip v1'

function keyOf(state: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(state, 'utf8'), Buffer.alloc(0), INFO, 32))
}

/** The store key of the record for `state` (a hash: the store never holds the state itself). */
export function roundTripKey(state: string): string {
  return `ext:${secretKey(state)}`
}

export function sealRoundTrip(state: string, record: RoundTripRecord): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', keyOf(state), iv)
  cipher.setAAD(Buffer.from(INFO))
  const body = Buffer.concat([cipher.update(JSON.stringify(record), 'utf8'), cipher.final()])
  return [iv, body, cipher.getAuthTag()].map((b) => b.toString('base64url')).join('.')
}

/** The record sealed under `state`, or `undefined` when it does not decrypt (wrong state, altered). */
export function openRoundTrip(state: string, sealed: string): RoundTripRecord | undefined {
  const parts = sealed.split('.')
  if (parts.length !== 3) return undefined
  const [iv, body, tag] = parts.map((p) => Buffer.from(p, 'base64url')) as [Buffer, Buffer, Buffer]
  if (iv.length !== 12 || tag.length !== 16) return undefined
  try {
    const decipher = createDecipheriv('aes-256-gcm', keyOf(state), iv)
    decipher.setAAD(Buffer.from(INFO))
    decipher.setAuthTag(tag)
    const record = JSON.parse(Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8')) as RoundTripRecord
    return typeof record === 'object' && record !== null && typeof record.pending === 'string' ? record : undefined
  } catch {
    return undefined
  }
}
