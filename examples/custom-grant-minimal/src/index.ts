import { createHash } from 'node:crypto'
import { definePlugin, OAuthError, option } from '@grantd/core'

/** Trades a long-lived API key for a short-lived access token of the key's user. */
export default definePlugin({
  name: 'grant-api-key',
  // { "keys": { "<SHA-256 of the key, base64url>": "<user sub>" } }: keys never sit in clear.
  options(raw) {
    const o = option.object(raw ?? {}, '(options)')
    option.only(o, '(options)', ['keys'])
    const keys = option.object(o.keys, 'keys')
    return { keys: new Map(Object.entries(keys).map(([hash, sub]) => [hash, option.string(sub, option.at('keys', hash))])) }
  },
  register(host) {
    host.grant({
      type: 'urn:example:grant-type:api-key',
      parameters: ['api_key'],
      required: ['api_key'],
      async handle({ params, requestedScope, acr, services }) {
        if (!requestedScope) throw new OAuthError('invalid_scope', 'scope is required')
        const hash = createHash('sha256').update(params.api_key!).digest('base64url')
        const sub = host.options.keys.get(hash)
        if (!sub || !(await services.users.isActive(sub, acr))) throw new OAuthError('invalid_grant', 'unknown api_key')
        return { subject: sub, scope: requestedScope, refreshToken: false }
      },
    })
  },
})
