import { OAuthError } from '../errors.js'
import { isFormContentType, readForm } from '../http/form-body.js'
import type { ClaimsRelease } from '../tokens/claims.js'
import type { ClientDirectory, JsonObject, RouteContext, UserService } from '../interfaces.js'
import type { SenderConstraints } from '../tokens/sender-constraints.js'
import type { TokenService } from '../tokens/tokens.js'

export const USERINFO_PATH = '/connect/userinfo'

export interface UserinfoDeps {
  tokens: TokenService
  users: () => UserService
  /** Scope → claims release and the plugins' claims hooks (SPEC §11). */
  claims: ClaimsRelease
  clients: Pick<ClientDirectory, 'find'>
  /** Sender-constraint hooks (RFC 9449 DPoP): other schemes than Bearer, and the binding check of bound tokens. */
  senderConstraints?: SenderConstraints
}

/** RFC 6750 §2.1 b64token. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i
/** Any scheme with an RFC 6750-style token68 (RFC 9449 §7.1 `DPoP`); only schemes a sender-constraint hook owns are accepted. */
const SCHEME_TOKEN = /^([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*) +([A-Za-z0-9\-._~+/]+=*) *$/

/** RFC 6750 §3: the challenge; `error` only when the request carried a token (§3.1). */
function challenge(error?: string, description?: string, extra = ''): Record<string, string> {
  let value = 'Bearer realm="grantd"'
  if (error) value += `, error="${error}"`
  if (description) value += `, error_description="${description}"`
  return { 'WWW-Authenticate': value + extra }
}

function invalidToken(description: string): OAuthError {
  return new OAuthError('invalid_token', description, { status: 401, headers: challenge('invalid_token', description) })
}

function invalidRequest(description: string): OAuthError {
  return new OAuthError('invalid_request', description, { status: 400, headers: challenge('invalid_request', description) })
}

/**
 * The access token of the request: the Authorization header (RFC 6750 §2.1) or, on a
 * form POST, the `access_token` body parameter (§2.2). Two methods at once is
 * `invalid_request` (§2); the query string (§2.3) is not accepted: URLs end up in logs.
 */
async function bearerToken(ctx: RouteContext, constraints: SenderConstraints | undefined): Promise<{ token: string; scheme: string }> {
  const header = ctx.get('authorization')
  let fromHeader: string | undefined
  let scheme = 'bearer'
  if (header !== '') {
    const match = BEARER.exec(header)
    const other = match ? undefined : SCHEME_TOKEN.exec(header)
    if (match) fromHeader = match[1]!
    else if (/^bearer\b/i.test(header)) throw invalidRequest('malformed Bearer authorization header')
    else if (other && constraints?.hasScheme(other[1]!.toLowerCase())) {
      fromHeader = other[2]!
      scheme = other[1]!.toLowerCase()
    }
  }
  let fromBody: string | undefined
  if (ctx.method === 'POST' && isFormContentType(ctx.get('content-type') || undefined)) {
    const params = await readForm(ctx)
    if (params.count('access_token') > 1) throw invalidRequest('access_token is repeated')
    fromBody = params.get('access_token')
  }
  if (fromHeader !== undefined && fromBody !== undefined) throw invalidRequest('use one way to send the access token')
  const token = fromHeader ?? fromBody
  if (token === undefined) throw new OAuthError('invalid_token', 'an access token is required', { status: 401, headers: challenge() })
  return { token, scheme }
}

/**
 * OIDC Core §5.3 userinfo, GET and POST. The token must be active and carry `openid`;
 * the claims are what the user service releases for the token's scope, and `sub` is
 * always the token's subject (§5.3.2: the client compares it with the ID token's).
 */
export function userinfoEndpoint(deps: UserinfoDeps): (ctx: RouteContext) => Promise<void> {
  return async function userinfo(ctx: RouteContext): Promise<void> {
    ctx.set('Cache-Control', 'no-store')
    ctx.set('Pragma', 'no-cache')
    const { token, scheme } = await bearerToken(ctx, deps.senderConstraints)
    const claims = await deps.tokens.verifyAccessToken(token, ctx.state.issuer)
    if (!claims) throw invalidToken('the access token is invalid, expired or revoked')
    // RFC 9449 §7.1: a bound token proves its key here; fails closed for a binding no hook can check.
    await deps.senderConstraints?.atResource({ ctx, scheme, token, claims, url: `${ctx.state.issuer}${ctx.path}` })
    ctx.state.clientId = claims.client_id
    const scopes = claims.scope.split(' ').filter((s) => s !== '')
    if (!scopes.includes('openid')) {
      throw new OAuthError('insufficient_scope', 'the access token lacks the openid scope', {
        status: 403, headers: challenge('insufficient_scope', 'the access token lacks the openid scope', ', scope="openid"'),
      })
    }
    // A client deleted since (RFC 7592 §2.3) takes its tokens with it.
    const client = await deps.clients.find(claims.client_id)
    if (!client) throw invalidToken('the client of this access token is no longer registered')
    const users = deps.users()
    const user = await users.findById(claims.sub, { raw: [] })
    if (!user) throw invalidToken('the user of this access token is no longer available')
    // OIDC Core §5.4: only what a granted scope lists, then what the claims hooks add.
    const released = deps.claims.forScopes(await users.claims(user, scopes), scopes)
    if (deps.claims.hasHooks) {
      const aud = typeof claims.aud === 'string' ? claims.aud : undefined
      Object.assign(released, await deps.claims.fromHooks({
        kind: 'userinfo', client, user, scope: scopes, context: { raw: [] }, ...(aud !== undefined && aud !== client.client_id ? { resource: aud } : {}),
      }))
    }
    const body: JsonObject = { ...released, sub: claims.sub }
    ctx.type = 'application/json'
    ctx.body = body
  }
}
