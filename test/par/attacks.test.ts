/**
 * RFC 9126 attacks and error paths, black-box over HTTP: request_uri reuse (also
 * concurrent), another client's request_uri, an expired one, unauthenticated pushes, invalid
 * pushed requests (JSON errors, never a redirect), required PAR refusing plain requests.
 */
import t, { type Test } from 'tap'
import { CookieJar, get, loginForm, post, SPA_REDIRECT, startFlowServer, WEB_REDIRECT } from '../authorization-code/flow.js'
import { basic, postForm } from '../helpers/server.js'
import { parAuthorizeUrl, parConfig, push, webRequest } from './fixtures.js'

const srv = await startFlowServer(parConfig())
t.teardown(srv.close)

async function pushedUri(clientId = 'web', extra: Record<string, string> = {}): Promise<string> {
  const res = await push(srv, clientId, webRequest(extra))
  if (res.status !== 201) throw new Error(`push failed: ${res.text}`)
  return res.json.request_uri as string
}

/** An authorize page refusing a request_uri: HTML, 400, never a redirect anywhere. */
function refusedPage(t: Test, page: { status: number; headers: Headers; body: string; location?: URL }, what: string): void {
  t.equal(page.status, 400, `${what}: 400`)
  t.notOk(page.location, `${what}: no redirect`)
  t.match(page.headers.get('content-type') ?? '', /text\/html/, `${what}: an HTML page`)
  t.match(page.body, /invalid_request_uri/, `${what}: says invalid_request_uri`)
}

t.test('a request_uri is one-time: a second use is refused, before and after sign-in', async (t) => {
  const uri = await pushedUri()
  const jar = new CookieJar()
  const first = await get(parAuthorizeUrl(srv, 'web', uri), jar)
  t.equal(first.status, 200, 'first use: the login form')
  refusedPage(t, await get(parAuthorizeUrl(srv, 'web', uri)), 'replay while the first is signing in')
  const form = loginForm(first.body)
  const done = await post(form.action, { ...form.fields, username: 'alice', password: 'wonderland' }, jar)
  t.equal(done.status, 302)
  t.ok(done.location!.searchParams.get('code'))
  // Even in the browser that holds the session, where a replay would be answered with a code at once.
  refusedPage(t, await get(parAuthorizeUrl(srv, 'web', uri), jar), 'replay with a session')
})

t.test('concurrent uses of one request_uri: exactly one wins', async (t) => {
  const uri = await pushedUri()
  const pages = await Promise.all(Array.from({ length: 8 }, () => get(parAuthorizeUrl(srv, 'web', uri))))
  t.equal(pages.filter((p) => p.status === 200).length, 1, 'one login form')
  t.equal(pages.filter((p) => p.status === 400).length, 7, 'seven refusals')
})

t.test("another client's request_uri is refused and stays usable by its owner", async (t) => {
  const uri = await pushedUri('web')
  refusedPage(t, await get(parAuthorizeUrl(srv, 'other', uri)), 'other presenting web’s request_uri')
  refusedPage(t, await get(parAuthorizeUrl(srv, 'spa', uri)), 'a public client presenting it')
  const unknownClient = await get(parAuthorizeUrl(srv, 'nobody', uri))
  t.equal(unknownClient.status, 400)
  t.notOk(unknownClient.location)
  const owner = await get(parAuthorizeUrl(srv, 'web', uri))
  t.equal(owner.status, 200, 'not spent by the attempts: its owner signs in')
  t.match(owner.body, /<form/)
})

t.test('an expired request_uri is refused', async (t) => {
  const short = await startFlowServer(parConfig({ par: { expiresIn: 1 } }))
  t.teardown(short.close)
  const res = await push(short, 'web', webRequest())
  t.equal(res.status, 201)
  t.equal(res.json.expires_in, 1)
  await new Promise((r) => setTimeout(r, 2200))
  refusedPage(t, await get(parAuthorizeUrl(short, 'web', res.json.request_uri as string)), 'after expires_in')
})

t.test('malformed, unknown or incomplete request_uri requests are pages, never redirects', async (t) => {
  refusedPage(t, await get(parAuthorizeUrl(srv, 'web', 'urn:ietf:params:oauth:request_uri:' + 'A'.repeat(43))), 'unknown')
  refusedPage(t, await get(parAuthorizeUrl(srv, 'web', 'https://evil.example/request.jwt')), 'not ours')
  const noClient = await get(`${srv.url}/connect/authorize?request_uri=${encodeURIComponent(await pushedUri())}&redirect_uri=${encodeURIComponent(WEB_REDIRECT)}`)
  t.equal(noClient.status, 400, 'client_id is required with request_uri (RFC 9126 §4)')
  t.notOk(noClient.location)
  const uri = await pushedUri()
  const twice = await get(`${parAuthorizeUrl(srv, 'web', uri)}&request_uri=${encodeURIComponent(uri)}`)
  t.equal(twice.status, 400, 'request_uri twice')
  t.notOk(twice.location)
  const long = await get(parAuthorizeUrl(srv, 'web', 'x'.repeat(5000)))
  t.equal(long.status, 400)
  t.notOk(long.location)
  t.equal((await get(parAuthorizeUrl(srv, 'web', uri))).status, 200, 'the refused requests did not spend it')
})

t.test('unauthenticated pushes are 401 invalid_client', async (t) => {
  const none = await postForm(`${srv.url}/connect/par`, webRequest())
  t.equal(none.status, 401)
  t.equal(none.json.error, 'invalid_client')
  const asPublic = await postForm(`${srv.url}/connect/par`, { ...webRequest(), client_id: 'web' })
  t.equal(asPublic.status, 401, 'a confidential client cannot push with client_id alone')
  t.equal(asPublic.json.error, 'invalid_client')
  const wrong = await push(srv, 'web', webRequest(), { authorization: basic('web', 'not-the-secret') })
  t.equal(wrong.status, 401)
  t.equal(wrong.json.error, 'invalid_client')
  t.equal(wrong.headers.get('www-authenticate'), 'Basic realm="grantd"')
  const unknown = await push(srv, 'web', webRequest(), { authorization: basic('ghost', 'x') })
  t.equal(unknown.status, 401)
  const wrongMethod = await push(srv, 'post', webRequest(), { authorization: basic('post', 'post-secret') })
  t.equal(wrongMethod.status, 401, 'a client_secret_post client using Basic')
  const twoMethods = await postForm(`${srv.url}/connect/par`, { ...webRequest(), client_id: 'web', client_secret: 'web-secret' }, { authorization: basic('web', 'web-secret') })
  t.equal(twoMethods.status, 400)
  t.equal(twoMethods.json.error, 'invalid_request')
  const mismatch = await push(srv, 'web', { ...webRequest(), client_id: 'other' })
  t.equal(mismatch.status, 400, 'client_id in the body must be the authenticated client')
  t.equal(mismatch.json.error, 'invalid_request')
})

t.test('an invalid pushed request is a JSON error at the PAR endpoint, never a redirect', async (t) => {
  const cases: Array<[string, Record<string, string> | string, string, string?]> = [
    ['unregistered redirect_uri', webRequest({ redirect_uri: 'https://evil.example/cb' }), 'invalid_request'],
    ['missing redirect_uri', Object.fromEntries(Object.entries(webRequest()).filter(([k]) => k !== 'redirect_uri')), 'invalid_request'],
    ['missing response_type', Object.fromEntries(Object.entries(webRequest()).filter(([k]) => k !== 'response_type')), 'invalid_request'],
    ['response_type=token', webRequest({ response_type: 'token' }), 'unsupported_response_type'],
    ['scope beyond the client', webRequest({ scope: 'openid admin' }), 'invalid_scope'],
    ['no scope', webRequest({ scope: '' }), 'invalid_scope'],
    ['PKCE required and missing', Object.fromEntries(Object.entries(webRequest()).filter(([k]) => !k.startsWith('code_challenge'))), 'invalid_request'],
    ['code_challenge_method=plain', webRequest({ code_challenge_method: 'plain' }), 'invalid_request'],
    ['prompt=none with login', webRequest({ prompt: 'none login' }), 'invalid_request'],
    ['a request_uri inside a push (RFC 9126 §2.1)', webRequest({ request_uri: 'urn:ietf:params:oauth:request_uri:abc' }), 'invalid_request'],
    ['a request object', webRequest({ request: 'eyJhbGciOiJub25lIn0.e30.' }), 'request_not_supported'],
    ['oversize state', webRequest({ state: 's'.repeat(3000) }), 'invalid_request'],
  ]
  for (const [what, form, error] of cases) {
    const res = await push(srv, 'web', form)
    t.equal(res.status, 400, `${what}: 400 (${res.text})`)
    t.equal(res.json.error, error, `${what}: ${error}`)
    t.notOk(res.headers.get('location'), `${what}: no Location`)
    t.match(res.headers.get('content-type') ?? '', /application\/json/, `${what}: JSON`)
    t.equal(res.headers.get('cache-control'), 'no-store', `${what}: no-store`)
  }
  const svc = await push(srv, 'svc', { response_type: 'code', redirect_uri: WEB_REDIRECT, scope: 'api' })
  t.equal(svc.status, 400)
  t.match(String(svc.json.error), /^(invalid_request|unauthorized_client)$/, 'a client without redirect_uris or the code grant is refused')
  const spaNoPkce = await push(srv, 'spa', { client_id: 'spa', response_type: 'code', redirect_uri: SPA_REDIRECT, scope: 'openid' }, {})
  t.equal(spaNoPkce.status, 400, 'a public client must use PKCE')
  t.equal(spaNoPkce.json.error, 'invalid_request')
})

t.test('HTTP-level errors at the PAR endpoint: content type, size, method', async (t) => {
  const json = await fetch(`${srv.url}/connect/par`, { method: 'POST', body: JSON.stringify(webRequest()), headers: { 'content-type': 'application/json', authorization: basic('web', 'web-secret') } })
  t.equal(json.status, 400)
  t.equal(((await json.json()) as Record<string, unknown>).error, 'invalid_request')
  const big = await push(srv, 'web', { ...webRequest(), junk: 'x'.repeat(17 * 1024) })
  t.equal(big.status, 413)
  t.equal(big.json.error, 'invalid_request')
  const getPar = await fetch(`${srv.url}/connect/par`)
  t.equal(getPar.status, 405)
  const ok = await push(srv, 'web', webRequest())
  t.equal(ok.status, 201)
  t.equal(ok.headers.get('cache-control'), 'no-store', 'RFC 9126 §2.2 response is not cached')
  t.match(ok.headers.get('content-type') ?? '', /application\/json/)
})

t.test('required PAR: plain authorization requests fail with invalid_request at the client', async (t) => {
  const strictSrv = await startFlowServer(parConfig({ par: { required: true } }))
  t.teardown(strictSrv.close)
  const meta = (await (await fetch(`${strictSrv.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>
  t.equal(meta.require_pushed_authorization_requests, true, 'announced in discovery (RFC 9126 §5)')
  const plain = await get(`${strictSrv.url}/connect/authorize?${new URLSearchParams({ ...webRequest({ state: 'plain-st' }), client_id: 'web' })}`)
  t.equal(plain.status, 302, 'client and redirect_uri are valid: the error goes back to the client')
  t.equal(`${plain.location!.origin}${plain.location!.pathname}`, WEB_REDIRECT)
  t.equal(plain.location!.searchParams.get('error'), 'invalid_request')
  t.equal(plain.location!.searchParams.get('state'), 'plain-st')
  t.equal(plain.location!.searchParams.get('iss'), strictSrv.url)
  t.notOk(plain.location!.searchParams.get('code'))
  const pushed = await push(strictSrv, 'web', webRequest())
  t.equal((await get(parAuthorizeUrl(strictSrv, 'web', pushed.json.request_uri as string))).status, 200, 'a pushed request proceeds')
})

t.test('client field require_pushed_authorization_requests: only that client must push', async (t) => {
  const plain = await get(`${srv.url}/connect/authorize?${new URLSearchParams({ response_type: 'code', client_id: 'strict', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 'x1' })}`)
  t.equal(plain.status, 302)
  t.equal(plain.location!.searchParams.get('error'), 'invalid_request')
  t.equal(plain.location!.searchParams.get('state'), 'x1')
  t.equal(plain.location!.searchParams.get('iss'), srv.url)
  const pushed = await push(srv, 'strict', { response_type: 'code', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 'x2' })
  t.equal(pushed.status, 201, pushed.text)
  t.equal((await get(parAuthorizeUrl(srv, 'strict', pushed.json.request_uri as string))).status, 200)
  const others = await get(`${srv.url}/connect/authorize?${new URLSearchParams({ ...webRequest(), client_id: 'web' })}`)
  t.equal(others.status, 200, 'other clients may still send plain requests')
})

t.test('a public client’s pushes are capped per address (SPEC §9: anonymous state is bounded)', async (t) => {
  const capped = await startFlowServer(parConfig({ par: { publicPushesPerAddress: 2 } }))
  t.teardown(capped.close)
  const form = { client_id: 'spa', response_type: 'code', redirect_uri: SPA_REDIRECT, scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGrSeRW6cM', code_challenge_method: 'S256' }
  t.equal((await push(capped, 'spa', form, {})).status, 201)
  t.equal((await push(capped, 'spa', form, {})).status, 201)
  const third = await push(capped, 'spa', form, {})
  t.equal(third.status, 429)
  t.equal(third.json.error, 'invalid_request')
  t.ok(third.headers.get('retry-after'))
  t.equal((await push(capped, 'web', webRequest())).status, 201, 'confidential clients are not capped')
})

t.test('bad plugin options are start errors naming the key', async (t) => {
  for (const [options, message] of [
    [{ expiresIn: 0 }, /expiresIn: must be between 1 and 600/],
    [{ required: 'yes' }, /required: expected boolean/],
    [{ nope: 1 }, /nope: unknown key/],
  ] as const) {
    await t.rejects(startFlowServer(parConfig({ par: options })), { message }, JSON.stringify(options))
  }
  await t.rejects(startFlowServer({ ...parConfig(), plugins: ['@grantd/par', '@grantd/grant-authorization-code'] }), { message: /grant-authorization-code before @grantd\/par/ })
  await t.rejects(startFlowServer(parConfig({ clients: [{ client_id: 'c', client_secret: 's', grant_types: ['authorization_code'], redirect_uris: [WEB_REDIRECT], scope: 'openid', require_pushed_authorization_requests: 'yes' }] })),
    { message: /clients\[0\]\.require_pushed_authorization_requests: expected boolean/ })
})

t.test('malformed input anywhere in PAR never earns a 5xx', async (t) => {
  const uri = await pushedUri()
  const bodies = [
    '', '=', '&&&', '%', '%zz=1', 'response_type=%E0%A4%A', `${'a'.repeat(200)}=1`, 'client_id=web&client_id=web',
    'resource=&response_type=code', 'redirect_uri=%00', `scope=${'x '.repeat(1500)}`, 'acr_values=tenant:%20', 'max_age=-1', 'prompt=bogus',
  ]
  for (const body of bodies) {
    const res = await push(srv, 'web', body)
    t.ok(res.status < 500 && res.status >= 400, `push ${JSON.stringify(body.slice(0, 40))}: ${res.status}`)
    t.ok(typeof res.json.error === 'string', 'an OAuth error body')
  }
  for (const requestUri of ['', '%', 'urn:ietf:params:oauth:request_uri:', `${uri}x`, uri.toUpperCase(), '\u0000', 'a'.repeat(3000)]) {
    const page = await get(`${srv.url}/connect/authorize?client_id=web&request_uri=${encodeURIComponent(requestUri)}`)
    t.ok(page.status < 500, `authorize with request_uri ${JSON.stringify(requestUri.slice(0, 40))}: ${page.status}`)
    t.notOk(page.location && page.location.searchParams.get('code'), 'no code')
  }
  t.equal((await get(parAuthorizeUrl(srv, 'web', uri))).status, 200, 'none of that spent the real one')
})

t.test('client-secret guessing at the PAR endpoint counts against the per-address limit (SPEC §9)', async (t) => {
  const guarded = await startFlowServer(parConfig({ extra: { throttle: { maxFailuresPerClient: 0, maxFailuresPerAddress: 3, windowSeconds: 60 } } }))
  t.teardown(guarded.close)
  for (const id of ['web', 'other', 'strict']) {
    const res = await push(guarded, id, webRequest(), { authorization: basic(id, 'a-wrong-guess') })
    t.equal(res.status, 401, `guess at ${id}`)
  }
  const locked = await push(guarded, 'web', webRequest())
  t.equal(locked.status, 401, 'the address is locked out, even with the right secret')
  t.equal(locked.json.error, 'invalid_client')
  t.ok(locked.headers.get('retry-after'), 'Retry-After')
})

t.test('require_pushed_authorization_requests without @grantd/par fails closed', async (t) => {
  const bare = await startFlowServer({ ...parConfig(), plugins: ['@grantd/grant-authorization-code'], clients: [
    { client_id: 'strict', client_secret: 'strict-secret', grant_types: ['authorization_code'], redirect_uris: [WEB_REDIRECT], scope: 'openid', require_pushed_authorization_requests: true },
  ] })
  t.teardown(bare.close)
  const plain = await get(`${bare.url}/connect/authorize?${new URLSearchParams({ response_type: 'code', client_id: 'strict', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 'z' })}`)
  t.equal(plain.status, 302)
  t.equal(plain.location!.searchParams.get('error'), 'invalid_request', 'never a plain request for a client that must push')
})
