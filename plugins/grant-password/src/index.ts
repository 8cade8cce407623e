import { definePlugin, OAuthError } from '@grantd/core'

/** IdentityServer's InputLengthRestrictions spirit: oversize input fails before any lookup. */
const MAX_USERNAME = 256
const MAX_PASSWORD = 1024

/** One answer for every credential failure, so no response says which part was wrong. */
const BAD_CREDENTIALS = 'invalid username or password'

/**
 * RFC 6749 §4.3: the resource owner password credentials grant, with IdentityServer3's
 * `acr_values` (`tenant:NAME`, `idp:NAME`, anything else passed through) parsed by the
 * loaded acr plugins and handed to the user service as the context.
 *
 * `idp:NAME` on a password grant is refused with `invalid_request` unless the client
 * lists NAME in `identity_providers` and the user service declares, through
 * `acceptsPasswordIdp`, that it can check passwords for that provider.
 */
export default definePlugin({
  name: 'grant-password',
  register(host) {
    host.grant({
      type: 'password',
      parameters: ['username', 'password', 'acr_values'],
      required: ['username', 'password'],
      acrValues: true,
      // RFC 6749 §4.3.2 lets public clients use this grant; the client must still list it.
      allowPublicClients: true,
      async handle({ client, params, requestedScope, acr, services, clientIp }) {
        const username = params.username!
        const password = params.password!
        if (username.length > MAX_USERNAME) throw new OAuthError('invalid_request', 'username is too long')
        if (password.length > MAX_PASSWORD) throw new OAuthError('invalid_request', 'password is too long')
        // IdentityServer semantics (as for client_credentials): the client names what it wants.
        if (!requestedScope || requestedScope.length === 0) throw new OAuthError('invalid_scope', 'scope is required')

        const { users } = services
        if (acr.idp !== undefined) {
          if (!client.identity_providers.includes(acr.idp)) throw new OAuthError('invalid_request', 'the identity provider in acr_values is not allowed for this client')
          if (users.acceptsPasswordIdp?.(acr.idp, client) !== true) throw new OAuthError('invalid_request', 'acr_values idp: is not supported with the password grant')
        }

        const user = await users.authenticate({ username, password, context: acr, client, ...(clientIp !== undefined ? { clientIp } : {}) })
        // A disabled user gets nothing, and learns nothing more than a wrong password would tell.
        if (!user || !(await users.isActive(user.sub, acr))) throw new OAuthError('invalid_grant', BAD_CREDENTIALS)

        const authTime = Math.floor(Date.now() / 1000)
        // RFC 8176: `pwd`; the acr context is remembered so refreshes ask the user service in the same tenant.
        return {
          subject: user.sub,
          user,
          scope: requestedScope,
          context: acr,
          // OIDC Core §3.1.2.1: an ID token only for `openid` requests.
          idToken: requestedScope.includes('openid') ? { authTime, amr: ['pwd'] } : false,
          session: { amr: ['pwd'], ...(acr.idp !== undefined ? { idp: acr.idp } : {}) },
        }
      },
    })
  },
})
