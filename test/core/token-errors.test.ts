/**
 * Every error row of SPEC §5 at the token endpoint, the no-cache headers on every
 * answer, and malformed input that must never yield a 500, a stack trace or HTML.
 */
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { basic, postForm, ROOT, startServer } from '../helpers/server.js'
import { FORM, rawRequest, type RawResponse } from './raw-http.js'

const FIXTURES = join(ROOT, 'test', 'fixtures', 'core')
const SVC = basic('svc', 'svc-secret')

const srv = await startServer({
  issuer: 'http://issuer.test',
  plugins: ['@grantd/grant-client-credentials', './echo-grant.mjs'],
  clients: [
    { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api api:read' },
    { client_id: 'poster', client_secret: 'poster-secret', token_endpoint_auth_method: 'client_secret_post', grant_types: ['client_credentials'], scope: 'api' },
    // Misconfigured on purpose: a public client registered for client_credentials.
    { client_id: 'pub', token_endpoint_auth_method: 'none', grant_types: ['client_credentials'], scope: 'api' },
    { client_id: 'echo', client_secret: 'echo-secret', grant_types: ['urn:grantd:test:echo'], scope: 'api' },
  ],
}, { baseDir: FIXTURES })
t.teardown(srv.close)
const TOKEN = `${srv.url}/connect/token`

type Answer = { status: number; headers: Headers | RawResponse['headers']; json: Record<string, unknown> | undefined; text: string }

function header(res: Answer, name: string): string | undefined {
  if (res.headers instanceof Headers) return res.headers.get(name) ?? undefined
  const v = res.headers[name]
  return Array.isArray(v) ? v.join(', ') : v
}

/** An OAuth error answer: the status, the code, JSON only, and never cached. */
function isOAuthError(t: Test, res: Answer, status: number, error: string, what: string): void {
  t.equal(res.status, status, `${what}: status`)
  t.equal(res.json?.error, error, `${what}: error (${res.text.slice(0, 200)})`)
  t.type(res.json?.error_description, 'string', `${what}: error_description`)
  t.same(Object.keys(res.json ?? {}).sort(), ['error', 'error_description'], `${what}: nothing but error and error_description`)
  t.match(header(res, 'content-type'), /^application\/json/, `${what}: JSON`)
  t.equal(header(res, 'cache-control'), 'no-store', `${what}: Cache-Control`)
  t.equal(header(res, 'pragma'), 'no-cache', `${what}: Pragma`)
  t.notMatch(res.text, /<html|\bat [\w.<>]+ \(|node_modules|\.ts:\d+/i, `${what}: no HTML, no stack trace`)
}

t.test('a good request answers 200 with the no-cache headers', async (t) => {
  const res = await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'api' }, { authorization: SVC })
  t.equal(res.status, 200)
  t.equal(res.headers.get('cache-control'), 'no-store')
  t.equal(res.headers.get('pragma'), 'no-cache')
  // The alias path answers the same way.
  const alias = await postForm(`${srv.url}/oauth2/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: SVC })
  t.equal(alias.status, 200)
  t.equal(alias.json.scope, 'api')
})

t.test('missing and duplicated parameters → 400 invalid_request', async (t) => {
  isOAuthError(t, await postForm(TOKEN, { scope: 'api' }, { authorization: SVC }), 400, 'invalid_request', 'grant_type missing')
  isOAuthError(t, await postForm(TOKEN, 'grant_type=&scope=api', { authorization: SVC }), 400, 'invalid_request', 'grant_type empty')
  isOAuthError(t, await postForm(TOKEN, 'grant_type=client_credentials&grant_type=client_credentials&scope=api', { authorization: SVC }), 400, 'invalid_request', 'grant_type twice')
  isOAuthError(t, await postForm(TOKEN, 'grant_type=client_credentials&grant_type=password&scope=api', { authorization: SVC }), 400, 'invalid_request', 'two different grant_types')
  isOAuthError(t, await postForm(TOKEN, 'grant_type=client_credentials&scope=api&scope=api', { authorization: SVC }), 400, 'invalid_request', 'scope twice')
  isOAuthError(t, await postForm(TOKEN, 'grant_type=client_credentials&scope=api&client_id=poster&client_id=poster&client_secret=poster-secret'), 400, 'invalid_request', 'client_id twice')
  isOAuthError(t, await postForm(TOKEN, 'grant_type=client_credentials&scope=api&client_id=poster&client_secret=poster-secret&client_secret=poster-secret'), 400, 'invalid_request', 'client_secret twice')
  // A parameter nobody reads is ignored, repeated or not (RFC 6749 §3.2; test/plumbing/parameters.test.ts).
  t.equal((await postForm(TOKEN, 'grant_type=client_credentials&scope=api&foo=1&foo=2', { authorization: SVC })).status, 200, 'unknown parameter twice is ignored')
  // client_secret without client_id.
  isOAuthError(t, await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'api', client_secret: 'poster-secret' }), 400, 'invalid_request', 'client_secret alone')
  // client_id in the body that disagrees with Basic.
  isOAuthError(t, await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'api', client_id: 'echo' }, { authorization: SVC }), 400, 'invalid_request', 'client_id disagrees with Basic')
})

t.test('a body that is not application/x-www-form-urlencoded → 400 invalid_request', async (t) => {
  const body = 'grant_type=client_credentials&scope=api'
  const cases: Array<[string, Record<string, string>, string]> = [
    ['JSON', { 'content-type': 'application/json' }, JSON.stringify({ grant_type: 'client_credentials', scope: 'api' })],
    ['multipart', { 'content-type': 'multipart/form-data; boundary=xyz' }, '--xyz\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\nclient_credentials\r\n--xyz--\r\n'],
    ['text/plain', { 'content-type': 'text/plain' }, body],
    ['no content type', {}, body],
    ['form type as a prefix of another type', { 'content-type': 'application/x-www-form-urlencodedx' }, body],
  ]
  for (const [what, headers, payload] of cases) {
    isOAuthError(t, await rawRequest(srv.url, { path: '/connect/token', headers: { authorization: SVC, ...headers }, body: payload }), 400, 'invalid_request', what)
  }
  // Parameters and case in the media type are fine.
  const ok = await rawRequest(srv.url, { path: '/connect/token', headers: { authorization: SVC, 'content-type': 'Application/X-WWW-Form-Urlencoded; charset=UTF-8' }, body })
  t.equal(ok.status, 200, ok.text)
})

t.test('a body over 16 KiB → 413 with an OAuth error body', async (t) => {
  const big = `grant_type=client_credentials&scope=api&pad=${'a'.repeat(16 * 1024)}`
  isOAuthError(t, await rawRequest(srv.url, { path: '/connect/token', headers: { authorization: SVC, 'content-type': FORM }, body: big }), 413, 'invalid_request', 'declared length')
  isOAuthError(t, await rawRequest(srv.url, { path: '/connect/token', headers: { authorization: SVC, 'content-type': FORM }, body: big, chunked: true }), 413, 'invalid_request', 'chunked, no length')
  // Just under the limit is parsed; its oversize parameter is unknown, so ignored (RFC 6749 §3.2).
  const under = `grant_type=client_credentials&scope=api&pad=${'a'.repeat(16 * 1024 - 60)}`
  const res = await rawRequest(srv.url, { path: '/connect/token', headers: { authorization: SVC, 'content-type': FORM }, body: under })
  t.equal(res.status, 200, res.text)
  // Each parameter grantd reads has a length limit; a too-long value is invalid_request, not a 500.
  isOAuthError(t, await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'api', client_id: 'x'.repeat(5000) }, { authorization: SVC }), 400, 'invalid_request', 'parameter too long')
  isOAuthError(t, await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'api '.repeat(700) }, { authorization: SVC }), 400, 'invalid_request', 'scope too long')
  const many = Array.from({ length: 100 }, (_, i) => `p${i}=1`).join('&')
  t.equal((await postForm(TOKEN, `grant_type=client_credentials&scope=api&${many}`, { authorization: SVC })).status, 200, 'many unknown parameters are ignored')
})

t.test('grant_type nobody loaded → unsupported_grant_type; not registered → unauthorized_client', async (t) => {
  isOAuthError(t, await postForm(TOKEN, { grant_type: 'password', username: 'a', password: 'b' }, { authorization: SVC }), 400, 'unsupported_grant_type', 'password not loaded')
  isOAuthError(t, await postForm(TOKEN, { grant_type: 'urn:nobody:loaded:this' }, { authorization: SVC }), 400, 'unsupported_grant_type', 'urn grant')
  isOAuthError(t, await postForm(TOKEN, { grant_type: 'urn:grantd:test:echo', scope: 'api' }, { authorization: SVC }), 400, 'unauthorized_client', 'svc asks for the echo grant')
  isOAuthError(t, await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('echo', 'echo-secret') }), 400, 'unauthorized_client', 'echo asks for client_credentials')
  const echoed = await postForm(TOKEN, { grant_type: 'urn:grantd:test:echo', scope: 'api' }, { authorization: basic('echo', 'echo-secret') })
  t.equal(echoed.status, 200, 'the echo client may use its own grant')
})

t.test('a public client cannot use client_credentials → unauthorized_client', async (t) => {
  isOAuthError(t, await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'api', client_id: 'pub' }), 400, 'unauthorized_client', 'none client')
})

t.test('scope rows → invalid_scope', async (t) => {
  isOAuthError(t, await postForm(TOKEN, { grant_type: 'client_credentials' }, { authorization: SVC }), 400, 'invalid_scope', 'client_credentials without scope')
  isOAuthError(t, await postForm(TOKEN, { grant_type: 'client_credentials', scope: '' }, { authorization: SVC }), 400, 'invalid_scope', 'empty scope')
  isOAuthError(t, await postForm(TOKEN, { grant_type: 'client_credentials', scope: '   ' }, { authorization: SVC }), 400, 'invalid_scope', 'blank scope')
  isOAuthError(t, await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'admin' }, { authorization: SVC }), 400, 'invalid_scope', 'scope not registered')
  isOAuthError(t, await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'api admin' }, { authorization: SVC }), 400, 'invalid_scope', 'one scope of two not registered')
  isOAuthError(t, await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'API' }, { authorization: SVC }), 400, 'invalid_scope', 'scopes are case-sensitive')
  isOAuthError(t, await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'api "x"' }, { authorization: SVC }), 400, 'invalid_scope', 'forbidden character')
  isOAuthError(t, await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'openid' }, { authorization: SVC }), 400, 'invalid_scope', 'openid without a user')
  const both = await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'api:read  api api' }, { authorization: SVC })
  t.equal(both.status, 200)
  t.equal(both.json.scope, 'api:read api', 'duplicates and extra spaces collapse')
})

t.test('client authentication failures → 401 invalid_client; WWW-Authenticate only for Basic', async (t) => {
  const viaBasic: Array<[string, string]> = [
    ['wrong secret', basic('svc', 'nope')],
    ['unknown client', basic('ghost', 'svc-secret')],
    ['empty secret', basic('svc', '')],
    ['no colon', `Basic ${Buffer.from('svc').toString('base64')}`],
    ['not base64', 'Basic !!!!'],
    ['empty credentials', 'Basic '],
    ['client registered for post', basic('poster', 'poster-secret')],
    ['public client over Basic', basic('pub', '')],
  ]
  for (const [what, authorization] of viaBasic) {
    const res = await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'api' }, { authorization })
    isOAuthError(t, res, 401, 'invalid_client', what)
    t.equal(res.headers.get('www-authenticate'), 'Basic realm="grantd"', `${what}: Basic challenge`)
  }
  const viaBody: Array<[string, Record<string, string>]> = [
    ['wrong secret in body', { client_id: 'poster', client_secret: 'nope' }],
    ['unknown client in body', { client_id: 'ghost', client_secret: 'x' }],
    ['basic client using post', { client_id: 'svc', client_secret: 'svc-secret' }],
    ['confidential client with client_id alone', { client_id: 'svc' }],
    ['unknown client with client_id alone', { client_id: 'ghost' }],
    ['no credentials at all', {}],
  ]
  for (const [what, creds] of viaBody) {
    const res = await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'api', ...creds })
    isOAuthError(t, res, 401, 'invalid_client', what)
    t.equal(res.headers.get('www-authenticate'), null, `${what}: no Basic challenge`)
  }
  // A Bearer header is not Basic: it is no client authentication at all.
  const bearer = await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'api' }, { authorization: 'Bearer abc' })
  isOAuthError(t, bearer, 401, 'invalid_client', 'bearer header')
})

t.test('two client authentication methods at once → 400 invalid_request', async (t) => {
  const cases: Array<[string, Record<string, string>, Record<string, string>]> = [
    ['Basic + client_secret', { client_id: 'svc', client_secret: 'svc-secret' }, { authorization: SVC }],
    ['Basic + client_assertion', { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: 'a.b.c' }, { authorization: SVC }],
    ['client_secret + client_assertion', { client_id: 'poster', client_secret: 'poster-secret', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: 'a.b.c' }, {}],
  ]
  for (const [what, creds, headers] of cases) {
    isOAuthError(t, await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'api', ...creds }, headers), 400, 'invalid_request', what)
  }
})

t.test('malformed input never yields a 500 or HTML', async (t) => {
  const form = (body: Buffer | string, headers: Record<string, string> = { authorization: SVC }) =>
    rawRequest(srv.url, { path: '/connect/token', headers: { 'content-type': FORM, ...headers }, body })
  isOAuthError(t, await form('grant_type=client_credentials&scope=api%00'), 400, 'invalid_request', 'NUL in a value')
  t.equal((await form('grant_type=client_credentials&scope=api&x%00=1')).status, 200, 'NUL in the name of an unknown parameter: ignored (RFC 6749 §3.2)')
  isOAuthError(t, await form(Buffer.from('grant_type=client_credentials&scope=api\u0000', 'utf8')), 400, 'invalid_request', 'raw NUL byte')
  // Invalid UTF-8, raw or percent-encoded, can never match anything: a clean refusal.
  const rawInvalid = Buffer.concat([Buffer.from('grant_type=client_credentials&scope=api'), Buffer.from([0xff, 0xfe, 0xc3])])
  isOAuthError(t, await form(rawInvalid), 400, 'invalid_scope', 'raw invalid UTF-8 in scope')
  isOAuthError(t, await form('grant_type=client_credentials%FF&scope=api'), 400, 'unsupported_grant_type', 'percent-encoded invalid UTF-8 in grant_type')
  isOAuthError(t, await form('grant_type=client_credentials&scope=api', { authorization: basic('svc', 'svc-secret').slice(0, -4) + '%FF=' }), 401, 'invalid_client', 'mangled Basic')
  const badEscapeId = `Basic ${Buffer.from('svc%zz:svc-secret').toString('base64')}`
  isOAuthError(t, await form('grant_type=client_credentials&scope=api', { authorization: badEscapeId }), 401, 'invalid_client', 'invalid percent escape inside Basic')
  const invalidUtf8Basic = `Basic ${Buffer.concat([Buffer.from('svc:'), Buffer.from([0xff, 0xfe])]).toString('base64')}`
  isOAuthError(t, await form('grant_type=client_credentials&scope=api', { authorization: invalidUtf8Basic }), 401, 'invalid_client', 'invalid UTF-8 inside Basic')
  // Invalid percent escapes in the body are kept literally (WHATWG urlencoded parsing): no crash.
  isOAuthError(t, await form('grant_type=client_credentials&scope=%zz%'), 400, 'invalid_scope', 'invalid percent escape in body')
  isOAuthError(t, await form('%%%&&&===&grant_type=client_credentials&scope=api%'), 400, 'invalid_scope', 'junk around parameters')
  // Empty bodies.
  isOAuthError(t, await form(''), 400, 'invalid_request', 'empty body with Basic')
  isOAuthError(t, await form('', {}), 401, 'invalid_client', 'empty body, no credentials')
  isOAuthError(t, await rawRequest(srv.url, { path: '/connect/token', headers: { authorization: SVC } }), 400, 'invalid_request', 'no body, no content type')
  // A huge Basic header, under Node's header limit: refused as a client, not a crash.
  const huge = `Basic ${Buffer.from(`svc:${'s'.repeat(9000)}`).toString('base64')}`
  const res = await form('grant_type=client_credentials&scope=api', { authorization: huge })
  isOAuthError(t, res, 401, 'invalid_client', 'huge Basic header')
  t.equal(res.headers['www-authenticate'], 'Basic realm="grantd"')
  // Over Node's 16 KiB header limit the HTTP parser refuses it itself: 431, never a 500.
  const enormous = await form('grant_type=client_credentials&scope=api', { authorization: `Basic ${'A'.repeat(20_000)}` })
  t.equal(enormous.status, 431)
  t.notMatch(enormous.text, /<html/i)
  // A client_assertion that is not a JWT.
  isOAuthError(t, await form('grant_type=client_credentials&scope=api&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=%FF%FE', {}), 401, 'invalid_client', 'garbage assertion')
  isOAuthError(t, await form('grant_type=client_credentials&scope=api&client_assertion_type=urn%3Aexample&client_assertion=a.b.c', {}), 400, 'invalid_request', 'wrong assertion type')
  // Odd methods on the token path.
  const get = await rawRequest(srv.url, { method: 'GET', path: '/connect/token' })
  isOAuthError(t, get, 405, 'invalid_request', 'GET on the token endpoint')
  t.match(get.headers.allow, /POST/)
})

t.test('404, 405, healthz and readyz answer JSON', async (t) => {
  const missing = await rawRequest(srv.url, { method: 'GET', path: '/nope' })
  t.equal(missing.status, 404)
  t.equal(missing.json?.error, 'not_found')
  t.match(missing.headers['content-type'], /^application\/json/)
  const post404 = await rawRequest(srv.url, { method: 'POST', path: '/connect/nothing', headers: { 'content-type': FORM }, body: 'a=1' })
  t.equal(post404.status, 404)
  t.equal(post404.json?.error, 'not_found')
  const wrongMethod = await rawRequest(srv.url, { method: 'DELETE', path: '/.well-known/jwks.json' })
  t.equal(wrongMethod.status, 405)
  t.match(wrongMethod.headers['content-type'], /^application\/json/)
  t.type(wrongMethod.json?.error, 'string')
  const health = await rawRequest(srv.url, { method: 'GET', path: '/healthz' })
  t.equal(health.status, 200)
  t.same(health.json, { status: 'ok' })
  const ready = await rawRequest(srv.url, { method: 'GET', path: '/readyz' })
  t.equal(ready.status, 200)
  t.equal(ready.json?.status, 'ready')
})

t.test('an unreachable store → 503 temporarily_unavailable, and /readyz says so', async (t) => {
  const down = await startServer({
    issuer: 'http://issuer.test',
    store: './down-store.mjs',
    plugins: ['@grantd/grant-client-credentials'],
    clients: [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' }],
  }, { baseDir: FIXTURES })
  t.teardown(down.close)
  const ready = await rawRequest(down.url, { method: 'GET', path: '/readyz' })
  t.equal(ready.status, 503)
  t.equal(ready.json?.status, 'unavailable')
  const health = await rawRequest(down.url, { method: 'GET', path: '/healthz' })
  t.equal(health.status, 200, 'liveness does not depend on the store')
  // Introspecting a token checks the store's revocation list.
  const issued = await postForm(`${down.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: SVC })
  t.equal(issued.status, 200, 'client_credentials never touches the store')
  const intro = await postForm(`${down.url}/connect/introspect`, { token: issued.json.access_token as string }, { authorization: SVC })
  isOAuthError(t, intro, 503, 'temporarily_unavailable', 'introspection with the store down')
})
