/**
 * RFC 9112 §3.2.2: a request target in absolute form (`POST http://other/connect/token`)
 * names the host; the Host header is ignored. Without a configured issuer the issuer is
 * derived from the target's authority, so what a proxy routed on and what grantd puts in
 * `iss` are the same host.
 */
import t from 'tap'
import { decodeJwt } from 'jose'
import { basic, startServer } from '../helpers/server.js'
import { exchange, buildRequest } from '../fuzz/raw-client.js'

const config = {
  plugins: ['@grantd/grant-client-credentials'],
  clients: [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' }],
}

t.test('absolute-form request targets', async (t) => {
  const srv = await startServer(config)
  t.teardown(srv.close)
  const send = (method: string, target: string, host: string, body?: string) => exchange({
    port: srv.port,
    timeoutMs: 3000,
    request: buildRequest({
      method,
      target,
      headers: [['Host', host], ['Connection', 'close'],
        ...(body === undefined ? [] : [['Authorization', basic('svc', 'svc-secret')], ['Content-Type', 'application/x-www-form-urlencoded'], ['Content-Length', String(Buffer.byteLength(body))]] as Array<[string, string]>)],
      ...(body === undefined ? {} : { body: Buffer.from(body) }),
    }),
  })

  await t.test('the target authority wins over Host at the token endpoint', async (t) => {
    const res = await send('POST', 'http://other.example/connect/token', 'grantd.example', 'grant_type=client_credentials&scope=api')
    t.equal(res.status, 200, res.body.toString())
    const claims = decodeJwt(JSON.parse(res.body.toString()).access_token as string)
    t.equal(claims.iss, 'http://other.example', 'iss from the request target, not the Host header')
  })

  await t.test('and in discovery', async (t) => {
    const res = await send('GET', 'http://other.example:8443/.well-known/openid-configuration', 'grantd.example')
    t.equal(res.status, 200)
    const doc = JSON.parse(res.body.toString()) as Record<string, string>
    t.equal(doc.issuer, 'http://other.example:8443')
    t.equal(doc.token_endpoint, 'http://other.example:8443/connect/token')
  })

  await t.test('an https target names an https issuer', async (t) => {
    const res = await send('GET', 'https://secure.example/.well-known/openid-configuration', 'grantd.example')
    t.equal(JSON.parse(res.body.toString()).issuer, 'https://secure.example')
  })

  await t.test('origin-form still uses Host', async (t) => {
    const res = await send('GET', '/.well-known/openid-configuration', 'grantd.example')
    t.equal(JSON.parse(res.body.toString()).issuer, 'http://grantd.example')
  })

  await t.test('an absolute target that is not an http(s) URL is invalid_request', async (t) => {
    for (const target of ['ftp://other.example/.well-known/openid-configuration', 'http://user:pw@other.example/.well-known/openid-configuration']) {
      const res = await send('GET', target, 'grantd.example')
      t.ok(res.status === 400, `${target}: ${res.status}`)
      if (res.status === 400 && res.body.length > 0) t.equal(JSON.parse(res.body.toString()).error, 'invalid_request', target)
    }
  })
})

t.test('a configured issuer still wins over an absolute target', async (t) => {
  const srv = await startServer({ ...config, issuer: 'https://id.example' })
  t.teardown(srv.close)
  const res = await exchange({ port: srv.port, timeoutMs: 3000, request: buildRequest({ method: 'GET', target: 'http://other.example/.well-known/openid-configuration', headers: [['Host', 'a'], ['Connection', 'close']] }) })
  t.equal(JSON.parse(res.body.toString()).issuer, 'https://id.example')
})
