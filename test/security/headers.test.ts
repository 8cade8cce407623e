/**
 * Response headers (RFC 9700 §4.16 clickjacking, OWASP secure headers): every answer has
 * `X-Content-Type-Options: nosniff` and `Referrer-Policy`, none has `X-Powered-By`; every
 * HTML page has a strict CSP (no script at all, no framing) and `X-Frame-Options: DENY`,
 * including pages a plugin renders without setting them.
 */
import t from 'tap'
import { basic, postForm } from '../helpers/server.js'
import { exchange, buildRequest } from '../fuzz/raw-client.js'
import { authorizeUrl, CookieJar, get, loginForm, pkcePair, post, startFlowServer } from '../authorization-code/flow.js'

const WEB_REDIRECT = 'http://127.0.0.1:5000/callback'

t.test('security headers on every kind of answer', async (t) => {
  const srv = await startFlowServer({
    cookies: { keys: ['headers-test-cookie-key-0123456789'] },
    users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-alice', username: 'alice', password: 'wonderland' }] } },
    plugins: [
      '@grantd/grant-authorization-code', '@grantd/grant-client-credentials',
      { use: '@grantd/acr-idp', options: { providers: { upstream: { issuer: 'http://127.0.0.1:9', client_id: 'c', client_secret: 's' } } } },
      './test/security/html-page-plugin.ts',
    ],
    clients: [
      { client_id: 'web', client_secret: 'web-secret', grant_types: ['authorization_code'], redirect_uris: [WEB_REDIRECT], scope: 'openid', identity_providers: ['upstream'] },
      { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' },
    ],
  })
  t.teardown(srv.close)
  const { challenge } = pkcePair()
  const authorize = authorizeUrl(srv, { response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 's', code_challenge: challenge, code_challenge_method: 'S256' })
  const jar = new CookieJar()
  const loginPage = await get(authorize, jar)
  const form = loginForm(loginPage.body)

  const answers: Array<[string, { status: number; headers: Headers }]> = [
    ['discovery', await fetch(`${srv.url}/.well-known/openid-configuration`)],
    ['jwks', await fetch(`${srv.url}/.well-known/jwks.json`)],
    ['healthz', await fetch(`${srv.url}/healthz`)],
    ['token success', await postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc', 'svc-secret') })],
    ['token error', await postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials' }, { authorization: basic('svc', 'nope') })],
    ['introspection', await postForm(`${srv.url}/connect/introspect`, { token: 'x' }, { authorization: basic('svc', 'svc-secret') })],
    ['userinfo 401', await fetch(`${srv.url}/connect/userinfo`)],
    ['404', await fetch(`${srv.url}/nope`)],
    ['405', await fetch(`${srv.url}/connect/token`, { method: 'PUT' })],
    ['login page', loginPage],
    ['authorize error page', await get(authorizeUrl(srv, { response_type: 'code', client_id: 'nobody', redirect_uri: WEB_REDIRECT }))],
    ['authorize redirect', await get(authorizeUrl(srv, { response_type: 'token', client_id: 'web', redirect_uri: WEB_REDIRECT, state: 's' }))],
    ['login failure page', await post(form.action, { ...form.fields, username: 'alice', password: 'wrong' }, jar)],
    ['login CSRF page', await post(form.action, { ...form.fields, csrf: 'forged' }, new CookieJar())],
    ['acr-idp error page', await get(`${srv.url}/connect/external/upstream/start`)],
    ['plugin page without headers', await get(`${srv.url}/plugin-page`)],
  ]
  for (const [name, res] of answers) {
    t.equal(res.headers.get('x-content-type-options'), 'nosniff', `${name}: nosniff`)
    t.equal(res.headers.get('referrer-policy'), 'no-referrer', `${name}: Referrer-Policy`)
    t.equal(res.headers.get('x-powered-by'), null, `${name}: no X-Powered-By`)
    if (/html/.test(res.headers.get('content-type') ?? '')) {
      const csp = res.headers.get('content-security-policy') ?? ''
      t.match(csp, /default-src 'none'/, `${name}: CSP default-src 'none' (${res.status})`)
      t.match(csp, /frame-ancestors 'none'/, `${name}: CSP frame-ancestors 'none'`)
      t.notMatch(csp, /script-src|unsafe-eval/, `${name}: no script source allowed`)
      t.equal(res.headers.get('x-frame-options'), 'DENY', `${name}: X-Frame-Options`)
    }
  }
  t.ok(answers.filter(([, r]) => /html/.test(r.headers.get('content-type') ?? '')).length >= 6, 'the HTML pages were checked')

  const own = await get(`${srv.url}/plugin-page-own-csp`)
  t.equal(own.headers.get('content-security-policy'), "default-src 'none'; frame-ancestors 'none'; img-src https://cdn.example", 'a plugin\'s own CSP is kept')
  t.equal(own.headers.get('x-frame-options'), 'DENY')
})

t.test('methods the router does not know get 405 OAuth JSON, not a bare 501', async (t) => {
  const srv = await startFlowServer({
    plugins: ['@grantd/grant-client-credentials'],
    clients: [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' }],
  })
  t.teardown(srv.close)
  for (const method of ['SEARCH', 'PURGE', 'PROPFIND', 'TRACE']) {
    const answer = await exchange({ port: srv.port, timeoutMs: 3000, request: buildRequest({ method, target: '/connect/token', headers: [['Host', `127.0.0.1:${srv.port}`], ['Connection', 'close']] }) })
    t.equal(answer.status, 405, `${method}: status`)
    t.same(JSON.parse(answer.body.toString()), { error: 'invalid_request', error_description: 'method not allowed' }, `${method}: body`)
    t.equal(answer.headers.get('x-content-type-options')?.[0], 'nosniff')
  }
})

t.test('requests the HTTP parser refuses still get the security headers', async (t) => {
  const srv = await startFlowServer({
    plugins: ['@grantd/grant-client-credentials'],
    clients: [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' }],
  })
  t.teardown(srv.close)
  const answer = await exchange({ port: srv.port, timeoutMs: 3000, request: Buffer.from(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bad: a\u0000b\r\n\r\n`, 'latin1') })
  t.equal(answer.status, 400)
  t.equal(answer.headers.get('x-content-type-options')?.[0], 'nosniff')
  t.equal(answer.headers.get('referrer-policy')?.[0], 'no-referrer')
})
