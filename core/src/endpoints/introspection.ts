import { readAuthenticatedForm, type ClientAuthenticator } from '../clients/client-auth.js'
import { OAuthError } from '../errors.js'
import type { AccessTokenClaims, Client, ClientDirectory, JsonObject, RefreshTokenRecord, RouteContext } from '../interfaces.js'
import type { RefreshFamily } from '../tokens/refresh-family.js'
import type { SenderConstraints } from '../tokens/sender-constraints.js'
import { formatScope } from '../tokens/scope.js'
import type { TokenService } from '../tokens/tokens.js'

export const INTROSPECTION_PATH = '/connect/introspect'

export interface IntrospectionDeps {
  clientAuth: ClientAuthenticator
  tokens: TokenService
  refreshTokens: RefreshFamily
  /** RFC 9449 §6.2: bound tokens answer their `cnf` and the hook's `token_type`. */
  senderConstraints?: SenderConstraints
  /** A token whose client was deleted (RFC 7592 §2.3) is inactive, also for the API it names. */
  clients: Pick<ClientDirectory, 'find'>
}

/** RFC 7662 §2.2: anything the caller may not learn about is simply inactive, with no other member. */
const INACTIVE: JsonObject = { active: false }

/**
 * Which tokens a caller may introspect (RFC 7662 §4 lets the server decide): an access
 * token issued to the caller or naming it in `aud` (a resource server checking tokens
 * meant for it), a refresh token only of the caller. Everything else answers
 * `{"active": false}`, so the endpoint never confirms another client's token exists.
 */
function mayIntrospectAccess(claims: AccessTokenClaims, client: Client): boolean {
  if (claims.client_id === client.client_id) return true
  const aud = claims.aud
  return aud === client.client_id || (Array.isArray(aud) && aud.includes(client.client_id))
}

function describeAccess(claims: AccessTokenClaims, constraints: SenderConstraints | undefined): JsonObject {
  const out: JsonObject = {
    active: true,
    token_type: constraints?.tokenTypeOf(claims.cnf) ?? 'Bearer',
    scope: claims.scope,
    client_id: claims.client_id,
    sub: claims.sub,
    aud: claims.aud,
    iss: claims.iss,
    exp: claims.exp,
    iat: claims.iat,
    jti: claims.jti,
  }
  if (typeof claims.auth_time === 'number') out.auth_time = claims.auth_time
  if (typeof claims.acr === 'string') out.acr = claims.acr
  // RFC 9449 §6.2 / RFC 8705 §3.2: the resource server checks the binding with it.
  if (typeof claims.cnf === 'object' && claims.cnf !== null && !Array.isArray(claims.cnf)) out.cnf = claims.cnf
  return out
}

function describeRefresh(record: RefreshTokenRecord, issuer: string): JsonObject {
  const out: JsonObject = {
    active: true,
    scope: formatScope(record.scope),
    client_id: record.client_id,
    sub: record.sub,
    iss: issuer,
    exp: record.exp,
    iat: record.iat,
  }
  if (record.cnf) out.cnf = record.cnf
  return out
}

/**
 * The introspection endpoint (RFC 7662): confidential clients only (§2.1 requires the
 * caller to be authorized; a public client has no credentials to prove it). The
 * `token_type_hint` (§2.1) decides which kind is looked up first; the other is tried next.
 */
export function introspectionEndpoint(deps: IntrospectionDeps): (ctx: RouteContext) => Promise<void> {
  return async function introspect(ctx: RouteContext): Promise<void> {
    ctx.set('Cache-Control', 'no-store')
    ctx.set('Pragma', 'no-cache')
    const { params, client } = await readAuthenticatedForm(ctx, deps.clientAuth, ['token', 'token_type_hint'])
    if (!client.confidential) throw new OAuthError('invalid_client', 'public clients may not introspect tokens', { status: 401 })
    const token = params.get('token')
    if (token === undefined) throw new OAuthError('invalid_request', 'token is missing')
    const refreshFirst = params.get('token_type_hint') === 'refresh_token'

    const asAccess = async (): Promise<JsonObject | undefined> => {
      const claims = await deps.tokens.verifyAccessToken(token, ctx.state.issuer)
      if (!claims || !mayIntrospectAccess(claims, client)) return undefined
      if (claims.client_id !== client.client_id && !(await deps.clients.find(claims.client_id))) return undefined
      return describeAccess(claims, deps.senderConstraints)
    }
    const asRefresh = async (): Promise<JsonObject | undefined> => {
      const record = await deps.refreshTokens.peek(token)
      return record && record.client_id === client.client_id ? describeRefresh(record, ctx.state.issuer) : undefined
    }
    const [first, second] = refreshFirst ? [asRefresh, asAccess] : [asAccess, asRefresh]
    ctx.type = 'application/json'
    ctx.body = (await first()) ?? (await second()) ?? INACTIVE
  }
}
