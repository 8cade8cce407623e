import t from 'tap'
import { basic, startServer } from '../helpers/server.js'

const config = {
  issuer: 'http://id.test',
  users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-1', username: 'alice', password: 'wonderland' }] } },
  plugins: ['@grantd/grant-authorization-code', '@grantd/grant-refresh-token', '@grantd/grant-client-credentials'],
  clients: [
    { client_id: 'spa', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: ['https://app.example.com/cb'], scope: 'openid api' },
    { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' },
  ],
}

t.test('browser clients may call token, revocation and userinfo from their registered origins', async (t) => {
  const srv = await startServer(config)
  t.teardown(srv.close)
  const preflight = await fetch(`${srv.url}/connect/token`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } })
  t.equal(preflight.status, 204)
  t.equal(preflight.headers.get('access-control-allow-origin'), 'https://app.example.com')
  t.match(preflight.headers.get('access-control-allow-methods') ?? '', /POST/)
  t.match(preflight.headers.get('access-control-allow-headers') ?? '', /Content-Type/)
  t.equal(preflight.headers.get('access-control-allow-credentials'), null, 'never with credentials')

  const error = await fetch(`${srv.url}/connect/token`, { method: 'POST', headers: { origin: 'https://app.example.com', 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=authorization_code&client_id=spa&code=x&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&code_verifier=' + 'a'.repeat(43) })
  t.equal(error.status, 400)
  t.equal(error.headers.get('access-control-allow-origin'), 'https://app.example.com', 'errors are readable by the app too')
  t.match(error.headers.get('vary') ?? '', /Origin/)

  for (const path of ['/connect/revocation', '/connect/userinfo', '/oauth2/token']) {
    const res = await fetch(`${srv.url}${path}`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com' } })
    t.equal(res.headers.get('access-control-allow-origin'), 'https://app.example.com', `${path} preflight`)
  }
})

t.test('other origins and introspection get no CORS headers', async (t) => {
  const srv = await startServer(config)
  t.teardown(srv.close)
  const evil = await fetch(`${srv.url}/connect/token`, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } })
  t.equal(evil.headers.get('access-control-allow-origin'), null)
  const post = await fetch(`${srv.url}/connect/token`, { method: 'POST', headers: { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded', authorization: basic('svc', 'svc-secret') }, body: 'grant_type=client_credentials&scope=api' })
  t.equal(post.status, 200, 'the request itself still works (CORS is a browser rule)')
  t.equal(post.headers.get('access-control-allow-origin'), null)
  const introspect = await fetch(`${srv.url}/connect/introspect`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com' } })
  t.equal(introspect.headers.get('access-control-allow-origin'), null, 'introspection is server-to-server')
})
