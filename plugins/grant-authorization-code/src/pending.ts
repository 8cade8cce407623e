import { randomToken, type AcrContext } from '@grantd/core'
import type { AuthorizationRequest } from './authorization-request.js'
import type { CookieSigner } from './cookies.js'
import type { PkceMethod } from './pkce.js'

/**
 * A validated authorization request on its way through the login page. SPEC §9:
 * anonymous requests never create state, so the request is not stored: it travels in the
 * login form (and the "Sign in with NAME" links) as `base64url(JSON).MAC`, the MAC keyed
 * by `cookies.keys`. The login form's CSRF token binds it to the browser cookie. The
 * store sees it only once a sign-in succeeds (a single-use marker) or fails (an attempt
 * counter), both keyed by the hash of its random id.
 */
export interface CarriedRequest {
  /** Random id: the single-use marker and the attempt counter are keyed by its hash. */
  rid: string
  /** Seconds since the epoch after which the request is refused (`loginTtl`). */
  exp: number
  client_id: string
  redirect_uri: string
  scope: readonly string[]
  state?: string
  nonce?: string
  code_challenge?: string
  code_challenge_method?: PkceMethod
  acr: AcrContext
  prompt: readonly string[]
  issuer: string
  max_age?: number
  login_hint?: string
  notices?: string[]
  /** RFC 8707 resources the request named. */
  resources?: readonly string[]
}

const PURPOSE = 'grantd-authorization-request'
/**
 * The carried request must fit one form field (the form parser refuses values over
 * 4096 characters); a request whose parameters together need more is refused.
 */
export const MAX_CARRIED_LENGTH = 4000
const SHAPE = /^[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{43}$/

export class PendingCodec {
  constructor(private readonly signer: CookieSigner, private readonly ttl: number) {}

  /**
   * Seal a request; `undefined` when it is too large to carry. The carried value comes back
   * with it, so the caller need not open (MAC and parse) what it has just sealed.
   */
  seal(request: AuthorizationRequest, notices: readonly string[] = []): { sealed: string; carried: CarriedRequest } | undefined {
    const carried: CarriedRequest = {
      rid: randomToken(16),
      exp: Math.floor(Date.now() / 1000) + this.ttl,
      client_id: request.client.client_id, redirect_uri: request.redirectUri, scope: request.scope, acr: request.acr,
      prompt: request.prompt, issuer: request.issuer,
      ...(request.state !== undefined ? { state: request.state } : {}),
      ...(request.nonce !== undefined ? { nonce: request.nonce } : {}),
      ...(request.codeChallenge !== undefined ? { code_challenge: request.codeChallenge } : {}),
      ...(request.codeChallengeMethod !== undefined ? { code_challenge_method: request.codeChallengeMethod } : {}),
      ...(request.maxAge !== undefined ? { max_age: request.maxAge } : {}),
      ...(request.loginHint !== undefined ? { login_hint: request.loginHint } : {}),
      ...(notices.length > 0 ? { notices: [...notices] } : {}),
      ...(request.resources !== undefined ? { resources: request.resources } : {}),
    }
    const sealed = this.signer.sign(PURPOSE, Buffer.from(JSON.stringify(carried), 'utf8').toString('base64url'))
    return sealed.length <= MAX_CARRIED_LENGTH ? { sealed, carried } : undefined
  }

  /** The request a sealed value carries, or `undefined` when it is malformed, altered or expired. */
  open(sealed: string): CarriedRequest | undefined {
    if (sealed.length > MAX_CARRIED_LENGTH || !SHAPE.test(sealed)) return undefined
    const payload = this.signer.unsign(PURPOSE, sealed)
    if (payload === undefined) return undefined
    let carried: CarriedRequest
    try {
      carried = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as CarriedRequest
    } catch {
      return undefined
    }
    if (typeof carried !== 'object' || carried === null || typeof carried.rid !== 'string' || typeof carried.exp !== 'number') return undefined
    return PendingCodec.current(carried)
  }

  /** `carried` while it has not expired (a value opened earlier in the same request is checked again). */
  static current(carried: CarriedRequest): CarriedRequest | undefined {
    return carried.exp > Math.floor(Date.now() / 1000) ? carried : undefined
  }
}
