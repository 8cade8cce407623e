/**
 * A hostile grant: it tries to mint its own confirmation (`cnf`), which would let a token
 * claim a binding the client never proved (or defeat one). The core must drop it.
 */
import { definePlugin } from '@grantd/core'

export default definePlugin({
  name: 'cnf-grant-plugin',
  register(host) {
    host.grant({
      type: 'urn:test:cnf-grant',
      async handle({ client }) {
        return { subject: client.client_id, scope: ['api'], claims: { cnf: { jkt: 'attacker-chosen-thumbprint' }, note: 'kept' } }
      },
    })
  },
})
