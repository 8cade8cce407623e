import type { ClientAuthenticator } from './client-auth.js'
import { OAuthError } from './errors.js'
import { readForm } from './form-body.js'
import type { ClientAuthService } from './interfaces.js'

/**
 * The `clientAuth` service plugins resolve: the token endpoint's client authentication
 * (ClientAuthenticator, SPEC §5) behind the host's contract, so a plugin endpoint such as
 * PAR (RFC 9126 §2: "the same client authentication as the token endpoint") never
 * re-implements it. It wraps the authenticator and changes nothing in it.
 */
export function clientAuthService(authenticator: ClientAuthenticator): ClientAuthService {
  return {
    async readForm(ctx, options = {}) {
      const repeatable = options.repeatable ?? []
      const params = await readForm(ctx.req)
      // RFC 6749 §3.1: no parameter twice, except those the endpoint's own RFC makes repeatable.
      for (const name of params.names()) {
        if (params.count(name) > 1 && !repeatable.includes(name)) throw new OAuthError('invalid_request', `parameter ${name.slice(0, 64)} is repeated`)
      }
      const issuer = ctx.state.issuer
      const client = await authenticator.authenticate({
        authorization: ctx.get('authorization') || undefined,
        params,
        // RFC 7523 §3 / RFC 9126 §2: the issuer, the token endpoint or this endpoint.
        audiences: [issuer, `${issuer}${ctx.path}`, `${issuer}/connect/token`],
        // SPEC §9: secret guessing here counts against the same per-address limit as at the token endpoint.
        clientIp: ctx.state.clientIp,
      })
      ctx.state.clientId = client.client_id
      return { params, client }
    },
  }
}
