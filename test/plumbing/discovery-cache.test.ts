/**
 * Cache poisoning (SPEC §9): without a configured issuer the discovery documents reflect
 * the Host header, so a shared cache must key on it (`Vary`) and must be told how long it
 * may keep them (`Cache-Control`); otherwise one request with `Host: evil.example` would
 * serve an attacker's endpoints to everyone behind the cache.
 */
import t from 'tap'
import { startServer } from '../helpers/server.js'
import { exchange, buildRequest } from '../fuzz/raw-client.js'

const DOCS = ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']
const base = { plugins: ['@grantd/grant-client-credentials'] }

function get(port: number, path: string, headers: Array<[string, string]>) {
  return exchange({ port, timeoutMs: 3000, request: buildRequest({ method: 'GET', target: path, headers: [...headers, ['Connection', 'close']] }) })
}

t.test('without an issuer, every discovery document varies on Host and says how to cache', async (t) => {
  const srv = await startServer(base)
  t.teardown(srv.close)
  for (const path of DOCS) {
    const res = await get(srv.port, path, [['Host', 'evil.example']])
    t.equal(res.status, 200, path)
    t.match(JSON.parse(res.body.toString()).issuer, 'http://evil.example', `${path}: reflects the Host (no issuer configured)`)
    t.match(res.headers.get('vary')?.join(', '), /\bHost\b/i, `${path}: Vary: Host`)
    t.ok(res.headers.get('cache-control')?.[0], `${path}: Cache-Control`)
  }
})

t.test('behind a trusted proxy the forwarded headers are in Vary too', async (t) => {
  const srv = await startServer({ ...base, proxy: { trust: true } })
  t.teardown(srv.close)
  for (const path of DOCS) {
    const res = await get(srv.port, path, [['Host', 'a.example'], ['X-Forwarded-Host', 'id.example'], ['X-Forwarded-Proto', 'https']])
    t.equal(JSON.parse(res.body.toString()).issuer, 'https://id.example', path)
    const vary = res.headers.get('vary')?.join(', ') ?? ''
    for (const h of ['Host', 'X-Forwarded-Proto', 'X-Forwarded-Host', 'X-Forwarded-Prefix']) t.match(vary, new RegExp(`\\b${h}\\b`, 'i'), `${path}: Vary names ${h}`)
    t.ok(res.headers.get('cache-control')?.[0], `${path}: Cache-Control`)
  }
})

t.test('with a configured issuer the documents are the same for everyone and cacheable', async (t) => {
  const srv = await startServer({ ...base, issuer: 'https://id.example' })
  t.teardown(srv.close)
  for (const path of DOCS) {
    const res = await get(srv.port, path, [['Host', 'evil.example']])
    t.equal(JSON.parse(res.body.toString()).issuer, 'https://id.example', path)
    t.ok(res.headers.get('cache-control')?.[0], `${path}: Cache-Control`)
  }
})
