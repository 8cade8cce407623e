import { createHash } from 'node:crypto'
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify, type JWK, type JWTPayload } from 'jose'

/** JWS algorithms a DPoP proof may use: asymmetric only (RFC 9449 §4.2: never `none`, never a MAC). */
export const ASYMMETRIC_ALGS: readonly string[] = ['ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512', 'EdDSA', 'Ed25519']

/** RFC 9449 §4.3 step 11: how far `iat` may be from now, either way (SPEC §14: 60 s, nonce or not). */
export const IAT_WINDOW_SECONDS = 60

/** JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const

/** Why a proof was refused; `nonce` means the client should retry with the server's nonce (RFC 9449 §8). */
export class ProofError extends Error {
  constructor(message: string, readonly kind: 'invalid' | 'nonce' = 'invalid') {
    super(message)
    this.name = 'ProofError'
  }
}

export interface ProofExpectation {
  /** The request's method (`htm`). */
  method: string
  /** The request's URL without query (`htu`). */
  url: string
  /** Accepted `alg` values (the discovery document's `dpop_signing_alg_values_supported`). */
  algorithms: readonly string[]
  /** At a resource: the presented access token, whose hash `ath` must be. */
  accessToken?: string
  /** When nonces are on: whether a nonce is one the server handed out and still honours. */
  nonceValid?: (nonce: string) => boolean
  /** Seconds since the epoch (tests). */
  now?: number
}

export interface CheckedProof {
  /** RFC 7638 SHA-256 thumbprint of the proof's key: the token's `cnf.jkt`. */
  jkt: string
  /** The proof's `jti`, to be recorded as used. */
  jti: string
  iat: number
}

/**
 * RFC 3986 §6.2.2–6.2.3 normalisation of an http(s) URL without query and fragment (RFC 9449
 * §4.3 step 9): scheme and host lower-cased, default port and dot-segments dropped (WHATWG
 * URL), percent-encodings upper-cased and unreserved characters decoded. `undefined` when
 * it is not an absolute http(s) URL.
 */
export function normalizeHtu(value: string): string | undefined {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return undefined
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined
  const path = (url.pathname === '' ? '/' : url.pathname).replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16))
    return /[A-Za-z0-9\-._~]/.test(ch) ? ch : `%${hex.toUpperCase()}`
  })
  return `${url.protocol}//${url.host}${path}`
}

/** RFC 9449 §4.2 `ath`: base64url SHA-256 of the access token's ASCII bytes. */
export function accessTokenHash(token: string): string {
  return createHash('sha256').update(token, 'ascii').digest('base64url')
}

/**
 * Check one DPoP proof JWT (RFC 9449 §4.3) against the request it came with. Replay (`jti`)
 * is the caller's: it needs the store. Throws {@link ProofError}.
 */
export async function checkProof(proof: string, expect: ProofExpectation): Promise<CheckedProof> {
  if (proof.length > 8192) throw new ProofError('the DPoP proof is too large')
  // Step 2: one well-formed JWS in compact form.
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(proof)) throw new ProofError('the DPoP proof is not a compact JWS')
  let header: ReturnType<typeof decodeProtectedHeader>
  try {
    header = decodeProtectedHeader(proof)
  } catch {
    throw new ProofError('the DPoP proof header is malformed')
  }
  // Steps 4–5: the explicit type, and an asymmetric algorithm the server lists.
  if (header.typ !== 'dpop+jwt') throw new ProofError('the DPoP proof typ must be dpop+jwt')
  if (typeof header.alg !== 'string' || !ASYMMETRIC_ALGS.includes(header.alg) || !expect.algorithms.includes(header.alg)) {
    throw new ProofError('the DPoP proof alg is not supported')
  }
  // Step 7: the key in the header is a public key.
  const jwk = header.jwk as JWK | undefined
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw new ProofError('the DPoP proof has no jwk header')
  if (PRIVATE_MEMBERS.some((m) => m in jwk)) throw new ProofError('the DPoP proof jwk must be a public key')
  if (jwk.kty !== 'EC' && jwk.kty !== 'RSA' && jwk.kty !== 'OKP') throw new ProofError('the DPoP proof jwk must be a public key')

  // Step 6: the signature, by the key in the header.
  let payload: JWTPayload
  try {
    ;({ payload } = await jwtVerify(proof, EmbeddedJWK, { algorithms: [header.alg], typ: 'dpop+jwt', currentDate: expect.now !== undefined ? new Date(expect.now * 1000) : new Date() }))
  } catch {
    throw new ProofError('the DPoP proof signature or claims are invalid')
  }
  const { jti, htm, htu, iat } = payload as { jti?: unknown; htm?: unknown; htu?: unknown; iat?: unknown }
  // Step 3: the required claims.
  if (typeof jti !== 'string' || jti === '' || jti.length > 256) throw new ProofError('the DPoP proof jti is missing or too long')
  if (typeof htm !== 'string') throw new ProofError('the DPoP proof htm is missing')
  if (typeof htu !== 'string') throw new ProofError('the DPoP proof htu is missing')
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw new ProofError('the DPoP proof iat is missing')
  // Step 8: the method.
  if (htm !== expect.method) throw new ProofError('the DPoP proof htm does not match the request method')
  // Step 9: the URL, without query and fragment, compared after normalisation.
  const expected = normalizeHtu(expect.url)
  if (expected === undefined || normalizeHtu(htu) !== expected) throw new ProofError('the DPoP proof htu does not match the request URL')
  // Step 11: fresh, whether or not a nonce is used (SPEC §14).
  const now = expect.now ?? Math.floor(Date.now() / 1000)
  if (Math.abs(now - iat) > IAT_WINDOW_SECONDS) throw new ProofError('the DPoP proof iat is not recent enough')
  // Step 12 (resource): bound to the presented token.
  if (expect.accessToken !== undefined) {
    if (typeof payload.ath !== 'string' || payload.ath !== accessTokenHash(expect.accessToken)) throw new ProofError('the DPoP proof ath does not match the access token')
  }
  // Step 10: a nonce the server provided (RFC 9449 §8, §9).
  if (expect.nonceValid) {
    if (typeof payload.nonce !== 'string') throw new ProofError('a DPoP nonce is required', 'nonce')
    if (payload.nonce.length > 256 || !expect.nonceValid(payload.nonce)) throw new ProofError('the DPoP nonce is invalid or expired', 'nonce')
  }
  const jkt = await calculateJwkThumbprint(jwk, 'sha256')
  return { jkt, jti, iat }
}
