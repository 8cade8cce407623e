import t from 'tap'
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose'
import { postForm } from '../helpers/server.js'
import {
  ALICE, authorizeUrl, baseConfig, CookieJar, get, loginForCode, loginForm, pkcePair, post, redeem, SPA_REDIRECT,
  startFlowServer, WEB_AUTH, WEB_REDIRECT,
} from './flow.js'

/**
 * SPEC §6 black-box: the whole browser flow over HTTP, then every error path of the
 * authorization endpoint and the login form.
 */

t.test('authorization code flow end to end', async (t) => {
  const srv = await startFlowServer(baseConfig())
  t.teardown(srv.close)
  const jwks = createLocalJWKSet((await (await fetch(`${srv.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet)

  // 1. authorize → the login page
  const jar = new CookieJar()
  const { verifier, challenge } = pkcePair()
  const page = await get(authorizeUrl(srv, {
    response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid profile email offline_access api',
    state: 'xyz-state', nonce: 'nonce-123', code_challenge: challenge, code_challenge_method: 'S256',
  }), jar)
  t.equal(page.status, 200)
  t.match(page.headers.get('content-type'), /^text\/html/)
  t.equal(page.headers.get('cache-control'), 'no-store')
  t.equal(page.headers.get('x-frame-options'), 'DENY')
  const csp = page.headers.get('content-security-policy') ?? ''
  t.match(csp, /default-src 'none'/)
  t.match(csp, /style-src 'sha256-[A-Za-z0-9+/=]+'/, 'only the inline stylesheet, by hash')
  t.notMatch(csp, /script-src/, 'no script at all')
  t.match(csp, new RegExp(`form-action ${srv.url} http://127.0.0.1:5000`))
  t.match(page.body, /<label for="username">/)
  t.match(page.body, /<label for="password">/)
  t.match(page.body, /Web &lt;App&gt;/, 'client_name is escaped')
  t.notMatch(page.body, /<script|https?:\/\/(?!127\.0\.0\.1)/i, 'no scripts, no external assets')
  const form = loginForm(page.body)
  t.equal(form.action, `${srv.url}/connect/login`, 'form action built from the issuer')
  t.match(form.fields.csrf, /^[A-Za-z0-9_-]{43}$/)
  t.match(form.fields.pending, /^[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{43}$/, 'the request travels in the form, MAC-protected (SPEC §9)')
  t.match(jar.lines.join('\n'), /grantd_login=[^;]+; Path=\/connect; Max-Age=\d+; HttpOnly; SameSite=Lax/)

  // 2. a wrong password re-renders the form with an announced error, no redirect
  const bad = await post(form.action, { ...form.fields, username: 'alice', password: 'nope' }, jar)
  t.equal(bad.status, 401)
  t.notOk(bad.location)
  t.match(bad.body, /role="alert"[^>]*>The username or password is incorrect\./)
  t.match(bad.body, /aria-invalid="true"/)
  t.match(bad.body, /value="alice"/, 'the username is kept')

  // 3. the right password: session cookie, 302 to the client with code, state and iss
  const good = await post(form.action, { ...loginForm(bad.body).fields, username: 'alice', password: 'wonderland' }, jar)
  t.equal(good.status, 302)
  t.equal(good.location!.origin + good.location!.pathname, WEB_REDIRECT)
  t.equal(good.location!.searchParams.get('state'), 'xyz-state')
  t.equal(good.location!.searchParams.get('iss'), srv.url, 'RFC 9207')
  const code = good.location!.searchParams.get('code')!
  t.match(code, /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/, '256 random bits after the grant id')
  const sessionCookie = good.headers.getSetCookie().find((c) => c.startsWith('grantd_session='))
  t.ok(sessionCookie)
  t.match(sessionCookie, /HttpOnly/)
  t.match(sessionCookie, /SameSite=Lax/)
  t.notMatch(sessionCookie, /Secure/, 'http issuer: not Secure')

  // 4. token
  const tokens = await redeem(srv, code, verifier)
  t.equal(tokens.status, 200, tokens.text)
  t.equal(tokens.headers.get('cache-control'), 'no-store')
  t.equal(tokens.json.token_type, 'Bearer')
  t.equal(tokens.json.scope, 'openid profile email offline_access api')
  t.type(tokens.json.refresh_token, 'string')
  const { payload: id, protectedHeader } = await jwtVerify(tokens.json.id_token as string, jwks, { issuer: srv.url, audience: 'web' })
  t.equal(protectedHeader.typ, 'JWT')
  t.equal(id.sub, 'u-alice')
  t.equal(id.azp, 'web')
  t.equal(id.nonce, 'nonce-123')
  t.type(id.auth_time, 'number')
  t.type(id.at_hash, 'string')
  t.same(id.amr, ['pwd'])
  t.equal(id.email, 'alice@example.com')
  t.equal(id.name, 'Alice')
  const at = decodeJwt(tokens.json.access_token as string)
  t.equal(at.sub, 'u-alice')
  t.equal(at.client_id, 'web')
  t.equal(at.gid, code.split('.')[0], 'access token belongs to the code\'s grant family')

  // 5. userinfo
  const info = await fetch(`${srv.url}/connect/userinfo`, { headers: { authorization: `Bearer ${tokens.json.access_token}` } })
  t.equal(info.status, 200)
  t.same(await info.json(), { sub: 'u-alice', name: 'Alice', preferred_username: 'alice', email: 'alice@example.com', email_verified: true })

  // 6. refresh (rotation)
  const refreshed = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: tokens.json.refresh_token as string }, WEB_AUTH)
  t.equal(refreshed.status, 200, refreshed.text)
  t.not(refreshed.json.refresh_token, tokens.json.refresh_token, 'rotated')
  const { payload: id2 } = await jwtVerify(refreshed.json.id_token as string, jwks, { issuer: srv.url, audience: 'web' })
  t.equal(id2.auth_time, id.auth_time, 'OIDC Core §12.2: auth_time of the original authentication')
  t.equal(id2.sub, 'u-alice')

  // 7. revoke the refresh token → the whole family, including access tokens, is inactive
  const revoked = await postForm(`${srv.url}/connect/revocation`, { token: refreshed.json.refresh_token as string, token_type_hint: 'refresh_token' }, WEB_AUTH)
  t.equal(revoked.status, 200)
  for (const token of [refreshed.json.refresh_token, refreshed.json.access_token, tokens.json.access_token] as string[]) {
    const intro = await postForm(`${srv.url}/connect/introspect`, { token }, WEB_AUTH)
    t.equal(intro.status, 200)
    t.same(intro.json, { active: false })
  }
  const after = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: refreshed.json.refresh_token as string }, WEB_AUTH)
  t.equal(after.status, 400)
  t.equal(after.json.error, 'invalid_grant')

  // 8. single sign-on: the session answers the next request without a form
  const { challenge: c2 } = pkcePair()
  const sso = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 's2', code_challenge: c2, code_challenge_method: 'S256' }), jar)
  t.equal(sso.status, 302)
  t.ok(sso.location!.searchParams.get('code'))
  t.equal(sso.location!.searchParams.get('iss'), srv.url)
  // prompt=login shows the form despite the session
  const forced = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 's3', code_challenge: c2, code_challenge_method: 'S256', prompt: 'login' }), jar)
  t.equal(forced.status, 200)
  t.match(forced.body, /<form/)
  // max_age=0 as well
  const aged = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid', code_challenge: c2, code_challenge_method: 'S256', max_age: '0' }), jar)
  t.equal(aged.status, 200)
  // prompt=none with the session: a code
  const silent = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 's4', code_challenge: c2, code_challenge_method: 'S256', prompt: 'none' }), jar)
  t.equal(silent.status, 302)
  t.ok(silent.location!.searchParams.get('code'))
})

t.test('authorization endpoint errors', async (t) => {
  const srv = await startFlowServer(baseConfig())
  t.teardown(srv.close)
  const { challenge } = pkcePair()
  const valid = { response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 'S', code_challenge: challenge, code_challenge_method: 'S256' }

  t.test('bad client_id or redirect_uri: an HTML page, never a redirect', async (t) => {
    const cases: Array<[string, Record<string, string | undefined>]> = [
      ['missing client_id', { ...valid, client_id: undefined }],
      ['unknown client_id', { ...valid, client_id: 'nobody' }],
      ['missing redirect_uri', { ...valid, redirect_uri: undefined }],
      ['unregistered redirect_uri', { ...valid, redirect_uri: 'http://127.0.0.1:5000/evil' }],
      ['redirect_uri differing only by a trailing slash', { ...valid, redirect_uri: `${WEB_REDIRECT}/` }],
      ['redirect_uri with an added query', { ...valid, redirect_uri: `${WEB_REDIRECT}?a=1` }],
      ['redirect_uri differing in case', { ...valid, redirect_uri: WEB_REDIRECT.replace('callback', 'Callback') }],
      ['redirect_uri with a <script>', { ...valid, redirect_uri: 'http://x/"><script>alert(1)</script>' }],
    ]
    for (const [name, params] of cases) {
      const res = await get(authorizeUrl(srv, params))
      t.equal(res.status, 400, name)
      t.notOk(res.location, `${name}: no redirect`)
      t.match(res.headers.get('content-type'), /text\/html/, name)
      t.notMatch(res.body, /<script>/, `${name}: nothing reflected unescaped`)
    }
    const repeated = await get(`${authorizeUrl(srv, valid)}&client_id=web`)
    t.equal(repeated.status, 400)
    t.notOk(repeated.location)
    const repeatedRedirect = await get(`${authorizeUrl(srv, valid)}&redirect_uri=${encodeURIComponent('http://evil.example/')}`)
    t.equal(repeatedRedirect.status, 400)
    t.notOk(repeatedRedirect.location)
  })

  t.test('other errors: redirect with error, state and iss', async (t) => {
    const cases: Array<[string, Record<string, string | undefined>, string]> = [
      ['missing response_type', { ...valid, response_type: undefined }, 'invalid_request'],
      ['response_type=token', { ...valid, response_type: 'token' }, 'unsupported_response_type'],
      ['response_type=code id_token', { ...valid, response_type: 'code id_token' }, 'unsupported_response_type'],
      ['missing scope', { ...valid, scope: undefined }, 'invalid_scope'],
      ['scope outside the client', { ...valid, scope: 'openid admin' }, 'invalid_scope'],
      ['missing code_challenge for require_pkce', { ...valid, code_challenge: undefined, code_challenge_method: undefined }, 'invalid_request'],
      ['plain for a client without allow_plain_pkce', { ...valid, code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' }, 'invalid_request'],
      ['challenge without method defaults to plain', { ...valid, code_challenge_method: undefined }, 'invalid_request'],
      ['unknown method', { ...valid, code_challenge_method: 'S512' }, 'invalid_request'],
      ['malformed S256 challenge', { ...valid, code_challenge: 'short' }, 'invalid_request'],
      ['method without challenge', { ...valid, code_challenge: undefined }, 'invalid_request'],
      ['prompt=none login', { ...valid, prompt: 'none login' }, 'invalid_request'],
      ['prompt=none without a session', { ...valid, prompt: 'none' }, 'login_required'],
      ['bad max_age', { ...valid, max_age: '-1' }, 'invalid_request'],
      ['response_mode=fragment', { ...valid, response_mode: 'fragment' }, 'invalid_request'],
      ['request object', { ...valid, request: 'eyJ.x.y' }, 'request_not_supported'],
      ['request_uri', { ...valid, request_uri: 'https://x/y' }, 'request_uri_not_supported'],
      ['oversized nonce', { ...valid, nonce: 'n'.repeat(600) }, 'invalid_request'],
      ['client not registered for authorization_code', { ...valid, client_id: 'svc' }, 'unauthorized_client'],
    ]
    for (const [name, params, error] of cases) {
      // svc has no redirect_uris: it fails at redirect_uri already, which must be a page.
      const res = await get(authorizeUrl(srv, params))
      if (params.client_id === 'svc') {
        t.equal(res.status, 400, name)
        t.notOk(res.location, `${name}: a client without that redirect_uri gets a page`)
        continue
      }
      t.equal(res.status, 302, name)
      const loc = res.location!
      t.equal(loc.origin + loc.pathname, WEB_REDIRECT, name)
      t.equal(loc.searchParams.get('error'), error, name)
      t.equal(loc.searchParams.get('state'), 'S', `${name}: state`)
      t.equal(loc.searchParams.get('iss'), srv.url, `${name}: iss`)
      t.notOk(loc.searchParams.get('code'), name)
    }
    const dup = await get(`${authorizeUrl(srv, valid)}&scope=api`)
    t.equal(dup.location?.searchParams.get('error'), 'invalid_request', 'a repeated parameter')
    const dupState = await get(`${authorizeUrl(srv, valid)}&state=T&scope=nope`)
    t.equal(dupState.location?.searchParams.get('error'), 'invalid_request')
    t.equal(dupState.location?.searchParams.get('state'), null, 'an ambiguous state is not echoed')
  })

  t.test('a redirect_uri with a query keeps it and appends the response', async (t) => {
    const res = await get(authorizeUrl(srv, { ...valid, redirect_uri: 'http://127.0.0.1:5000/other?x=1', response_type: 'token' }))
    t.equal(res.location!.searchParams.get('x'), '1')
    t.equal(res.location!.searchParams.get('error'), 'unsupported_response_type')
  })

  t.test('public clients must use PKCE', async (t) => {
    const res = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'spa', redirect_uri: SPA_REDIRECT, scope: 'openid', state: 'p' }))
    t.equal(res.location!.searchParams.get('error'), 'invalid_request')
    t.match(res.location!.searchParams.get('error_description'), /code_challenge/)
  })

  t.test('plain PKCE works for a client registered for it', async (t) => {
    const verifier = 'v'.repeat(50)
    const { code } = await loginForCode(srv, { client: 'plain', scope: 'openid', pkce: false, extra: { code_challenge: verifier, code_challenge_method: 'plain' } })
    const res = await redeem(srv, code, verifier, { auth: { authorization: 'Basic ' + Buffer.from('plain:plain-secret').toString('base64') } })
    t.equal(res.status, 200, res.text)
  })
})

t.test('login form: CSRF, expiry, escaping, attempts, tenant', async (t) => {
  const srv = await startFlowServer(baseConfig())
  t.teardown(srv.close)
  const { challenge } = pkcePair()
  const params = { response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 'S', code_challenge: challenge, code_challenge_method: 'S256' }

  t.test('a form posted without the browser cookie, or with a forged csrf, is refused', async (t) => {
    const jar = new CookieJar()
    const page = await get(authorizeUrl(srv, params), jar)
    const form = loginForm(page.body)
    const noCookie = await post(form.action, { ...form.fields, username: 'alice', password: 'wonderland' })
    t.equal(noCookie.status, 403)
    t.notOk(noCookie.location)
    t.notOk(noCookie.headers.getSetCookie().some((c) => c.startsWith('grantd_session=')), 'no session')
    const forged = await post(form.action, { ...form.fields, csrf: 'A'.repeat(43), username: 'alice', password: 'wonderland' }, jar)
    t.equal(forged.status, 403)
    const missing = await post(form.action, { pending: form.fields.pending!, username: 'alice', password: 'wonderland' }, jar)
    t.equal(missing.status, 403)
    // The attacker's own browser and pending request cannot be used from the victim's browser.
    const attacker = new CookieJar()
    const attackerPage = await get(authorizeUrl(srv, params), attacker)
    const attackerForm = loginForm(attackerPage.body)
    const crossed = await post(form.action, { ...attackerForm.fields, username: 'alice', password: 'wonderland' }, jar)
    t.equal(crossed.status, 403)
    // The legitimate form still works afterwards.
    const ok = await post(form.action, { ...form.fields, username: 'alice', password: 'wonderland' }, jar)
    t.equal(ok.status, 302)
    t.ok(ok.location!.searchParams.get('code'))
    // Submitting the same form again: the request is single-use.
    const again = await post(form.action, { ...form.fields, username: 'alice', password: 'wonderland' }, jar)
    t.equal(again.status, 400)
    t.match(again.body, /expired/)
  })

  t.test('unknown pending request, malformed and oversize bodies, wrong content type', async (t) => {
    const unknown = await post(`${srv.url}/connect/login`, { pending: 'x'.repeat(43), csrf: 'y', username: 'a', password: 'b' })
    t.equal(unknown.status, 400)
    t.match(unknown.headers.get('content-type'), /text\/html/)
    const dup = await post(`${srv.url}/connect/login`, 'pending=a&pending=b')
    t.equal(dup.status, 400)
    const big = await post(`${srv.url}/connect/login`, `pending=${'a'.repeat(20_000)}`)
    t.equal(big.status, 413)
    const json = await fetch(`${srv.url}/connect/login`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
    t.equal(json.status, 400)
    t.match(json.headers.get('content-type'), /text\/html/)
  })

  t.test('missing fields and reflected values are escaped', async (t) => {
    const jar = new CookieJar()
    const page = await get(authorizeUrl(srv, { ...params, login_hint: '"><script>alert(1)</script>' }), jar)
    t.notMatch(page.body, /<script>alert/)
    t.match(page.body, /value="&quot;&gt;&lt;script&gt;alert\(1\)&lt;\/script&gt;"/)
    const form = loginForm(page.body)
    const empty = await post(form.action, { ...form.fields, username: '<b>x</b>', password: '' }, jar)
    t.equal(empty.status, 400)
    t.match(empty.body, /Enter your username and password/)
    t.match(empty.body, /value="&lt;b&gt;x&lt;\/b&gt;"/)
  })

  t.test('too many failed attempts end the request with access_denied', async (t) => {
    const jar = new CookieJar()
    const page = await get(authorizeUrl(srv, params), jar)
    let form = loginForm(page.body)
    let res = await post(form.action, { ...form.fields, username: 'alice', password: 'x' }, jar)
    for (let i = 1; i < 10; i++) {
      form = loginForm(res.body)
      res = await post(form.action, { ...form.fields, username: 'alice', password: 'x' }, jar)
      t.equal(res.status, 401)
    }
    res = await post(form.action, { ...form.fields, username: 'alice', password: 'wonderland' }, jar)
    t.equal(res.status, 302)
    t.equal(res.location!.searchParams.get('error'), 'access_denied')
    t.equal(res.location!.searchParams.get('state'), 'S')
    t.notOk(res.location!.searchParams.get('code'))
  })

  t.test('acr_values tenant reaches the user service', async (t) => {
    const other = await get(authorizeUrl(srv, { ...params, acr_values: 'tenant:globex' }), new CookieJar())
    const jar = new CookieJar()
    const page = await get(authorizeUrl(srv, { ...params, acr_values: 'tenant:globex' }), jar)
    t.equal(other.status, 200)
    const form = loginForm(page.body)
    const wrongTenant = await post(form.action, { ...form.fields, username: 'alice', password: 'wonderland' }, jar)
    t.equal(wrongTenant.status, 401, 'alice is not in tenant globex')
    const { code, verifier } = await loginForCode(srv, { scope: 'openid', extra: { acr_values: 'tenant:acme unknown:thing' } })
    const res = await redeem(srv, code, verifier)
    t.equal(res.status, 200, res.text)
    // A session of tenant acme does not answer a request for another tenant.
    const sessionJar = new CookieJar()
    await loginForCode(srv, { scope: 'openid', jar: sessionJar, extra: { acr_values: 'tenant:acme' } })
    const cross = await get(authorizeUrl(srv, { ...params, acr_values: 'tenant:globex', prompt: 'none' }), sessionJar)
    t.equal(cross.location!.searchParams.get('error'), 'login_required')
  })

  t.test('a tampered session cookie is ignored', async (t) => {
    const { jar } = await loginForCode(srv, { scope: 'openid' })
    const value = jar.cookies.get('grantd_session')!
    jar.cookies.set('grantd_session', value.slice(0, -2) + (value.endsWith('AA') ? 'BB' : 'AA'))
    const res = await get(authorizeUrl(srv, { ...params, prompt: 'none' }), jar)
    t.equal(res.location!.searchParams.get('error'), 'login_required')
  })

  t.test('users-static alice is who signs in', async (t) => {
    const { code, verifier } = await loginForCode(srv, { scope: 'openid' })
    const res = await redeem(srv, code, verifier)
    t.equal(decodeJwt(res.json.id_token as string).sub, ALICE.sub)
  })
})

t.test('Secure cookies behind an https issuer', async (t) => {
  const config = baseConfig()
  const srv = await startFlowServer(config)
  t.teardown(srv.close)
  // The issuer is fixed by startFlowServer; a second server with an https issuer checks the attribute.
  const { startServer } = await import('../helpers/server.js')
  const https = await startServer({ ...config, plugins: ['@grantd/grant-authorization-code', '@grantd/grant-refresh-token', '@grantd/acr-tenant', '@grantd/grant-client-credentials'], issuer: 'https://id.example.test' })
  t.teardown(https.close)
  const { challenge } = pkcePair()
  const url = new URL(`${https.url}/connect/authorize`)
  for (const [k, v] of Object.entries({ response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' })) url.searchParams.set(k, v)
  const res = await fetch(url, { redirect: 'manual' })
  t.equal(res.status, 200)
  t.match(res.headers.getSetCookie().join('\n'), /grantd_login=[^\n]*; Secure/)
  t.match(await res.text(), /action="https:\/\/id\.example\.test\/connect\/login"/)
})
