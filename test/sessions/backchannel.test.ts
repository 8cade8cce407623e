import t from 'tap'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { get, startFlowServer } from '../authorization-code/flow.js'
import { claimsOf, endSessionUrl, sessionConfig, signedInWeb } from './setup.js'
import { startReceiver, waitFor } from './receiver.js'

/** Back-Channel and Front-Channel Logout 1.0 (SPEC §10), with real receivers on loopback ports. */
t.test('logout notifications', async (t) => {
  const rp = await startReceiver()
  t.teardown(rp.close)
  const hanging = await startReceiver()
  hanging.mode = 'hang'
  t.teardown(hanging.close)
  const srv = await startFlowServer(sessionConfig({
    web: { backchannel_logout_uri: rp.url, backchannel_logout_session_required: true, frontchannel_logout_uri: 'http://127.0.0.1:5001/fc?x=1', frontchannel_logout_session_required: true },
    clients: [{ client_id: 'slow', client_secret: 'slow-secret', grant_types: ['authorization_code'], redirect_uris: ['http://127.0.0.1:5000/callback'], scope: 'openid', backchannel_logout_uri: hanging.url }],
  }))
  t.teardown(srv.close)
  const jwks = createRemoteJWKSet(new URL(`${srv.url}/.well-known/jwks.json`))

  t.test('a logout token that jose verifies against the JWKS, and a front-channel iframe', async (t) => {
    const { jar, tokens } = await signedInWeb(srv)
    const sid = claimsOf(tokens.id_token!).sid
    rp.tokens.length = 0
    const out = await get(endSessionUrl(srv, { id_token_hint: tokens.id_token! }), jar)
    t.equal(out.status, 200)
    t.equal(rp.tokens.length, 1, 'delivered before the page answered')
    t.match(rp.requests.at(-1)?.contentType, /application\/x-www-form-urlencoded/)
    const { payload, protectedHeader } = await jwtVerify(rp.tokens[0]!, jwks, { issuer: srv.url, audience: 'web', typ: 'logout+jwt' })
    t.equal(protectedHeader.typ, 'logout+jwt')
    t.equal(payload.sub, 'u-alice')
    t.equal(payload.sid, sid)
    t.same(payload.events, { 'http://schemas.openid.net/event/backchannel-logout': {} })
    t.type(payload.jti, 'string')
    t.type(payload.iat, 'number')
    t.type(payload.exp, 'number')
    t.notOk('nonce' in payload, 'never a nonce')

    const iframe = /<iframe[^>]*src="([^"]+)"/.exec(out.body)
    t.ok(iframe, 'one iframe')
    const src = new URL(iframe![1]!.replace(/&amp;/g, '&'))
    t.equal(src.origin + src.pathname, 'http://127.0.0.1:5001/fc')
    t.equal(src.searchParams.get('x'), '1', 'the registered query is kept')
    t.equal(src.searchParams.get('iss'), srv.url)
    t.equal(src.searchParams.get('sid'), sid)
    t.match(out.headers.get('content-security-policy'), /frame-src http:\/\/127\.0\.0\.1:5001;/, 'CSP frames exactly that origin')
    t.notMatch(out.headers.get('content-security-policy'), /script-src/)
  })

  t.test('with front-channel clients, the redirect waits on a page that renders their iframes', async (t) => {
    const { jar, tokens } = await signedInWeb(srv)
    const out = await get(endSessionUrl(srv, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'http://127.0.0.1:5000/logged-out', state: 'fc' }), jar)
    t.equal(out.status, 200, 'a page, so the iframes load')
    t.match(out.body, /<iframe[^>]*src="http:\/\/127\.0\.0\.1:5001\/fc\?/)
    t.match(out.body, /<meta http-equiv="refresh" content="2;url=http:\/\/127\.0\.0\.1:5000\/logged-out\?state=fc">/)
    t.match(out.body, /id="continue" href="http:\/\/127\.0\.0\.1:5000\/logged-out\?state=fc"/)
  })

  t.test('signing in as another user ends the previous session (and tells its clients)', async (t) => {
    const { jar, tokens } = await signedInWeb(srv)
    rp.tokens.length = 0
    const { loginForCode } = await import('../authorization-code/flow.js')
    await loginForCode(srv, { scope: 'openid', username: 'bob', password: 'builder', jar, extra: { prompt: 'login' } })
    t.ok(await waitFor(() => rp.tokens.length === 1, 3000), 'alice\'s client got a logout token')
    t.equal(claimsOf(rp.tokens[0]!).sid, claimsOf(tokens.id_token!).sid)
    const listed = (await (await fetch(`${srv.url}/test/sessions?sub=u-alice`)).json()) as { sessions: Array<{ sid: string }> }
    t.notOk(listed.sessions.some((s) => s.sid === claimsOf(tokens.id_token!).sid))
  })

  t.test('only clients that got tokens in the session are told', async (t) => {
    const { jar, tokens } = await signedInWeb(srv)
    rp.tokens.length = 0
    hanging.requests.length = 0
    await get(endSessionUrl(srv, { id_token_hint: tokens.id_token! }), jar)
    t.equal(rp.tokens.length, 1)
    t.equal(hanging.requests.length, 0, 'slow got no tokens in this session: not told')
  })

  t.test('a hanging receiver holds the browser no longer than the timeout; failures are logged and retried', async (t) => {
    const { jar, tokens } = await signedInWeb(srv)
    // The slow client gets tokens in the same session.
    const { authorizeUrl, redeem } = await import('../authorization-code/flow.js')
    const slow = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'slow', redirect_uri: 'http://127.0.0.1:5000/callback', scope: 'openid', state: 's' }), jar)
    t.equal((await redeem(srv, slow.location!.searchParams.get('code')!, undefined, { auth: { authorization: 'Basic ' + Buffer.from('slow:slow-secret').toString('base64') } })).status, 200)
    hanging.requests.length = 0
    const started = Date.now()
    const out = await get(endSessionUrl(srv, { id_token_hint: tokens.id_token! }), jar)
    const took = Date.now() - started
    t.equal(out.status, 200)
    t.ok(took >= 4500 && took < 6500, `answered after the 5 s timeout, not later (${took} ms)`)
    t.equal(hanging.requests.length, 1, 'the slow receiver was asked')
    t.ok(await waitFor(() => srv.log.lines.some((l) => l.includes('back-channel logout failed: will retry') && l.includes('"client_id":"slow"')), 2000), 'failure logged')
    t.ok(await waitFor(() => hanging.requests.length >= 2, 9000), 'and retried')
  })

  t.test('a failing receiver: bounded retries, then an error line', async (t) => {
    rp.mode = 500
    rp.tokens.length = 0
    const { jar, tokens } = await signedInWeb(srv)
    await get(endSessionUrl(srv, { id_token_hint: tokens.id_token! }), jar)
    t.ok(await waitFor(() => srv.log.lines.some((l) => l.includes('back-channel logout failed: giving up') && l.includes('"client_id":"web"')), 8000), 'gave up, logged')
    t.equal(rp.tokens.length, 3, 'one attempt and two retries')
    rp.mode = 200
  })
})
