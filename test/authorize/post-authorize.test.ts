import t from 'tap'
import {
  baseConfig, CookieJar, get, loginForCode, loginForm, pkcePair, post, redeem, startFlowServer, WEB_REDIRECT,
} from '../authorization-code/flow.js'

/**
 * OIDC Core §3.1.2.1: the authorization endpoint MUST support GET and POST (form
 * serialization). SPEC §9: a POST from another site carries no session cookie
 * (SameSite=Lax), so it shows the login form, and with prompt=none answers login_required.
 * Same validation and the same errors as GET.
 */

t.test('POST /connect/authorize', async (t) => {
  const srv = await startFlowServer(baseConfig())
  t.teardown(srv.close)
  const endpoint = `${srv.url}/connect/authorize`
  const { verifier, challenge } = pkcePair()
  const params = {
    response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid profile',
    state: 'post-state', nonce: 'post-nonce', code_challenge: challenge, code_challenge_method: 'S256',
  }

  t.test('a form POST shows the login form; signing in ends at the client with a code that redeems', async (t) => {
    const jar = new CookieJar()
    const page = await post(endpoint, params, jar)
    t.equal(page.status, 200, page.body.slice(0, 200))
    t.match(page.headers.get('content-type'), /text\/html/)
    t.equal(page.headers.get('cache-control'), 'no-store')
    const form = loginForm(page.body)
    const res = await post(form.action, { ...form.fields, username: 'alice', password: 'wonderland' }, jar)
    t.equal(res.status, 302)
    t.equal(res.location!.searchParams.get('state'), 'post-state')
    t.equal(res.location!.searchParams.get('iss'), srv.url)
    const tokens = await redeem(srv, res.location!.searchParams.get('code')!, verifier)
    t.equal(tokens.status, 200, 'the code redeems')

    // Same site (the session cookie is sent): single sign-on answers the POST with a code.
    const sso = await post(endpoint, { ...params, state: 'sso' }, jar)
    t.equal(sso.status, 302)
    t.ok(sso.location!.searchParams.get('code'), 'a code from the session')
    t.equal(sso.location!.searchParams.get('state'), 'sso')
  })

  t.test('a cross-site POST (no cookie, SameSite=Lax) shows the form; prompt=none → login_required', async (t) => {
    // The user has a session in this browser, but a POST from another site does not carry it.
    await loginForCode(srv, { scope: 'openid' })
    const page = await post(endpoint, params)
    t.equal(page.status, 200)
    t.ok(loginForm(page.body).fields.pending, 'the login form')
    const silent = await post(endpoint, { ...params, prompt: 'none', state: 'silent' })
    t.equal(silent.status, 302)
    t.equal(silent.location!.origin + silent.location!.pathname, WEB_REDIRECT)
    t.equal(silent.location!.searchParams.get('error'), 'login_required')
    t.equal(silent.location!.searchParams.get('state'), 'silent')
    t.equal(silent.location!.searchParams.get('iss'), srv.url)
    t.notOk(silent.location!.searchParams.get('code'))
  })

  t.test('the same errors as GET', async (t) => {
    for (const [label, body] of [
      ['unknown client', { ...params, client_id: 'nobody' }],
      ['unregistered redirect_uri', { ...params, redirect_uri: 'https://evil.example/cb' }],
      ['missing client_id', { ...params, client_id: '' }],
    ] as const) {
      const viaPost = await post(endpoint, body)
      const viaGet = await get(`${endpoint}?${new URLSearchParams(body)}`)
      t.equal(viaPost.status, 400, `${label}: 400`)
      t.equal(viaPost.status, viaGet.status, `${label}: same status as GET`)
      t.notOk(viaPost.location, `${label}: never a redirect`)
      t.match(viaPost.headers.get('content-type'), /text\/html/)
    }
    for (const [label, body, error] of [
      ['missing response_type', { ...params, response_type: '' }, 'invalid_request'],
      ['unsupported response_type', { ...params, response_type: 'token' }, 'unsupported_response_type'],
      ['scope not allowed', { ...params, scope: 'openid admin' }, 'invalid_scope'],
      ['bad max_age', { ...params, max_age: '-1' }, 'invalid_request'],
      ['request object', { ...params, request: 'eyJ.x.y' }, 'request_not_supported'],
    ] as const) {
      const viaPost = await post(endpoint, body)
      const viaGet = await get(`${endpoint}?${new URLSearchParams(body)}`)
      t.equal(viaPost.status, 302, label)
      t.equal(viaPost.location!.searchParams.get('error'), error, `${label}: ${error}`)
      t.equal(viaPost.location!.searchParams.get('error'), viaGet.location!.searchParams.get('error'), `${label}: same error as GET`)
      t.equal(viaPost.location!.searchParams.get('state'), 'post-state')
    }
    const repeated = await post(endpoint, `${new URLSearchParams(params)}&scope=openid`)
    t.equal(repeated.location!.searchParams.get('error'), 'invalid_request', 'a repeated parameter')
    const twoClients = await post(endpoint, `${new URLSearchParams(params)}&client_id=spa`)
    t.equal(twoClients.status, 400)
    t.notOk(twoClients.location, 'two client_ids: a page, never a redirect')
  })

  t.test('a body that cannot be read is an HTML error, never a 500', async (t) => {
    const json = await fetch(endpoint, { method: 'POST', body: JSON.stringify(params), headers: { 'content-type': 'application/json' }, redirect: 'manual' })
    t.equal(json.status, 400)
    t.match(json.headers.get('content-type'), /text\/html/)
    const big = await post(endpoint, `${new URLSearchParams(params)}&x=${'a'.repeat(20_000)}`)
    t.equal(big.status, 413)
    t.match(big.headers.get('content-type'), /text\/html/)
    const empty = await post(endpoint, '')
    t.equal(empty.status, 400)
    t.match(empty.body, /client_id is missing/)
  })
})
