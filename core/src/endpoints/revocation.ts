import { readAuthenticatedForm, type ClientAuthenticator } from '../clients/client-auth.js'
import { OAuthError } from '../errors.js'
import type { Client, RouteContext } from '../interfaces.js'
import type { RefreshFamily } from '../tokens/refresh-family.js'
import type { TokenService } from '../tokens/tokens.js'

export const REVOCATION_PATH = '/connect/revocation'

export interface RevocationDeps {
  clientAuth: ClientAuthenticator
  tokens: TokenService
  refreshTokens: RefreshFamily
}

/**
 * The revocation endpoint (RFC 7009). Public clients authenticate with `client_id` alone
 * and may revoke their own tokens (§2.1, §5). A refresh token revokes its whole family:
 * every refresh token of the grant and every access token carrying its `gid`. An access
 * token is recorded as revoked until it expires; as a JWT it stays verifiable offline, but
 * introspection and userinfo refuse it. A token of another client, an unknown, expired or
 * already revoked token all answer 200 (§2.2): the answer reveals nothing.
 */
export function revocationEndpoint(deps: RevocationDeps): (ctx: RouteContext) => Promise<void> {
  async function revokeAccess(token: string, client: Client, issuer: string): Promise<boolean> {
    const claims = await deps.tokens.verifyAccessToken(token, issuer)
    if (!claims) return false
    if (claims.client_id === client.client_id) await deps.tokens.revokeAccessToken(claims)
    return true
  }

  return async function revoke(ctx: RouteContext): Promise<void> {
    ctx.set('Cache-Control', 'no-store')
    ctx.set('Pragma', 'no-cache')
    const { params, client } = await readAuthenticatedForm(ctx, deps.clientAuth, ['token', 'token_type_hint'])
    const token = params.get('token')
    if (token === undefined) throw new OAuthError('invalid_request', 'token is missing')
    // §2.1: the hint only orders the search; an unknown hint value is ignored.
    if (params.get('token_type_hint') === 'refresh_token') {
      await deps.refreshTokens.revoke(token, client)
      await revokeAccess(token, client, ctx.state.issuer)
    } else if (!(await revokeAccess(token, client, ctx.state.issuer))) {
      await deps.refreshTokens.revoke(token, client)
    }
    ctx.status = 200
    ctx.body = ''
  }
}
