import * as oauth from 'oauth4webapi'
import type { JsonObject } from '@grantd/core'
import type { ProviderOptions } from './options.js'

/** Upstream metadata is re-fetched after this long; a failed discovery is never cached. */
const DISCOVERY_TTL_MS = 60 * 60 * 1000
/** A slow upstream must not hold a browser (or a Koa worker) for long. */
const UPSTREAM_TIMEOUT_MS = 5000

/** Protocol claims of the upstream ID token; the rest describe the user. */
const PROTOCOL_CLAIMS = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'jti', 'nonce', 'azp', 'at_hash', 'c_hash', 's_hash', 'auth_time', 'acr', 'amr', 'sid'])

/** OAuth error codes an upstream may answer that mean the same thing downstream (OIDC Core §3.1.2.6). */
const PASSED_THROUGH = new Set(['access_denied', 'login_required', 'interaction_required', 'consent_required', 'account_selection_required'])

/**
 * Why an external sign-in failed, as the downstream client should hear it
 * (RFC 6749 §4.1.2.1): `error` is sent to the client, `detail` only to the logs.
 */
export class UpstreamError extends Error {
  constructor(readonly error: string, description: string, readonly detail?: string) {
    super(description)
    this.name = 'UpstreamError'
  }
}

export interface AuthorizationRequest {
  redirectUri: string
  state: string
  nonce: string
  codeChallenge: string
  prompt?: string
}

export interface ExternalIdentity {
  subject: string
  claims: JsonObject
}

/**
 * grantd as an OIDC relying party of one upstream provider. Every protocol step —
 * discovery, the authorization response, the code exchange with PKCE, ID token
 * validation including its signature — is oauth4webapi's; this class only wires
 * them together and translates failures into downstream OAuth errors.
 */
export class RelyingParty {
  private metadata: { value: Promise<oauth.AuthorizationServer>; at: number } | undefined
  /** oauth4webapi keeps the upstream JWKS here between calls. */
  private readonly jwks: oauth.JWKSCacheInput = {}
  private readonly client: oauth.Client
  private readonly auth: oauth.ClientAuth
  /** Plain http is allowed only for http issuers (local development and tests). */
  private readonly insecure: boolean

  constructor(readonly name: string, private readonly options: ProviderOptions) {
    this.client = { client_id: options.client_id }
    this.auth = oauth.ClientSecretBasic(options.client_secret)
    this.insecure = new URL(options.issuer).protocol === 'http:'
  }

  private http(): oauth.HttpRequestOptions<'GET'> & oauth.HttpRequestOptions<'POST', URLSearchParams> {
    return {
      signal: () => AbortSignal.timeout(UPSTREAM_TIMEOUT_MS),
      ...(this.insecure ? { [oauth.allowInsecureRequests]: true } : {}),
    }
  }

  /** The upstream's metadata (OIDC Discovery 1.0), cached; unreachable → `temporarily_unavailable`. */
  discover(): Promise<oauth.AuthorizationServer> {
    const now = Date.now()
    if (this.metadata && now - this.metadata.at < DISCOVERY_TTL_MS) return this.metadata.value
    const issuer = new URL(this.options.issuer)
    const value = (async () => {
      try {
        const response = await oauth.discoveryRequest(issuer, { ...this.http(), algorithm: 'oidc' })
        return await oauth.processDiscoveryResponse(issuer, response)
      } catch (err) {
        throw new UpstreamError('temporarily_unavailable', `the identity provider "${this.name}" is unreachable`, describe(err))
      }
    })()
    this.metadata = { value, at: now }
    value.catch(() => {
      if (this.metadata?.value === value) this.metadata = undefined
    })
    return value
  }

  /** The upstream authorization endpoint URL for a code flow with PKCE S256, state and nonce. */
  async authorizationUrl(request: AuthorizationRequest): Promise<URL> {
    const as = await this.discover()
    if (!as.authorization_endpoint) throw new UpstreamError('temporarily_unavailable', `the identity provider "${this.name}" has no authorization endpoint`)
    const url = new URL(as.authorization_endpoint)
    url.searchParams.set('response_type', 'code')
    url.searchParams.set('client_id', this.options.client_id)
    url.searchParams.set('redirect_uri', request.redirectUri)
    url.searchParams.set('scope', this.options.scope)
    url.searchParams.set('state', request.state)
    url.searchParams.set('nonce', request.nonce)
    url.searchParams.set('code_challenge', request.codeChallenge)
    url.searchParams.set('code_challenge_method', 'S256')
    if (request.prompt) url.searchParams.set('prompt', request.prompt)
    return url
  }

  /**
   * Validate the authorization response (state, RFC 9207 `iss`, error responses), redeem
   * the code and validate the ID token (nonce, audience, expiry, signature).
   */
  async complete(callback: URLSearchParams, expected: { state: string; nonce: string; redirectUri: string; codeVerifier: string }): Promise<ExternalIdentity> {
    const as = await this.discover()
    let params: URLSearchParams
    try {
      params = oauth.validateAuthResponse(as, this.client, callback, expected.state)
    } catch (err) {
      if (err instanceof oauth.AuthorizationResponseError) {
        const error = PASSED_THROUGH.has(err.error) ? err.error
          : err.error === 'temporarily_unavailable' || err.error === 'server_error' ? 'temporarily_unavailable' : 'access_denied'
        throw new UpstreamError(error, `the identity provider "${this.name}" did not sign the user in (${err.error})`, err.error_description)
      }
      throw new UpstreamError('access_denied', `the identity provider "${this.name}" sent an invalid response`, describe(err))
    }

    let result: oauth.TokenEndpointResponse
    try {
      const response = await oauth.authorizationCodeGrantRequest(as, this.client, this.auth, params, expected.redirectUri, expected.codeVerifier, this.http())
      result = await oauth.processAuthorizationCodeResponse(as, this.client, response, { expectedNonce: expected.nonce, requireIdToken: true })
      // Over plain http (and for defence in depth over TLS) the ID token's signature is checked too.
      await oauth.validateApplicationLevelSignature(as, response, { ...this.http(), [oauth.jwksCache]: this.jwks })
    } catch (err) {
      if (isNetworkError(err)) throw new UpstreamError('temporarily_unavailable', `the identity provider "${this.name}" is unreachable`, describe(err))
      throw new UpstreamError('access_denied', `the identity provider "${this.name}" sign-in could not be verified`, describe(err))
    }
    const idToken = oauth.getValidatedIdTokenClaims(result)
    if (!idToken) throw new UpstreamError('access_denied', `the identity provider "${this.name}" returned no ID token`)
    const claims: JsonObject = {}
    for (const [k, v] of Object.entries(idToken)) if (!PROTOCOL_CLAIMS.has(k) && v !== undefined) claims[k] = v as JsonObject[string]
    return { subject: idToken.sub, claims }
  }
}

function isNetworkError(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  return err.name === 'TimeoutError' || err.name === 'AbortError' || (err instanceof TypeError && /fetch failed/i.test(err.message))
}

/** A log line's worth of what went wrong, never a stack trace. */
function describe(err: unknown): string {
  if (err instanceof oauth.ResponseBodyError) return `${err.code}: ${err.error}${err.error_description ? ` (${err.error_description})` : ''}`
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    const cause = err.cause instanceof Error ? `; ${err.cause.message}` : ''
    return `${typeof code === 'string' ? `${code}: ` : ''}${err.message}${cause}`.slice(0, 300)
  }
  return String(err).slice(0, 300)
}
