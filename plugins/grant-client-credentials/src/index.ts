import { definePlugin, OAuthError } from '@grantd/core'

/**
 * RFC 6749 §4.4: the client acts on its own behalf. Scope is required (IdentityServer
 * semantics) and the grant never yields a refresh token or an ID token (§4.4.3).
 */
export default definePlugin({
  name: 'grant-client-credentials',
  register(host) {
    host.grant({
      type: 'client_credentials',
      allowPublicClients: false,
      async handle({ requestedScope }) {
        if (!requestedScope || requestedScope.length === 0) throw new OAuthError('invalid_scope', 'scope is required')
        // OpenID scopes describe a user; a client-only token cannot carry them.
        const userOnly = requestedScope.filter((s) => s === 'openid' || s === 'offline_access')
        if (userOnly.length > 0) throw new OAuthError('invalid_scope', `${userOnly.join(' ')} cannot be granted without a user`)
        return {
          scope: requestedScope,
          refreshToken: false,
          idToken: false,
        }
      },
    })
  },
})
