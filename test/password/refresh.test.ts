import t from 'tap'
import { decodeJwt } from 'jose'
import { basic, postForm, startServer, type RunningServer } from '../helpers/server.js'

/**
 * Password grant + refresh_token: offline_access yields a refresh token, a refresh may
 * narrow the scope but never widen it, and the user service is asked again (with the
 * acr context of the original grant) whether the user is still active.
 */

const RO = { authorization: basic('ro', 'ro-secret') }

function token(srv: RunningServer, form: Record<string, string>) {
  return postForm(`${srv.url}/connect/token`, form, RO)
}

t.test('password grant with refresh tokens', async (t) => {
  const srv = await startServer({
    issuer: 'http://id.test',
    users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-alice', username: 'alice', password: 'wonderland', tenant: 'acme', claims: { name: 'Alice' } }] } },
    plugins: ['@grantd/grant-password', '@grantd/grant-refresh-token', '@grantd/acr-tenant'],
    clients: [{ client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password', 'refresh_token'], scope: 'openid profile api offline_access' }],
  })
  t.teardown(srv.close)

  t.test('offline_access yields a refresh token; without it there is none', async (t) => {
    const withOffline = await token(srv, { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'openid profile api offline_access' })
    t.equal(withOffline.status, 200)
    t.type(withOffline.json.refresh_token, 'string')
    const without = await token(srv, { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'openid api' })
    t.equal(without.status, 200)
    t.notOk('refresh_token' in without.json)
  })

  t.test('a refresh narrows the scope, never widens it', async (t) => {
    const first = await token(srv, { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'openid api offline_access', acr_values: 'tenant:acme' })
    t.equal(first.status, 200)
    const narrowed = await token(srv, { grant_type: 'refresh_token', refresh_token: first.json.refresh_token as string, scope: 'api' })
    t.equal(narrowed.status, 200, narrowed.text)
    t.equal(narrowed.json.scope, 'api')
    t.equal(decodeJwt(narrowed.json.access_token as string).scope, 'api')
    t.equal(decodeJwt(narrowed.json.access_token as string).sub, 'u-alice')
    t.notOk('id_token' in narrowed.json, 'no openid in the narrowed scope, no ID token')

    const again = await token(srv, { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'api offline_access' })
    const widened = await token(srv, { grant_type: 'refresh_token', refresh_token: again.json.refresh_token as string, scope: 'openid api offline_access' })
    t.equal(widened.status, 400)
    t.equal(widened.json.error, 'invalid_scope', 'openid was not granted originally')
    const same = await token(srv, { grant_type: 'refresh_token', refresh_token: (widened.json.refresh_token as string | undefined) ?? (again.json.refresh_token as string) })
    // A refused widening must not have used up the token (or, with rotation, the family).
    t.equal(same.status, 200, same.text)
    t.equal(same.json.scope, 'api offline_access')
  })
})

t.test('refresh asks the user service whether the user is still active', async (t) => {
  const srv = await startServer({
    issuer: 'http://id.test',
    users: './test/password/context-users.ts',
    plugins: ['@grantd/grant-password', '@grantd/grant-refresh-token', '@grantd/acr-tenant'],
    clients: [{ client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password', 'refresh_token'], scope: 'api offline_access' }],
  })
  t.teardown(srv.close)
  const users = srv.server.registry.users as unknown as { active: boolean; activeChecks: string[] }
  const first = await token(srv, { grant_type: 'password', username: 'erin', password: 'pw', scope: 'api offline_access', acr_values: 'tenant:acme' })
  t.equal(first.status, 200)
  const ok = await token(srv, { grant_type: 'refresh_token', refresh_token: first.json.refresh_token as string })
  t.equal(ok.status, 200, ok.text)
  users.active = false
  const checks = users.activeChecks.length
  const refused = await token(srv, { grant_type: 'refresh_token', refresh_token: ok.json.refresh_token as string })
  t.equal(refused.status, 400)
  t.equal(refused.json.error, 'invalid_grant')
  t.ok(users.activeChecks.length > checks, 'isActive was asked')
})
