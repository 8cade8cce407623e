import { createHmac, timingSafeEqual } from 'node:crypto'

/**
 * Server-provided DPoP nonces (RFC 9449 §8) without shared state: a nonce is the HMAC of the
 * current time window under a secret every process knows. Any process accepts a nonce of the
 * current or the previous window, so a nonce is honoured between `lifetime` and
 * `2 × lifetime` seconds after it was handed out, everywhere, and nothing is stored. A client
 * cannot predict the next window's nonce without the secret, so proofs cannot be made ahead
 * of time (§11.2).
 */
export class NonceSource {
  private readonly keys: Buffer[]

  /** `secrets`: the first makes nonces, all verify (rotation); `lifetime` in seconds. */
  constructor(secrets: readonly string[], private readonly lifetime: number) {
    if (secrets.length === 0) throw new Error('a nonce secret is required')
    // A key of its own, derived from the configured secret, so the secret serves one purpose here.
    this.keys = secrets.map((s) => createHmac('sha256', s).update('grantd dpop nonce v1').digest())
  }

  private mac(key: Buffer, window: number): Buffer {
    return createHmac('sha256', key).update(String(window)).digest()
  }

  /** The nonce to hand out now. */
  current(now = Date.now() / 1000): string {
    return this.mac(this.keys[0]!, Math.floor(now / this.lifetime)).toString('base64url')
  }

  /** Whether `nonce` was handed out in this or the previous window, by any process sharing a secret. */
  isValid(nonce: string, now = Date.now() / 1000): boolean {
    if (!/^[A-Za-z0-9_-]{43}$/.test(nonce)) return false
    const given = Buffer.from(nonce, 'base64url')
    const window = Math.floor(now / this.lifetime)
    let ok = false
    for (const key of this.keys) {
      for (const w of [window, window - 1]) {
        // Constant time, and no early exit: every candidate is compared.
        if (timingSafeEqual(given, this.mac(key, w))) ok = true
      }
    }
    return ok
  }
}
