import t from 'tap'
import { SignJWT } from 'jose'
import { KeySet } from '@grantd/core'
import { CookieJar, get, loginForm, post, WEB_AUTH, WEB_REDIRECT, authorizeUrl, pkcePair, redeem, startFlowServer } from '../authorization-code/flow.js'
import { basic, postForm } from '../helpers/server.js'
import { claimsOf, endSessionUrl, LOGGED_OUT, sessionConfig, signedInWeb, silentlyAuthorized } from './setup.js'

/** RP-Initiated Logout 1.0 at /connect/endsession, black-box over HTTP (SPEC §10). */
t.test('end session', async (t) => {
  const config = sessionConfig()
  const srv = await startFlowServer({ ...config, tokens: { codeTtl: 60, idTokenTtl: 2 } })
  t.teardown(srv.close)

  const copy = (jar: CookieJar): CookieJar => {
    const c = new CookieJar()
    for (const [k, v] of jar.cookies) c.cookies.set(k, v)
    return c
  }

  t.test('discovery announces the logout endpoints', async (t) => {
    const meta = (await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>
    t.equal(meta.end_session_endpoint, `${srv.url}/connect/endsession`)
    for (const k of ['backchannel_logout_supported', 'backchannel_logout_session_supported', 'frontchannel_logout_supported', 'frontchannel_logout_session_supported']) t.equal(meta[k], true, k)
  })

  t.test('a valid hint ends the session at once and returns with state', async (t) => {
    const { jar, tokens } = await signedInWeb(srv)
    const sid = claimsOf(tokens.id_token!).sid
    t.type(sid, 'string', 'the ID token carries sid')
    t.ok(await silentlyAuthorized(srv, jar), 'signed in')
    const stolen = copy(jar)
    const res = await get(endSessionUrl(srv, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: LOGGED_OUT, state: 'bye <&>' }), jar)
    t.equal(res.status, 302)
    t.equal(res.location?.origin + res.location!.pathname, LOGGED_OUT)
    t.equal(res.location?.searchParams.get('state'), 'bye <&>')
    t.ok(jar.lines.some((l) => /^grantd_session=;.*Max-Age=0/.test(l)), 'cookie cleared')
    t.notOk(await silentlyAuthorized(srv, stolen), 'the session is gone server-side, not only the cookie')
    const page = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'nopkce', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 's' }), jar)
    t.equal(page.status, 200, 'the next login shows the form')
    t.match(page.body, /name="password"/)
    t.ok(srv.log.lines.some((l) => l.includes('"event":"session.ended"') && l.includes(String(sid))), 'audit event')
  })

  t.test('ending a session revokes its refresh tokens unless offline_access was granted', async (t) => {
    const { jar, tokens: offline } = await signedInWeb(srv, 'openid offline_access api')
    const sid = claimsOf(offline.id_token!).sid as string
    // The same session, a grant without offline_access that still issues a refresh token (refreshToken: true).
    const bound = await postForm(`${srv.url}/connect/token`, { grant_type: 'urn:test:session-grant', sid, scope: 'openid api' }, WEB_AUTH)
    t.equal(bound.status, 200, bound.text)
    t.type(bound.json.refresh_token, 'string')
    t.equal(claimsOf(bound.json.id_token as string).sid, sid)
    // And a code flow in the same session without offline_access: an access token only.
    const { verifier, challenge } = pkcePair()
    const again = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid api', state: 's', code_challenge: challenge, code_challenge_method: 'S256' }), jar)
    const online = await redeem(srv, again.location!.searchParams.get('code')!, verifier)
    t.equal(online.status, 200)
    t.equal(claimsOf(online.json.id_token as string).sid, sid, 'one session, one sid')
    t.equal((await fetch(`${srv.url}/connect/userinfo`, { headers: { authorization: `Bearer ${online.json.access_token}` } })).status, 200)

    const out = await get(endSessionUrl(srv, { id_token_hint: offline.id_token! }), jar)
    t.equal(out.status, 200)
    t.match(out.body, /signed out/)

    const kept = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: offline.refresh_token! }, WEB_AUTH)
    t.equal(kept.status, 200, 'the offline_access refresh token survives the logout')
    const revoked = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: bound.json.refresh_token as string }, WEB_AUTH)
    t.equal(revoked.status, 400)
    t.equal(revoked.json.error, 'invalid_grant', 'the refresh token issued without offline_access is revoked')
    t.equal((await fetch(`${srv.url}/connect/userinfo`, { headers: { authorization: `Bearer ${online.json.access_token}` } })).status, 401, 'the session-bound access token is revoked too')
    const late = await postForm(`${srv.url}/connect/token`, { grant_type: 'urn:test:session-grant', sid, scope: 'openid' }, WEB_AUTH)
    t.equal(late.json.error, 'invalid_grant', 'no new grant in an ended session')
  })

  t.test('a code issued before the logout is refused after it', async (t) => {
    const { jar, tokens } = await signedInWeb(srv)
    const { verifier, challenge } = pkcePair()
    const again = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 's', code_challenge: challenge, code_challenge_method: 'S256' }), jar)
    const code = again.location!.searchParams.get('code')!
    await get(endSessionUrl(srv, { id_token_hint: tokens.id_token! }), jar)
    const res = await redeem(srv, code, verifier)
    t.equal(res.json.error, 'invalid_grant')
  })

  t.test('without a hint the user confirms on a CSRF-protected page', async (t) => {
    const { jar } = await signedInWeb(srv)
    const page = await get(endSessionUrl(srv, { client_id: 'web', post_logout_redirect_uri: LOGGED_OUT, state: 'st1' }), jar)
    t.equal(page.status, 200)
    t.match(page.headers.get('content-security-policy'), /form-action [^;]*http:\/\/127\.0\.0\.1:\d+/)
    t.equal(page.headers.get('x-frame-options'), 'DENY')
    t.match(page.body, /Web &lt;App&gt;/, 'names the client, escaped')
    t.ok(await silentlyAuthorized(srv, jar), 'asking does not sign out')
    const form = loginForm(page.body)

    const forged = await post(form.action, { ...form.fields, xsrf: 'A'.repeat(43), logout: 'yes' }, jar)
    t.equal(forged.status, 403, 'a forged confirmation is refused')
    t.ok(await silentlyAuthorized(srv, jar))

    const elsewhere = await post(form.action, { ...form.fields, logout: 'yes' }, new CookieJar())
    t.equal(elsewhere.status, 303, 'another browser has nothing to end')
    t.ok(await silentlyAuthorized(srv, jar), 'the form posted without the cookie ends nothing')

    const stay = await post(form.action, { ...form.fields, logout: 'no' }, jar)
    t.equal(stay.status, 303, 'staying signed in still returns to the application')
    t.notOk(stay.headers.getSetCookie().some((l) => l.startsWith('grantd_session=')), 'the cookie is kept')
    t.ok(await silentlyAuthorized(srv, jar))
    const bare = loginForm((await get(endSessionUrl(srv, {}), jar)).body)
    const stayHere = await post(bare.action, { ...bare.fields, logout: 'no' }, jar)
    t.equal(stayHere.status, 200)
    t.match(stayHere.body, /still signed in/)

    const done = await post(form.action, { ...form.fields, logout: 'yes' }, jar)
    t.equal(done.status, 303)
    t.equal(done.location?.href, `${LOGGED_OUT}?state=st1`)
    t.notOk(await silentlyAuthorized(srv, jar))
  })

  t.test('a hint naming another user asks first', async (t) => {
    const { jar } = await signedInWeb(srv)
    const bob = await signedInWeb(srv, 'openid', undefined)
    // bob's sign-in used its own jar; alice's jar holds alice's session.
    const other = await (async () => {
      const { loginForCode } = await import('../authorization-code/flow.js')
      const login = await loginForCode(srv, { scope: 'openid', username: 'bob', password: 'builder' })
      return (await redeem(srv, login.code, login.verifier)).json.id_token as string
    })()
    t.ok(bob)
    const page = await get(endSessionUrl(srv, { id_token_hint: other }), jar)
    t.equal(page.status, 200)
    t.match(page.body, /Sign out\?/)
    t.ok(await silentlyAuthorized(srv, jar), 'alice is still signed in')
  })

  t.test('a cross-site POST with a hint and no cookie ends the session its sid names', async (t) => {
    const { jar, tokens } = await signedInWeb(srv)
    const res = await post(`${srv.url}/connect/endsession`, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: LOGGED_OUT, state: 'x' }, new CookieJar())
    t.equal(res.status, 303)
    t.equal(res.location?.href, `${LOGGED_OUT}?state=x`)
    t.notOk(await silentlyAuthorized(srv, jar))
  })

  t.test('an expired hint is accepted (signature and issuer only)', async (t) => {
    const { jar, tokens } = await signedInWeb(srv)
    await new Promise((r) => setTimeout(r, 3100))
    t.ok((claimsOf(tokens.id_token!).exp as number) < Date.now() / 1000, 'expired')
    const res = await get(endSessionUrl(srv, { id_token_hint: tokens.id_token! }), jar)
    t.equal(res.status, 200)
    t.notOk(await silentlyAuthorized(srv, jar))
  })

  t.test('every error is an HTML page, never a redirect or a 500', async (t) => {
    const { jar, tokens } = await signedInWeb(srv)
    const key = srv.server.keys.signing
    const other = await KeySet.generate('ES256')
    const now = Math.floor(Date.now() / 1000)
    const sign = (claims: Record<string, unknown>, typ = 'JWT', k = key) => new SignJWT(claims).setProtectedHeader({ alg: k.alg, kid: k.kid, typ }).sign(k.privateKey)
    const base = { sub: 'u-alice', aud: 'web', iat: now, exp: now + 60, sid: claimsOf(tokens.id_token!).sid }
    const cases: Array<[string, Record<string, string> | string, number]> = [
      ['garbage hint', { id_token_hint: 'not.a.jwt' }, 400],
      ['hint signed by another key', { id_token_hint: await sign({ ...base, iss: srv.url }, 'JWT', other.signing) }, 400],
      ['hint from another issuer', { id_token_hint: await sign({ ...base, iss: 'http://evil.example' }) }, 400],
      ['an access token as hint', { id_token_hint: await sign({ ...base, iss: srv.url }, 'at+jwt') }, 400],
      ['unknown client_id', { client_id: 'nobody' }, 400],
      ['client_id not in the hint audience', { id_token_hint: tokens.id_token!, client_id: 'other' }, 400],
      ['unregistered post_logout_redirect_uri', { client_id: 'web', post_logout_redirect_uri: 'http://evil.example/' }, 400],
      ['a redirect registered by another client', { client_id: 'other', post_logout_redirect_uri: LOGGED_OUT }, 400],
      ['post_logout_redirect_uri without a client', { post_logout_redirect_uri: LOGGED_OUT }, 400],
      ['repeated parameter', 'state=a&state=b', 400],
      ['oversized state', { state: 'x'.repeat(3000) }, 400],
    ]
    for (const [name, params, status] of cases) {
      const url = typeof params === 'string' ? `${srv.url}/connect/endsession?${params}` : endSessionUrl(srv, params)
      const res = await get(url, jar)
      t.equal(res.status, status, name)
      t.notOk(res.location, `${name}: no redirect`)
      t.match(res.headers.get('content-type'), /text\/html/, `${name}: a page`)
      t.equal(res.headers.get('cache-control'), 'no-store', `${name}: no-store`)
    }
    t.ok(await silentlyAuthorized(srv, jar), 'no error path signs the user out')
    const json = await fetch(`${srv.url}/connect/endsession`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
    t.equal(json.status, 400, 'POST needs a form')
    const put = await fetch(`${srv.url}/connect/endsession`, { method: 'PUT' })
    t.equal(put.status, 405)
    const nothing = await get(`${srv.url}/connect/endsession`)
    t.equal(nothing.status, 200, 'no session and no hint: just the signed-out page')
    t.match(nothing.body, /signed out/)
    const notJwtClient = await get(endSessionUrl(srv, { id_token_hint: tokens.id_token!, client_id: 'web', post_logout_redirect_uri: LOGGED_OUT }), jar)
    t.equal(notJwtClient.status, 302, 'and the valid request still works')
    t.notOk(srv.log.lines.some((l) => l.includes('"status":500')), 'no 500 anywhere')
  })

  t.test('the store never holds the session cookie secret', async (t) => {
    const { jar } = await signedInWeb(srv)
    const [sid, secret] = jar.cookies.get('grantd_session')!.split('.')
    t.ok(sid && secret)
    const dump = (srv.server.registry.store as unknown as { dump(): Array<[string, string]> }).dump()
    t.ok(dump.length > 0)
    t.notOk(dump.some(([k, v]) => k.includes(secret!) || v.includes(secret!)), 'the secret appears nowhere')
    t.notOk(dump.some(([k]) => k.includes(sid!)), 'records are keyed by hashes')
  })

  t.test('a plugin lists and ends sessions through the host', async (t) => {
    const a = await signedInWeb(srv)
    const b = await signedInWeb(srv)
    const listed = (await (await fetch(`${srv.url}/test/sessions?sub=u-alice`)).json()) as { sessions: Array<{ sid: string }> }
    const sids = listed.sessions.map((s) => s.sid)
    t.ok(sids.includes(claimsOf(a.tokens.id_token!).sid as string))
    t.ok(sids.includes(claimsOf(b.tokens.id_token!).sid as string))
    const ended = (await (await fetch(`${srv.url}/test/sessions/end?sid=${claimsOf(a.tokens.id_token!).sid}`, { method: 'POST' })).json()) as { ended: boolean; clients: string[] }
    t.same(ended, { ended: true, clients: ['web'] })
    t.notOk(await silentlyAuthorized(srv, a.jar))
    t.ok(await silentlyAuthorized(srv, b.jar), 'the other session lives on')
    const after = (await (await fetch(`${srv.url}/test/sessions?sub=u-alice`)).json()) as { sessions: Array<{ sid: string }> }
    t.notOk(after.sessions.some((s) => s.sid === claimsOf(a.tokens.id_token!).sid))
  })

  void basic
})
