import { constants, KeyObject, sign, type webcrypto } from 'node:crypto'
import type { SigningAlg } from './keys.js'

/**
 * How node:crypto makes each JWS signature (RFC 7518 §3). ECDSA signatures are the raw
 * `R || S` octets (§3.4), so `ieee-p1363`, not DER; RSASSA-PSS uses MGF1 with the same hash
 * and a salt as long as the hash (§3.5); EdDSA names no digest (RFC 8037 §3.1).
 */
const PARAMS: Record<SigningAlg, { digest: string | null; dsaEncoding?: 'ieee-p1363'; padding?: number; saltLength?: number }> = {
  ES256: { digest: 'sha256', dsaEncoding: 'ieee-p1363' },
  ES384: { digest: 'sha384', dsaEncoding: 'ieee-p1363' },
  RS256: { digest: 'sha256', padding: constants.RSA_PKCS1_PADDING },
  PS256: { digest: 'sha256', padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
  EdDSA: { digest: null },
}

/**
 * A compact JWS signer (RFC 7515 §7.1) over a node:crypto `KeyObject` made once at key
 * load. jose 6 signs only through WebCrypto, which Node runs as a thread-pool job (≈80 µs
 * per ES256 signature plus the hand-off); `crypto.sign` on a KeyObject is synchronous
 * (≈38 µs). jose still imports the keys, publishes the JWKS and verifies every token.
 *
 * The protected header is fixed per signer, so it is serialised and encoded once.
 */
export class JwsSigner {
  readonly alg: SigningAlg
  readonly kid: string
  readonly typ: string
  private readonly key: KeyObject
  private readonly encodedHeader: string
  private readonly options: { key: KeyObject; dsaEncoding?: 'ieee-p1363'; padding?: number; saltLength?: number }
  private readonly digest: string | null

  constructor(key: KeyObject | webcrypto.CryptoKey, header: { alg: SigningAlg; kid: string; typ: string }) {
    this.key = key instanceof KeyObject ? key : KeyObject.from(key)
    if (this.key.type !== 'private') throw new TypeError('a JWS signer needs a private key')
    this.alg = header.alg
    this.kid = header.kid
    this.typ = header.typ
    const { digest, ...rest } = PARAMS[header.alg]
    this.digest = digest
    this.options = { key: this.key, ...rest }
    this.encodedHeader = Buffer.from(JSON.stringify({ alg: header.alg, kid: header.kid, typ: header.typ })).toString('base64url')
  }

  /** `BASE64URL(header) . BASE64URL(payload) . BASE64URL(signature)` of these payload bytes. */
  sign(payload: string | Uint8Array): string {
    const input = `${this.encodedHeader}.${Buffer.from(payload).toString('base64url')}`
    const signature = sign(this.digest, Buffer.from(input, 'latin1'), this.options)
    return `${input}.${signature.toString('base64url')}`
  }
}
