/**
 * Request bodies are read by koa-body (SPEC §9): the 16 KiB limit answers 413 with an
 * OAuth JSON error; the token, introspection and revocation endpoints take only
 * application/x-www-form-urlencoded in UTF-8; JSON is read where an endpoint asks for it
 * (`readJson`, here through a plugin route).
 */
import { gzipSync } from 'node:zlib'
import t, { type Test } from 'tap'
import { basic, startServer } from '../helpers/server.js'
import { FORM, rawRequest, type RawResponse } from '../core/raw-http.js'

const config = {
  issuer: 'http://issuer.test',
  plugins: ['@grantd/grant-client-credentials', './test/plumbing/json-echo-plugin.ts'],
  clients: [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' }],
}
const SVC = basic('svc', 'svc-secret')
const FORM_ENDPOINTS = ['/connect/token', '/connect/introspect', '/connect/revocation']
const BODY: Record<string, string> = {
  '/connect/token': 'grant_type=client_credentials&scope=api',
  '/connect/introspect': 'token=abc',
  '/connect/revocation': 'token=abc',
}

function oauthError(t: Test, res: RawResponse, status: number, error: string, what: string): void {
  t.equal(res.status, status, `${what}: status (${res.text.slice(0, 200)})`)
  t.match(String(res.headers['content-type']), /^application\/json/, `${what}: JSON`)
  t.equal(res.json?.error, error, `${what}: error`)
  t.type(res.json?.error_description, 'string', `${what}: description`)
  t.notMatch(res.text, /at .*\.(?:js|ts):\d+/, `${what}: no stack`)
}

t.test('bodies', async (t) => {
  const srv = await startServer(config)
  t.teardown(srv.close)
  const send = (path: string, headers: Record<string, string>, body: string | Buffer, chunked = false) =>
    rawRequest(srv.url, { path, headers: { authorization: SVC, ...headers }, body, chunked })

  await t.test('17 KiB → 413 with an OAuth JSON error, on every form endpoint', async (t) => {
    for (const path of FORM_ENDPOINTS) {
      const big = `${BODY[path]}&pad=${'a'.repeat(17 * 1024)}`
      oauthError(t, await send(path, { 'content-type': FORM }, big), 413, 'invalid_request', `${path} with Content-Length`)
      oauthError(t, await send(path, { 'content-type': FORM }, big, true), 413, 'invalid_request', `${path} chunked`)
    }
    const ok = await send('/connect/token', { 'content-type': FORM }, `${BODY['/connect/token']}&pad=${'a'.repeat(16 * 1024 - 100)}`)
    t.equal(ok.status, 200, `just under 16 KiB is read (${ok.text.slice(0, 100)})`)
  })

  await t.test('JSON and multipart at token, introspection, revocation → invalid_request', async (t) => {
    for (const path of FORM_ENDPOINTS) {
      const json = JSON.stringify(Object.fromEntries(new URLSearchParams(BODY[path])))
      oauthError(t, await send(path, { 'content-type': 'application/json' }, json), 400, 'invalid_request', `${path} JSON`)
      const multipart = '--xyz\r\nContent-Disposition: form-data; name="token"\r\n\r\nabc\r\n--xyz--\r\n'
      oauthError(t, await send(path, { 'content-type': 'multipart/form-data; boundary=xyz' }, multipart), 400, 'invalid_request', `${path} multipart`)
      oauthError(t, await send(path, { 'content-type': 'text/plain' }, BODY[path]!), 400, 'invalid_request', `${path} text/plain`)
    }
  })

  await t.test('a form in a charset other than UTF-8 is refused; UTF-8 is read', async (t) => {
    oauthError(t, await send('/connect/token', { 'content-type': `${FORM}; charset=iso-8859-1` }, BODY['/connect/token']!), 400, 'invalid_request', 'latin-1')
    oauthError(t, await send('/connect/token', { 'content-type': `${FORM}; charset=utf-16` }, BODY['/connect/token']!), 400, 'invalid_request', 'utf-16')
    t.equal((await send('/connect/token', { 'content-type': `${FORM}; charset="UTF-8"` }, BODY['/connect/token']!)).status, 200, 'quoted UTF-8')
  })

  await t.test('readJson: an object is read; size, type and syntax are checked', async (t) => {
    const echo = await send('/json-echo', { 'content-type': 'application/json' }, JSON.stringify({ client_name: 'é', redirect_uris: ['https://a.example/cb'] }))
    t.equal(echo.status, 200, echo.text)
    t.same(echo.json, { received: { client_name: 'é', redirect_uris: ['https://a.example/cb'] } })
    t.equal((await send('/json-echo', { 'content-type': 'application/json; charset=utf-8' }, '{"a":1}')).status, 200, 'charset utf-8')
    oauthError(t, await send('/json-echo', { 'content-type': 'application/json' }, JSON.stringify({ pad: 'a'.repeat(17 * 1024) })), 413, 'invalid_request', 'JSON over 16 KiB')
    oauthError(t, await send('/json-echo', { 'content-type': 'application/json' }, '{"a":'), 400, 'invalid_request', 'malformed JSON')
    oauthError(t, await send('/json-echo', { 'content-type': 'application/json' }, '[1,2]'), 400, 'invalid_request', 'an array')
    oauthError(t, await send('/json-echo', { 'content-type': 'application/json' }, '"text"'), 400, 'invalid_request', 'a string')
    oauthError(t, await send('/json-echo', { 'content-type': 'application/json' }, '{"__proto__":{"admin":true}}'), 400, 'invalid_request', 'prototype poisoning')
    oauthError(t, await send('/json-echo', { 'content-type': FORM }, 'a=1'), 400, 'invalid_request', 'a form where JSON is expected')
    oauthError(t, await send('/json-echo', { 'content-type': 'application/json; charset=utf-16' }, '{}'), 400, 'invalid_request', 'JSON in UTF-16')
    oauthError(t, await send('/json-echo', { 'content-type': 'application/json', 'content-encoding': 'gzip' }, gzipSync('{"a":1}')), 400, 'invalid_request', 'gzip JSON (inflation is unbounded)')
    const twice = await send('/json-echo', { 'content-type': 'application/json' }, '{"a":1,"a":2}')
    t.equal(twice.status, 200, 'JSON duplicate keys: the last wins (JSON.parse), as RFC 8259 §4 allows')
  })
})
