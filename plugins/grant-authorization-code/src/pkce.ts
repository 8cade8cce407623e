import { createHash, timingSafeEqual } from 'node:crypto'
import { OAuthError, type Client } from '@grantd/core'

/**
 * PKCE (RFC 7636), composed onto the authorization code grant as its own small piece
 * (Fosite's style): `challengeOf` runs at the authorization endpoint, `verifierMatches`
 * at the token endpoint.
 */

export type PkceMethod = 'S256' | 'plain'

export interface PkceChallenge {
  readonly challenge: string
  readonly method: PkceMethod
}

/** RFC 7636 §4.1: 43–128 characters of the unreserved set. Challenges share the grammar (§4.2). */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/
/** An S256 challenge is the base64url of a SHA-256: exactly 43 characters. */
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/

export function isValidVerifier(value: string): boolean {
  return VERIFIER.test(value)
}

/** Whether the client must send a challenge: public clients always (SPEC §3), others when registered so. */
export function pkceRequired(client: Client): boolean {
  return client.token_endpoint_auth_method === 'none' || client.require_pkce
}

/**
 * Validate `code_challenge` / `code_challenge_method` of an authorization request.
 * Returns undefined when the client sent none and need not; throws `invalid_request`
 * otherwise. The method defaults to `plain` (RFC 7636 §4.3), which is refused unless
 * the client is registered with `allow_plain_pkce` (RFC 9700 §2.1.1: S256 only).
 */
export function challengeOf(client: Client, challenge: string | undefined, method: string | undefined): PkceChallenge | undefined {
  if (challenge === undefined) {
    if (method !== undefined) throw new OAuthError('invalid_request', 'code_challenge_method without code_challenge')
    if (pkceRequired(client)) throw new OAuthError('invalid_request', 'code_challenge is required for this client (PKCE, RFC 7636)')
    return undefined
  }
  const chosen = method ?? 'plain'
  if (chosen === 'S256') {
    if (!S256_CHALLENGE.test(challenge)) throw new OAuthError('invalid_request', 'code_challenge must be 43 base64url characters for S256')
    return { challenge, method: 'S256' }
  }
  if (chosen === 'plain') {
    if (!client.allow_plain_pkce) throw new OAuthError('invalid_request', 'code_challenge_method plain is not allowed for this client; use S256')
    if (!VERIFIER.test(challenge)) throw new OAuthError('invalid_request', 'code_challenge must be 43-128 characters of [A-Za-z0-9-._~]')
    return { challenge, method: 'plain' }
  }
  throw new OAuthError('invalid_request', 'code_challenge_method must be S256')
}

/** RFC 7636 §4.6, compared in constant time. */
export function verifierMatches(verifier: string, pkce: PkceChallenge): boolean {
  if (!VERIFIER.test(verifier)) return false
  const computed = pkce.method === 'S256' ? createHash('sha256').update(verifier, 'ascii').digest('base64url') : verifier
  const a = Buffer.from(computed, 'ascii')
  const b = Buffer.from(pkce.challenge, 'ascii')
  return a.length === b.length && timingSafeEqual(a, b)
}
