import t from 'tap'
import { authorizeUrl, CookieJar, get, loginForm, post, startFlowServer } from '../authorization-code/flow.js'
import { basic, postForm } from '../helpers/server.js'
import { sessionConfig, THIRD_REDIRECT } from './setup.js'

/** Consent for clients with require_consent (SPEC §10), over HTTP like a browser. */
t.test('consent', async (t) => {
  const srv = await startFlowServer(sessionConfig())
  t.teardown(srv.close)
  const jar = new CookieJar()
  const THIRD = { authorization: basic('third', 'third-secret') }

  const ask = (scope: string, extra: Record<string, string> = {}) =>
    get(authorizeUrl(srv, { response_type: 'code', client_id: 'third', redirect_uri: THIRD_REDIRECT, scope, state: 'st-c', ...extra }), jar)

  async function signIn(scope: string) {
    const page = await ask(scope)
    t.equal(page.status, 200)
    const form = loginForm(page.body)
    return post(form.action, { ...form.fields, username: 'alice', password: 'wonderland' }, jar)
  }

  t.test('after login the page lists the scopes and the client name; deny → access_denied', async (t) => {
    const res = await signIn('openid profile')
    t.equal(res.status, 200, 'the consent page, not a code')
    t.match(res.body, /Third &lt;Party&gt;/, 'client_name, escaped')
    t.match(res.body, /Sign you in with your account/)
    t.match(res.body, /Your basic profile/)
    t.match(res.headers.get('content-security-policy'), /form-action/)
    const form = loginForm(res.body)
    const denied = await post(form.action, { ...form.fields, decision: 'deny' }, jar)
    t.equal(denied.status, 302)
    t.equal(denied.location?.origin + denied.location!.pathname, THIRD_REDIRECT)
    t.equal(denied.location?.searchParams.get('error'), 'access_denied')
    t.equal(denied.location?.searchParams.get('state'), 'st-c')
    t.equal(denied.location?.searchParams.get('iss'), srv.url)
    const replay = await post(form.action, { ...form.fields, decision: 'allow' }, jar)
    t.equal(replay.status, 400, 'a decided request cannot be decided again')
  })

  let refreshToken = ''
  t.test('allow → a code; remembered for the same or fewer scopes', async (t) => {
    const page = await ask('openid profile offline_access')
    t.equal(page.status, 200, 'still asks: nothing was allowed yet')
    t.match(page.body, /Allow access/)
    const form = loginForm(page.body)
    const forged = await post(form.action, { ...form.fields, xsrf: 'A'.repeat(43), decision: 'allow' }, jar)
    t.equal(forged.status, 403, 'a forged decision is refused')
    const foreign = await post(form.action, { ...form.fields, decision: 'allow' }, new CookieJar())
    t.equal(foreign.status, 403, 'another browser cannot decide')
    const allowed = await post(form.action, { ...form.fields, decision: 'allow' }, jar)
    t.equal(allowed.status, 302)
    const code = allowed.location!.searchParams.get('code')!
    t.ok(code)
    const tokens = await postForm(`${srv.url}/connect/token`, { grant_type: 'authorization_code', code, redirect_uri: THIRD_REDIRECT }, THIRD)
    t.equal(tokens.status, 200)
    refreshToken = tokens.json.refresh_token as string
    t.ok(srv.log.lines.some((l) => l.includes('"event":"consent.granted"')))

    const same = await ask('openid profile offline_access')
    t.equal(same.status, 302)
    t.ok(same.location?.searchParams.has('code'), 'same scopes: no page')
    const fewer = await ask('openid')
    t.ok(fewer.location?.searchParams.has('code'), 'fewer scopes: no page')
    const silent = await ask('openid profile', { prompt: 'none' })
    t.ok(silent.location?.searchParams.has('code'), 'prompt=none within the consent')
  })

  t.test('more scopes ask again; prompt=consent always asks; prompt=none answers consent_required', async (t) => {
    const wider = await ask('openid profile email')
    t.equal(wider.status, 200)
    t.match(wider.body, /Your email address/)
    const forced = await ask('openid', { prompt: 'consent' })
    t.equal(forced.status, 200)
    t.match(forced.body, /Allow access/)
    const none = await ask('openid email', { prompt: 'none' })
    t.equal(none.location?.searchParams.get('error'), 'consent_required')
    t.equal(none.location?.searchParams.get('state'), 'st-c')
  })

  t.test('revoking consent forgets it and revokes the client\'s refresh tokens', async (t) => {
    const before = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: refreshToken }, THIRD)
    t.equal(before.status, 200)
    refreshToken = before.json.refresh_token as string
    const res = await fetch(`${srv.url}/test/consent/revoke?sub=u-alice&client=third`, { method: 'POST' })
    t.equal(res.status, 200)
    const after = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: refreshToken }, THIRD)
    t.equal(after.json.error, 'invalid_grant', 'the offline_access refresh token is revoked with the consent')
    const again = await ask('openid')
    t.equal(again.status, 200, 'the page shows again')
    t.match(again.body, /Allow access/)
    t.ok(srv.log.lines.some((l) => l.includes('"event":"consent.revoked"')))
  })
})
