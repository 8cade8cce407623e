/**
 * SPEC §4 issuer and reverse proxy: a configured issuer is the only base URL; without
 * one the issuer comes from Host, and from X-Forwarded-Proto/Host/Prefix only when
 * `proxy.trust` trusts the peer. Discovery, token `iss` and the grant list agree.
 */
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { basic, ROOT, startServer, type RunningServer } from '../helpers/server.js'
import { FORM, rawRequest } from './raw-http.js'

const FIXTURES = join(ROOT, 'test', 'fixtures', 'core')
const CLIENTS = [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' }]
const FORWARDED = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'id.example.com', 'x-forwarded-prefix': '/auth' }

async function boot(t: Test, extra: Record<string, unknown>): Promise<RunningServer> {
  const srv = await startServer({ plugins: ['@grantd/grant-client-credentials'], clients: CLIENTS, ...extra }, { baseDir: FIXTURES })
  t.teardown(srv.close)
  return srv
}

async function discover(srv: RunningServer, headers: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const res = await rawRequest(srv.url, { method: 'GET', path: '/.well-known/openid-configuration', headers })
  if (res.status !== 200 || !res.json) throw new Error(`discovery answered ${res.status}: ${res.text}`)
  return res.json
}

/** Get a token with the same headers and return its verified `iss`. */
async function tokenIssuer(srv: RunningServer, headers: Record<string, string> = {}): Promise<string> {
  const res = await rawRequest(srv.url, {
    path: '/connect/token',
    headers: { 'content-type': FORM, authorization: basic('svc', 'svc-secret'), ...headers },
    body: 'grant_type=client_credentials&scope=api',
  })
  if (res.status !== 200) throw new Error(`token answered ${res.status}: ${res.text}`)
  const jwks = createLocalJWKSet(JSON.parse((await rawRequest(srv.url, { method: 'GET', path: '/.well-known/jwks.json' })).text))
  const { payload } = await jwtVerify(String(res.json!.access_token), jwks, { typ: 'at+jwt' })
  return String(payload.iss)
}

/** Every URL in the metadata is built from the issuer. */
function urlsUnder(t: Test, meta: Record<string, unknown>, issuer: string): void {
  t.equal(meta.issuer, issuer)
  t.equal(meta.token_endpoint, `${issuer}/connect/token`)
  t.equal(meta.jwks_uri, `${issuer}/.well-known/jwks.json`)
  for (const [k, v] of Object.entries(meta)) {
    if (typeof v === 'string' && /^https?:/.test(v)) t.ok(v === issuer || v.startsWith(`${issuer}/`), `${k} is under the issuer`)
  }
}

t.test('a configured issuer wins over Host and any forwarded header, trusted or not', async (t) => {
  const srv = await boot(t, { issuer: 'https://login.example.org/tenant-a/', proxy: { trust: true } })
  const issuer = 'https://login.example.org/tenant-a'
  const variants: Array<Record<string, string>> = [{}, { host: 'evil.example' }, FORWARDED, { ...FORWARDED, host: 'evil.example' }]
  for (const headers of variants) {
    urlsUnder(t, await discover(srv, headers), issuer)
    t.equal(await tokenIssuer(srv, headers), issuer, `token iss with ${JSON.stringify(headers)}`)
  }
  // RFC 8414 §3 alias.
  const alias = await rawRequest(srv.url, { method: 'GET', path: '/.well-known/oauth-authorization-server', headers: FORWARDED })
  t.equal(alias.json?.issuer, issuer)
})

t.test('no issuer, no proxy.trust: Host decides; X-Forwarded-* is ignored', async (t) => {
  const srv = await boot(t, {})
  urlsUnder(t, await discover(srv), srv.url)
  urlsUnder(t, await discover(srv, FORWARDED), srv.url)
  t.equal(await tokenIssuer(srv, FORWARDED), srv.url)
  urlsUnder(t, await discover(srv, { host: 'ID.Example.com:8443' }), 'http://id.example.com:8443')
  t.equal(await tokenIssuer(srv, { host: 'id.example.com:8443' }), 'http://id.example.com:8443')
  // A Host that is not a host name is refused as a bad request, in JSON.
  const bad = await rawRequest(srv.url, { method: 'GET', path: '/.well-known/openid-configuration', headers: { host: 'a b/c' } })
  t.equal(bad.status, 400)
  t.equal(bad.json?.error, 'invalid_request')
})

t.test('no issuer, proxy.trust true: X-Forwarded-Proto/Host/Prefix build the issuer', async (t) => {
  const srv = await boot(t, { proxy: { trust: true } })
  const meta = await discover(srv, FORWARDED)
  urlsUnder(t, meta, 'https://id.example.com/auth')
  t.equal(meta.token_endpoint, 'https://id.example.com/auth/connect/token')
  t.equal(await tokenIssuer(srv, FORWARDED), 'https://id.example.com/auth')
  // Lists (several proxies) take the first, i.e. the client-facing, value; a trailing slash on the prefix is dropped.
  const listed = await discover(srv, { 'x-forwarded-proto': 'https, http', 'x-forwarded-host': 'id.example.com, internal:8080', 'x-forwarded-prefix': '/auth/' })
  t.equal(listed.issuer, 'https://id.example.com/auth')
  // Only some headers: the rest come from the connection.
  t.equal((await discover(srv, { 'x-forwarded-proto': 'https' })).issuer, `https://127.0.0.1:${srv.port}`)
  t.equal((await discover(srv, { 'x-forwarded-host': 'id.example.com' })).issuer, 'http://id.example.com')
  // An unknown protocol is ignored, never used.
  t.equal((await discover(srv, { 'x-forwarded-proto': 'javascript' })).issuer, srv.url)
  // A forwarded value that cannot be part of a URL is a bad request, not an issuer.
  const junk: Array<Record<string, string>> = [{ 'x-forwarded-host': 'id.example.com/evil' }, { 'x-forwarded-prefix': '/a b' }, { 'x-forwarded-prefix': '/a?b=1' }, { 'x-forwarded-host': 'a@b' }]
  for (const headers of junk) {
    const res = await rawRequest(srv.url, { method: 'GET', path: '/.well-known/openid-configuration', headers })
    t.equal(res.status, 400, JSON.stringify(headers))
    t.equal(res.json?.error, 'invalid_request')
  }
})

t.test('proxy.trust as a list: only listed peers may forward', async (t) => {
  const trusted = await boot(t, { proxy: { trust: ['10.0.0.0/8', '127.0.0.0/8'] } })
  t.equal((await discover(trusted, FORWARDED)).issuer, 'https://id.example.com/auth', 'loopback is in 127.0.0.0/8')
  t.equal(await tokenIssuer(trusted, FORWARDED), 'https://id.example.com/auth')
  const single = await boot(t, { proxy: { trust: ['127.0.0.1'] } })
  t.equal((await discover(single, FORWARDED)).issuer, 'https://id.example.com/auth', 'a single address')
  const untrusted = await boot(t, { proxy: { trust: ['10.0.0.0/8', '::1/128'] } })
  t.equal((await discover(untrusted, FORWARDED)).issuer, untrusted.url, '127.0.0.1 is not listed')
  t.equal(await tokenIssuer(untrusted, FORWARDED), untrusted.url)
  await t.rejects(boot(t, { proxy: { trust: ['10.0.0.0/33'] } }), { message: /^proxy\.trust\[0\]: / })
  await t.rejects(boot(t, { proxy: { trust: ['not-an-address'] } }), { message: /^proxy\.trust\[0\]: / })
})

t.test('grant_types_supported lists exactly the loaded grant plugins', async (t) => {
  const one = await boot(t, { issuer: 'http://issuer.test' })
  const meta = await discover(one)
  t.same(meta.grant_types_supported, ['client_credentials'])
  t.notOk(meta.authorization_endpoint, 'no authorization endpoint without the code grant')
  t.same(meta.response_types_supported, [])
  const two = await boot(t, { issuer: 'http://issuer.test', plugins: ['@grantd/grant-client-credentials', './echo-grant.mjs'] })
  t.same(((await discover(two)).grant_types_supported as string[]).sort(), ['client_credentials', 'urn:grantd:test:echo'])
  const none = await boot(t, { issuer: 'http://issuer.test', plugins: [], clients: [] })
  t.same((await discover(none)).grant_types_supported, [])
  // The rest of the RFC 8414 essentials.
  t.match(meta, {
    issuer: 'http://issuer.test',
    token_endpoint_auth_methods_supported: Array,
    id_token_signing_alg_values_supported: ['ES256'],
    subject_types_supported: ['public'],
    scopes_supported: Array,
  })
  t.ok((meta.scopes_supported as string[]).includes('api'))
})

t.test('discovery lists exactly the client-assertion algorithms the server accepts', async (t) => {
  const srv = await startServer({ issuer: 'http://id.test', plugins: ['@grantd/grant-client-credentials'], clients: [] })
  t.teardown(srv.close)
  const meta = await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json() as Record<string, unknown>
  t.same(meta.token_endpoint_auth_signing_alg_values_supported, ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'])
  t.equal(meta.authorization_endpoint, undefined, 'no authorization endpoint without the plugin that serves it')
  t.same(meta.response_types_supported, [], 'and no response types')
})
