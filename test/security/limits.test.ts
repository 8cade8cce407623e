/**
 * Input limits (IdentityServer's InputLengthRestrictions, SPEC §5): every over-limit
 * request is refused quickly with `invalid_request` (or 413 / 431), before any work.
 */
import t from 'tap'
import { basic, postForm, startServer } from '../helpers/server.js'
import { rawRequest, FORM } from '../core/raw-http.js'
import { exchange, buildRequest } from '../fuzz/raw-client.js'

const config = {
  issuer: 'http://issuer.test',
  users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-alice', username: 'alice', password: 'wonderland' }] } },
  plugins: ['@grantd/grant-client-credentials', '@grantd/grant-password', '@grantd/acr-tenant', '@grantd/grant-authorization-code'],
  cookies: { keys: ['limits-test-cookie-key-0123456789'] },
  clients: [
    { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: Array.from({ length: 80 }, (_, i) => `s${i}`).join(' ') + ' api' },
    { client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password'], scope: 'api' },
  ],
}
const SVC = { authorization: basic('svc', 'svc-secret') }
/** "Quickly": refused before any expensive work, far below the request timeout. */
const QUICK_MS = 1500

t.test('limits', async (t) => {
  const srv = await startServer(config)
  t.teardown(srv.close)
  const token = `${srv.url}/connect/token`

  async function refused(t: Tap, name: string, send: () => Promise<{ status: number; json: Record<string, unknown> | undefined }>, status: number, description: RegExp): Promise<void> {
    const started = performance.now()
    const res = await send()
    const ms = performance.now() - started
    t.equal(res.status, status, `${name}: status`)
    t.equal(res.json?.error, 'invalid_request', `${name}: invalid_request`)
    t.match(String(res.json?.error_description), description, `${name}: says why`)
    t.ok(ms < QUICK_MS, `${name}: answered in ${ms.toFixed(0)} ms`)
  }
  type Tap = typeof t

  await t.test('body size: 16 KiB is the limit, 413 with an OAuth body above it', async (t) => {
    const justUnder = `grant_type=client_credentials&scope=api&pad=${'a'.repeat(16 * 1024 - 50)}`
    const under = await postForm(token, justUnder.slice(0, 16 * 1024), SVC)
    t.not(under.status, 413, 'a body of exactly 16 KiB is read')
    await refused(t, 'declared length', () => rawRequest(srv.url, { path: '/connect/token', headers: { 'content-type': FORM, ...SVC }, body: `scope=api&x=${'a'.repeat(16 * 1024)}` }), 413, /exceeds 16384 bytes/)
    await refused(t, 'chunked', () => rawRequest(srv.url, { path: '/connect/token', headers: { 'content-type': FORM, ...SVC }, body: `scope=api&x=${'a'.repeat(40 * 1024)}`, chunked: true }), 413, /exceeds/)
    await refused(t, 'introspection', () => rawRequest(srv.url, { path: '/connect/introspect', headers: { 'content-type': FORM, ...SVC }, body: `token=${'a'.repeat(17 * 1024)}` }), 413, /exceeds/)
  })

  await t.test('a huge declared Content-Length is refused without waiting for the body', async (t) => {
    const started = performance.now()
    const answer = await exchange({ port: srv.port, timeoutMs: 3000, request: buildRequest({ method: 'POST', target: '/connect/token', headers: [['Host', `127.0.0.1:${srv.port}`], ['Content-Type', FORM], ['Content-Length', '1073741824']] }) })
    t.equal(answer.status, 413)
    t.notOk(answer.timedOut)
    t.ok(performance.now() - started < QUICK_MS, 'answered at once')
  })

  await t.test('value length of the parameters grantd reads; unknown ones are ignored (RFC 6749 §3.2)', async (t) => {
    await refused(t, 'value of 4097', () => postForm(token, { grant_type: 'password', username: 'alice', password: 'a'.repeat(4097), scope: 'api' }, { authorization: basic('ro', 'ro-secret') }), 400, /password is too long/)
    const many = Array.from({ length: 65 }, (_, i) => `p${i}=x`).join('&')
    t.equal((await postForm(token, `grant_type=client_credentials&scope=api&${many}`, SVC)).status, 200, '65 unknown parameters')
    t.equal((await postForm(token, { grant_type: 'client_credentials', scope: 'api', x: 'a'.repeat(4097) }, SVC)).status, 200, 'an unknown value of 4097')
    t.equal((await postForm(token, { grant_type: 'client_credentials', scope: 'api', ['n'.repeat(129)]: 'x' }, SVC)).status, 200, 'an unknown name of 129')
  })

  await t.test('scope: number of values and length', async (t) => {
    const scopes = (n: number) => Array.from({ length: n }, (_, i) => `s${i}`).join(' ')
    t.equal((await postForm(token, { grant_type: 'client_credentials', scope: scopes(64) }, SVC)).status, 200, '64 scopes are fine')
    await refused(t, '65 scopes', () => postForm(token, { grant_type: 'client_credentials', scope: scopes(65) }, SVC), 400, /too many scopes/)
    await refused(t, 'scope of 2049', () => postForm(token, { grant_type: 'client_credentials', scope: `api ${'a'.repeat(2045)}` }, SVC), 400, /scope is too long/)
  })

  await t.test('acr_values length', async (t) => {
    const acr = (n: number) => `tenant:acme ${'x'.repeat(n - 12)}`
    await refused(t, 'acr_values of 1025', () => postForm(token, { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'api', acr_values: acr(1025) }, { authorization: basic('ro', 'ro-secret') }), 400, /acr_values is too long/)
    const ok = await postForm(token, { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'api', acr_values: `loa:1 ${'x'.repeat(1018)}` }, { authorization: basic('ro', 'ro-secret') })
    t.equal(ok.status, 200, `acr_values of 1024 is fine: ${ok.text}`)
  })

  await t.test('header size: over 16 KiB is 431 with an OAuth body', async (t) => {
    const answer = await exchange({ port: srv.port, timeoutMs: 3000, request: buildRequest({ method: 'GET', target: '/healthz', headers: [['Host', `127.0.0.1:${srv.port}`], ['X-Big', 'a'.repeat(17 * 1024)], ['Connection', 'close']] }) })
    t.equal(answer.status, 431)
    t.same(JSON.parse(answer.body.toString()), { error: 'invalid_request', error_description: 'request headers too large' })
    const fits = await exchange({ port: srv.port, timeoutMs: 3000, request: buildRequest({ method: 'GET', target: '/healthz', headers: [['Host', `127.0.0.1:${srv.port}`], ['X-Big', 'a'.repeat(15 * 1024)], ['Connection', 'close']] }) })
    t.equal(fits.status, 200, 'a 15 KiB header is fine')
  })

  await t.test('the login form has the same body limit, answered as a page', async (t) => {
    const res = await rawRequest(srv.url, { path: '/connect/login', headers: { 'content-type': FORM }, body: `pending=x&csrf=y&password=${'a'.repeat(20 * 1024)}` })
    t.equal(res.status, 413)
    t.match(String(res.headers['content-type']), /^text\/html/)
  })

  await t.test('an authorization request over 16 KiB gets an error page', async (t) => {
    const res = await fetch(`${srv.url}/connect/authorize?client_id=x&state=${'a'.repeat(17 * 1024 - 200)}`)
    t.ok(res.status === 400 || res.status === 414 || res.status === 431, `refused (${res.status})`)
    t.ok(res.status < 500)
  })
})
