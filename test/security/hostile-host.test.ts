/**
 * Found by the fuzz suite: without a configured issuer, a Host (or trusted X-Forwarded-Host)
 * that matches the host pattern but is no valid URL authority (port 99999, `[::::]`) became
 * the issuer, and the login page's `new URL(issuer)` answered 500. Such hosts are now
 * `invalid_request` before any route runs.
 */
import t from 'tap'
import { buildRequest, exchange } from '../fuzz/raw-client.js'
import { startServer } from '../helpers/server.js'

t.test('a Host no URL can hold is invalid_request on every route', async (t) => {
  const srv = await startServer({
    proxy: { trust: true },
    cookies: { keys: ['hostile-host-cookie-key-0123456789'] },
    plugins: ['@grantd/grant-authorization-code'],
    clients: [{ client_id: 'spa', grant_types: ['authorization_code'], redirect_uris: ['http://127.0.0.1:5000/spa'], scope: 'openid' }],
  })
  t.teardown(srv.close)
  const authorize = '/connect/authorize?response_type=code&client_id=spa&redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fspa&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256'
  for (const [header, value] of [['Host', '127.0.0.1:99999'], ['Host', '[::::]'], ['X-Forwarded-Host', 'id.example.com:70000']] as const) {
    for (const path of [authorize, '/.well-known/openid-configuration']) {
      const headers: Array<[string, string]> = header === 'Host' ? [['Host', value]] : [['Host', `127.0.0.1:${srv.port}`], [header, value]]
      const answer = await exchange({ port: srv.port, timeoutMs: 3000, request: buildRequest({ method: 'GET', target: path, headers: [...headers, ['Connection', 'close']] }) })
      t.equal(answer.status, 400, `${header}: ${value} ${path.slice(0, 20)}`)
      t.same(JSON.parse(answer.body.toString()), { error: 'invalid_request', error_description: 'bad Host or forwarded headers' })
    }
  }
  t.same(srv.log.lines.filter((l) => l.includes('"level":"error"')), [], 'nothing failed inside')
})
