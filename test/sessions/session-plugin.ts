/**
 * A test plugin that uses the host's session API the way a third-party plugin would:
 * a grant that issues tokens inside an existing SSO session (with `refreshToken: true`, no
 * offline_access), and routes that list and end a user's sessions through `host.resolve('sessions')`.
 */
import { definePlugin, OAuthError } from '@grantd/core'

export default definePlugin({
  name: 'test-session-plugin',
  register(host) {
    host.grant({
      type: 'urn:test:session-grant',
      parameters: ['sid'],
      required: ['sid'],
      async handle({ params, requestedScope }) {
        const session = await host.resolve('sessions').get(params.sid!)
        if (!session) throw new OAuthError('invalid_grant', 'no such session')
        return { subject: session.sub, scope: requestedScope ?? ['openid'], sid: session.sid, refreshToken: true }
      },
    })
    host.route('get', '/test/sessions', async (ctx) => {
      const sub = String(ctx.query.sub ?? '')
      ctx.body = { sessions: (await host.resolve('sessions').listBySubject(sub)).map((s) => ({ sid: s.sid, sub: s.sub })) }
    })
    host.route('post', '/test/sessions/end', async (ctx) => {
      const ended = await host.resolve('sessions').end(String(ctx.query.sid ?? ''))
      if (ended) await ended.notified
      ctx.body = { ended: ended !== undefined, clients: ended?.clients.map((c) => c.client_id) ?? [] }
    })
    host.route('post', '/test/consent/revoke', async (ctx) => {
      await host.resolve('consent').revoke(String(ctx.query.sub ?? ''), String(ctx.query.client ?? ''), ctx.state.requestId)
      ctx.body = { revoked: true }
    })
  },
})
