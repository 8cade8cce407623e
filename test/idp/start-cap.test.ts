import t from 'tap'
import { freePort, startServer } from '../helpers/server.js'
import { authorizeUrl, CookieJar, get, pkcePair } from '../authorization-code/flow.js'

/**
 * SPEC §9: anonymous requests never create unbounded state. Starting a federated login is
 * the one place an anonymous request stores something (the encrypted round-trip record),
 * so the number one client address may start is capped (`maxStartsPerAddress`).
 */

const WEB_REDIRECT = 'http://127.0.0.1:5000/callback'

t.test('federated logins started from one address are capped', async (t) => {
  const downPort = await freePort()
  const down = `http://127.0.0.1:${downPort}`
  const up = await startServer({
    users: { use: '@grantd/users-static', options: { users: [{ sub: 'up-alice', username: 'alice', password: 'upstream-pw' }] } },
    plugins: ['@grantd/grant-authorization-code'],
    clients: [{ client_id: 'grantd', client_secret: 'upstream-secret', grant_types: ['authorization_code'], redirect_uris: [`${down}/connect/external/upstream/callback`], scope: 'openid profile email' }],
  })
  t.teardown(up.close)
  const srv = await startServer({
    issuer: down,
    users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-alice', username: 'alice', password: 'pw', links: [{ idp: 'upstream', sub: 'up-alice' }] }] } },
    plugins: ['@grantd/grant-authorization-code', { use: '@grantd/acr-idp', options: { maxStartsPerAddress: 5, providers: { upstream: { issuer: up.url, client_id: 'grantd', client_secret: 'upstream-secret' } } } }],
    clients: [{ client_id: 'web', client_secret: 'web-secret', grant_types: ['authorization_code'], redirect_uris: [WEB_REDIRECT], scope: 'openid', require_pkce: true, identity_providers: ['upstream'] }],
  }, { port: downPort })
  t.teardown(srv.close)
  const store = srv.server.registry.store as unknown as { size: number }

  const { challenge } = pkcePair()
  const params = { response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 'cap', code_challenge: challenge, code_challenge_method: 'S256', acr_values: 'idp:upstream' }
  for (let i = 0; i < 5; i++) {
    const res = await get(authorizeUrl(srv, params), new CookieJar())
    t.equal(res.location?.origin, up.url, `start ${i + 1}: sent upstream`)
  }
  const sizeAtCap = store.size
  for (let i = 0; i < 20; i++) {
    const res = await get(authorizeUrl(srv, params), new CookieJar())
    t.equal(res.status, 302)
    t.equal(res.location!.origin + res.location!.pathname, WEB_REDIRECT, 'over the cap: back to the client')
    t.equal(res.location!.searchParams.get('error'), 'temporarily_unavailable')
    t.equal(res.location!.searchParams.get('state'), 'cap')
  }
  t.equal(store.size, sizeAtCap, 'no record stored over the cap')
  t.ok(sizeAtCap <= 6, `5 round-trip records and one counter (${sizeAtCap})`)
})
