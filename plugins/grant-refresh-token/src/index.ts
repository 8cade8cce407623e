import { definePlugin, OAuthError, type AcrContext, type GrantRequest, type RefreshTokenRecord } from '@grantd/core'

function invalidGrant(detail: string): OAuthError {
  return new OAuthError('invalid_grant', 'the refresh token is invalid, expired, revoked or was already used', { detail })
}

/** RFC 6749 §6: the requested scope may narrow the original grant, never widen it. */
function narrowedScope(requested: readonly string[] | undefined, granted: readonly string[]): readonly string[] {
  if (requested === undefined || requested.length === 0) return granted
  const extra = requested.filter((s) => !granted.includes(s))
  if (extra.length > 0) throw new OAuthError('invalid_scope', 'the requested scope exceeds the scope originally granted')
  return requested
}

function contextOf(record: RefreshTokenRecord): AcrContext {
  return record.context ?? { raw: [] }
}

/**
 * RFC 6749 §6 `refresh_token` grant. The core keeps the families (rotation, reuse
 * detection, revocation: core/src/tokens/refresh-family.ts); this grant decides what a refresh
 * yields: the original subject, the original or a narrower scope, the same grant id (so
 * a new refresh token joins the family and access tokens carry its `gid`), and a new ID
 * token that still names the original authentication (OIDC Core §12.2).
 */
export default definePlugin({
  name: 'grant-refresh-token',
  register(host) {
    host.grant({
      type: 'refresh_token',
      parameters: ['refresh_token'],
      required: ['refresh_token'],
      // Public clients hold refresh tokens too (RFC 9700 §4.14.2: with rotation).
      allowPublicClients: true,
      async handle({ client, params, requestedScope, services, resource }: GrantRequest) {
        // Refuse what can be refused without using the token up: a widened scope or a
        // disabled user must not burn the token (or, with rotation, the family). The core
        // runs these checks between reading the record and spending it.
        const record = await services.refreshTokens.redeem(params.refresh_token!, client, async (found) => {
          narrowedScope(requestedScope, found.scope)
          // RFC 8707 §2.2: only resources the grant covered; refused before the token is spent (the core checks again).
          if (resource !== undefined && !(found.resources ?? []).includes(resource)) throw new OAuthError('invalid_target', 'the resource was not part of the authorization')
          if (!(await services.users.isActive(found.sub, contextOf(found)))) throw invalidGrant('user is no longer active')
        })
        if (!record) throw invalidGrant('unknown, expired, revoked, reused or of another client')
        const scope = narrowedScope(requestedScope, record.scope)

        const session = record.session ?? {}
        const amr = Array.isArray(session.amr) ? session.amr.filter((v): v is string => typeof v === 'string') : undefined
        return {
          subject: record.sub,
          scope,
          grantId: record.grant_id,
          // Rotation: every use returns a new token of the family, with the original scope.
          // Without rotation the client keeps using the token it has: none is issued. Public
          // clients always rotate, whatever the setting (RFC 9700 §4.14.2).
          refreshToken: services.refreshTokens.rotates(client),
          refreshScope: record.scope,
          context: contextOf(record),
          session,
          // RFC 8707 §2.2: a refresh may ask for any resource the original grant covered, no other.
          resources: record.resources ?? [],
          idToken: {
            ...(typeof session.auth_time === 'number' ? { authTime: session.auth_time } : {}),
            ...(typeof session.acr === 'string' ? { acr: session.acr } : {}),
            ...(amr && amr.length > 0 ? { amr } : {}),
          },
        }
      },
    })
  },
})
