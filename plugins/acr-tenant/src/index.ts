import { definePlugin, OAuthError } from '@grantd/core'

const TENANT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/**
 * `acr_values=tenant:NAME` → `context.tenant`, at the token endpoint and the
 * authorization endpoint alike; the user service decides what a tenant means.
 */
export default definePlugin({
  name: 'acr-tenant',
  register(host) {
    host.acr({
      prefix: 'tenant',
      parse(value) {
        if (!TENANT.test(value)) throw new OAuthError('invalid_request', 'tenant in acr_values is malformed')
        return { tenant: value }
      },
    })
  },
})
