/**
 * API resources (RFC 8707, RFC 9068 §3, SPEC §11), black-box: a real express API on a
 * loopback port protected by express-oauth2-jwt-bearer with `audience` = a resource id
 * accepts tokens from every built-in grant and refuses another resource's.
 */
import t from 'tap'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { auth } from 'express-oauth2-jwt-bearer'
import { decodeJwt } from 'jose'
import { validateConfig } from '@grantd/core'
import { authorizeUrl, get, loginForCode, redeem, WEB_REDIRECT, CookieJar, pkcePair, startFlowServer } from '../authorization-code/flow.js'
import { basic, postForm, type RunningServer } from '../helpers/server.js'
import { BILLING, ORDERS, REPORTS, password, resourcesConfig, said, token, verifyAccess } from './fixtures.js'

let srv: RunningServer
let api: { url: string; close(): Promise<void> }

/** An API that trusts grantd for `audience` only, the RFC 9068 profile on (strict: typ at+jwt, iat, jti, client_id). */
async function startApi(issuer: string, audience: string): Promise<{ url: string; close(): Promise<void> }> {
  const app = express()
  app.get('/me', auth({ issuerBaseURL: issuer, audience, strict: true }), (req, res) => {
    res.json(req.auth!.payload)
  })
  app.use((err: { status?: number; code?: string; message: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(err.status ?? 500).json({ error: err.code ?? 'error', message: err.message })
  })
  const server = app.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((r) => server.close(() => r())) }
}

async function callApi(accessToken: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${api.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } })
  return { status: res.status, json: await res.json() as Record<string, unknown> }
}

t.before(async () => {
  srv = await startFlowServer(resourcesConfig())
  api = await startApi(srv.server.config.issuer!, ORDERS)
})
t.teardown(async () => {
  await api.close()
  await srv.close()
})

t.test('express-oauth2-jwt-bearer (audience = the orders resource) accepts tokens from every grant', async (t) => {
  // client_credentials: the requested scopes belong to one resource, so it is the audience (RFC 9068 §3).
  const cc = await token(srv, 'svc', { grant_type: 'client_credentials', scope: 'orders:read' })
  t.equal(cc.status, 200, said(cc))
  t.equal(cc.json.scope, 'orders:read')
  const ccApi = await callApi(cc.json.access_token as string)
  t.equal(ccApi.status, 200, JSON.stringify(ccApi.json))
  t.equal(ccApi.json.aud, ORDERS)
  t.equal(ccApi.json.sub, 'svc')
  t.notOk('roles' in ccApi.json, 'no user, no user claims')

  // password with an explicit resource: only that resource's scopes plus the OIDC ones.
  const pw = await password(srv, 'openid profile orders:read billing:read', { resource: ORDERS })
  t.equal(pw.status, 200, said(pw))
  t.equal(pw.json.scope, 'openid profile orders:read')
  const pwApi = await callApi(pw.json.access_token as string)
  t.equal(pwApi.status, 200, JSON.stringify(pwApi.json))
  t.equal(pwApi.json.sub, 'u-alice')
  t.same(pwApi.json.roles, ['admin'], "the resource's claims, whatever the scope")
  t.notOk('department' in pwApi.json, 'only the claims the resource lists')

  // authorization code: resource at authorize, none at the token endpoint.
  const login = await loginForCode(srv, { scope: 'openid orders:read offline_access', extra: { resource: ORDERS } })
  const code = await redeem(srv, login.code, login.verifier)
  t.equal(code.status, 200, said(code))
  t.equal(code.json.scope, 'openid orders:read offline_access')
  const codeApi = await callApi(code.json.access_token as string)
  t.equal(codeApi.status, 200, JSON.stringify(codeApi.json))
  t.equal(codeApi.json.aud, ORDERS)
  t.same(codeApi.json.roles, ['admin'])

  // refresh_token: the refresh token remembers the resource (RFC 8707 §2.2).
  const refreshed = await token(srv, 'web', { grant_type: 'refresh_token', refresh_token: code.json.refresh_token as string, resource: ORDERS })
  t.equal(refreshed.status, 200, said(refreshed))
  const refreshedApi = await callApi(refreshed.json.access_token as string)
  t.equal(refreshedApi.status, 200, JSON.stringify(refreshedApi.json))
  t.equal(refreshedApi.json.client_id, 'web')
  const plainRefresh = await token(srv, 'web', { grant_type: 'refresh_token', refresh_token: refreshed.json.refresh_token as string })
  t.equal(plainRefresh.status, 200, said(plainRefresh))
  t.equal((await callApi(plainRefresh.json.access_token as string)).status, 200, 'without resource the refresh keeps the audience its scopes imply')
})

t.test("the API refuses another resource's token and a token for the client", async (t) => {
  const billing = await token(srv, 'svc', { grant_type: 'client_credentials', scope: 'billing:read' })
  t.equal(billing.status, 200, said(billing))
  t.equal(decodeJwt(billing.json.access_token as string).aud, BILLING)
  const refused = await callApi(billing.json.access_token as string)
  t.equal(refused.status, 401)
  t.match(refused.json.message, /aud/)

  const noResource = await token(srv, 'svc', { grant_type: 'client_credentials', scope: 'api' })
  t.equal(decodeJwt(noResource.json.access_token as string).aud, 'svc', 'no resource scope: the client is the audience')
  t.equal((await callApi(noResource.json.access_token as string)).status, 401)

  // Scopes of two resources and no resource parameter: no single audience, so the client's.
  const both = await token(srv, 'svc', { grant_type: 'client_credentials', scope: 'orders:read billing:read' })
  t.equal(both.status, 200, said(both))
  t.equal(decodeJwt(both.json.access_token as string).aud, 'svc')
  t.equal((await callApi(both.json.access_token as string)).status, 401)

  // The same two scopes with resource=billing: the orders scope is dropped from that token.
  const narrowed = await token(srv, 'svc', { grant_type: 'client_credentials', scope: 'orders:read billing:read api', resource: BILLING })
  t.equal(narrowed.status, 200, said(narrowed))
  t.equal(narrowed.json.scope, 'billing:read api')
  const claims = decodeJwt(narrowed.json.access_token as string)
  t.equal(claims.aud, BILLING)
  t.equal(claims.scope, 'billing:read api')
})

t.test('a refresh token may switch to any resource of its grant, and to no other', async (t) => {
  const pw = await password(srv, 'openid offline_access orders:read billing:read')
  t.equal(pw.status, 200, said(pw))
  t.equal(decodeJwt(pw.json.access_token as string).aud, 'ro')
  let rt = pw.json.refresh_token as string
  const forBilling = await token(srv, 'ro', { grant_type: 'refresh_token', refresh_token: rt, resource: BILLING })
  t.equal(forBilling.status, 200, said(forBilling))
  t.equal(forBilling.json.scope, 'openid offline_access billing:read')
  t.equal(decodeJwt(forBilling.json.access_token as string).aud, BILLING)
  rt = forBilling.json.refresh_token as string
  const forOrders = await token(srv, 'ro', { grant_type: 'refresh_token', refresh_token: rt, resource: ORDERS })
  t.equal(forOrders.status, 200, said(forOrders))
  t.equal(forOrders.json.scope, 'openid offline_access orders:read', 'the refresh token kept the whole scope')
  rt = forOrders.json.refresh_token as string

  // REPORTS is configured and the client may use it, but this grant never covered it.
  const outside = await token(srv, 'ro', { grant_type: 'refresh_token', refresh_token: rt, resource: REPORTS })
  t.equal(outside.status, 400)
  t.equal(outside.json.error, 'invalid_target')
  const still = await token(srv, 'ro', { grant_type: 'refresh_token', refresh_token: rt })
  t.equal(still.status, 200, 'the refused request did not spend the refresh token: ' + said(still))
})

t.test('invalid_target at the token endpoint', async (t) => {
  const cases: Array<[string, Record<string, string>, string]> = [
    ['svc', { grant_type: 'client_credentials', scope: 'orders:read', resource: 'https://evil.example/' }, 'unknown resource'],
    ['svc', { grant_type: 'client_credentials', scope: 'orders:read', resource: `${ORDERS}#frag` }, 'resource with a fragment'],
    ['svc', { grant_type: 'client_credentials', scope: 'orders:read', resource: 'orders' }, 'not an absolute URI'],
    ['svc', { grant_type: 'client_credentials', scope: 'orders:read', resource: BILLING }, 'no granted scope applies to the resource'],
    ['limited', { grant_type: 'client_credentials', scope: 'api', resource: BILLING }, "a resource outside the client's resources"],
    ['limited', { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'api', resource: REPORTS }, 'password grant, disallowed resource'],
  ]
  for (const [clientId, form, name] of cases) {
    const res = await token(srv, clientId, form)
    t.equal(res.status, 400, name)
    t.equal(res.json.error, 'invalid_target', name)
    t.type(res.json.error_description, 'string', name)
    t.equal(res.headers.get('cache-control'), 'no-store', name)
  }
  const long = await token(srv, 'svc', { grant_type: 'client_credentials', scope: 'orders:read', resource: `${ORDERS}/${'x'.repeat(600)}` })
  t.equal(long.status, 400)
  t.equal(long.json.error, 'invalid_request', 'an oversize resource fails early (SPEC §9 length limits)')
  const limited = await token(srv, 'limited', { grant_type: 'client_credentials', scope: 'api', resource: ORDERS })
  t.equal(limited.status, 200, 'the allowed resource: ' + said(limited))

  const twice = await postForm(`${srv.url}/connect/token`, `grant_type=client_credentials&scope=orders:read&resource=${encodeURIComponent(ORDERS)}&resource=${encodeURIComponent(BILLING)}`,
    { authorization: basic('svc', 'svc-secret') })
  t.equal(twice.status, 400)
  t.equal(twice.json.error, 'invalid_request', 'one resource per token request')
})

t.test('invalid_target at the authorization endpoint: a redirect with state and iss', async (t) => {
  const { challenge } = pkcePair()
  const base = { response_type: 'code', redirect_uri: WEB_REDIRECT, scope: 'openid orders:read', state: 'st-1', code_challenge: challenge, code_challenge_method: 'S256' }
  for (const [clientId, resource, name] of [['web', 'https://evil.example/', 'unknown'], ['web2', BILLING, 'not allowed for the client'], ['web', `${ORDERS}#x`, 'fragment']] as const) {
    const page = await get(authorizeUrl(srv, { ...base, client_id: clientId, resource }))
    t.equal(page.status, 302, name)
    t.equal(page.location?.origin + page.location!.pathname, WEB_REDIRECT, name)
    t.equal(page.location?.searchParams.get('error'), 'invalid_target', name)
    t.equal(page.location?.searchParams.get('state'), 'st-1', name)
    t.equal(page.location?.searchParams.get('iss'), srv.server.config.issuer, name)
  }
  // resource may repeat at authorize (RFC 8707 §2); each must be valid.
  const url = new URL(authorizeUrl(srv, { ...base, client_id: 'web', scope: 'openid orders:read billing:read' }))
  url.searchParams.append('resource', ORDERS)
  url.searchParams.append('resource', 'https://evil.example/')
  const mixed = await get(url.href)
  t.equal(mixed.location?.searchParams.get('error'), 'invalid_target')
  const other = new URL(authorizeUrl(srv, { ...base, client_id: 'web', scope: 'openid orders:read billing:read', state: 'st-2' }))
  other.searchParams.set('state', 'st-2')
  other.searchParams.append('state', 'st-3')
  t.equal((await get(other.href)).location?.searchParams.get('error'), 'invalid_request', 'other parameters still may not repeat')
})

t.test('a code for two resources: each at the token endpoint, a third is invalid_target and does not burn the code', async (t) => {
  const jar = new CookieJar()
  // Sign in once (loginForCode sets single-valued parameters); the session then answers a request naming two resources.
  await loginForCode(srv, { scope: 'openid', jar })
  const { verifier, challenge } = pkcePair()
  const url = new URL(authorizeUrl(srv, {
    response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid orders:read billing:read reports:read offline_access',
    state: 's', code_challenge: challenge, code_challenge_method: 'S256',
  }))
  url.searchParams.append('resource', ORDERS)
  url.searchParams.append('resource', BILLING)
  const sso = await get(url.href, jar)
  t.equal(sso.status, 302, 'the session answers')
  const code = sso.location!.searchParams.get('code')!
  t.ok(code)

  const wrong = await redeemWith(code, verifier, { resource: REPORTS })
  t.equal(wrong.status, 400)
  t.equal(wrong.json.error, 'invalid_target', 'reports:read was granted, but the authorization named other resources')
  const good = await redeemWith(code, verifier, { resource: BILLING })
  t.equal(good.status, 200, 'the code survived the refused request: ' + said(good))
  t.equal(good.json.scope, 'openid billing:read offline_access', 'the scopes of other resources are dropped')
  t.equal(decodeJwt(good.json.access_token as string).aud, BILLING)
  const back = await token(srv, 'web', { grant_type: 'refresh_token', refresh_token: good.json.refresh_token as string, resource: ORDERS })
  t.equal(back.status, 200, said(back))
  t.equal(back.json.scope, 'openid orders:read offline_access')
  const reports = await token(srv, 'web', { grant_type: 'refresh_token', refresh_token: back.json.refresh_token as string, resource: REPORTS })
  t.equal(reports.json.error, 'invalid_target', 'the refresh token remembers the authorized resources, not the scopes')
})

function redeemWith(code: string, verifier: string, extra: Record<string, string>) {
  return postForm(`${srv.url}/connect/token`, { grant_type: 'authorization_code', code, redirect_uri: WEB_REDIRECT, code_verifier: verifier, ...extra },
    { authorization: basic('web', 'web-secret') })
}

t.test('an authorization that named one resource and no API scope: that resource is the audience', async (t) => {
  const login = await loginForCode(srv, { scope: 'openid profile', extra: { resource: REPORTS } })
  const res = await redeem(srv, login.code, login.verifier)
  t.equal(res.status, 200, said(res))
  t.equal(res.json.scope, 'openid profile')
  t.equal(decodeJwt(res.json.access_token as string).aud, REPORTS)
  t.equal(res.json.expires_in, 300)
})

t.test("each resource's accessTokenTtl, else the default", async (t) => {
  for (const [scope, ttl] of [['orders:read', 120], ['billing:read', 900], ['reports:read', 300], ['api', 300]] as const) {
    const res = await token(srv, 'svc', { grant_type: 'client_credentials', scope })
    t.equal(res.status, 200, said(res))
    t.equal(res.json.expires_in, ttl, scope)
    const claims = await verifyAccess(srv, res.json.access_token as string)
    t.equal(claims.exp! - claims.iat!, ttl, `${scope}: exp - iat`)
  }
})

t.test('introspection shows the resource as aud', async (t) => {
  const res = await token(srv, 'svc', { grant_type: 'client_credentials', scope: 'orders:read' })
  const introspected = await postForm(`${srv.url}/connect/introspect`, { token: res.json.access_token as string }, { authorization: basic('svc', 'svc-secret') })
  t.equal(introspected.status, 200)
  t.equal(introspected.json.active, true)
  t.equal(introspected.json.aud, ORDERS)
  t.equal(introspected.json.scope, 'orders:read')
  t.equal(introspected.json.exp, (introspected.json.iat as number) + 120)

  // The API introspects tokens meant for it by authenticating with its resource id as client_id (RFC 7662 §4).
  const asApi = { authorization: basic(ORDERS, 'orders-api-secret') }
  const user = await password(srv, 'openid orders:read billing:read', { resource: ORDERS })
  const byApi = await postForm(`${srv.url}/connect/introspect`, { token: user.json.access_token as string }, asApi)
  t.match(byApi.json, { active: true, aud: ORDERS, sub: 'u-alice', client_id: 'ro', scope: 'openid orders:read' })
  const billing = await password(srv, 'openid orders:read billing:read', { resource: BILLING })
  t.same((await postForm(`${srv.url}/connect/introspect`, { token: billing.json.access_token as string }, asApi)).json, { active: false }, "another API's token is not the orders API's business")

  const pw = await password(srv, 'openid offline_access billing:read', { resource: BILLING })
  const rt = await postForm(`${srv.url}/connect/introspect`, { token: pw.json.refresh_token as string, token_type_hint: 'refresh_token' }, { authorization: basic('ro', 'ro-secret') })
  t.equal(rt.json.active, true)
  t.equal(rt.json.scope, 'openid offline_access billing:read')
})

t.test('config: resources are checked at load, errors name the key', async (t) => {
  const good = resourcesConfig()
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ resources: [{ id: 'orders', scopes: [] }] }, /^resources\[0\]\.id: expected an absolute URI/],
    [{ resources: [{ id: `${ORDERS}#x` }] }, /^resources\[0\]\.id: must not have a fragment/],
    [{ resources: [{ id: ORDERS }, { id: ORDERS }] }, /^resources\[1\]\.id: duplicate resource/],
    [{ resources: [{ id: ORDERS, scopes: ['a'] }, { id: BILLING, scopes: ['a'] }] }, /^resources\[1\]\.scopes\[0\]: "a" already belongs to resource/],
    [{ resources: [{ id: ORDERS, scopes: ['openid'] }] }, /^resources\[0\]\.scopes\[0\]: "openid" is an OpenID Connect scope/],
    [{ resources: [{ id: ORDERS, claims: ['sub'] }] }, /^resources\[0\]\.claims\[0\]: "sub" is a registered claim/],
    [{ resources: [{ id: ORDERS, accessTokenTtl: 0 }] }, /^resources\[0\]\.accessTokenTtl: must be between 1 and 86400/],
    [{ resources: [{ id: ORDERS, audience: 'x' }] }, /^resources\[0\]\.audience: unknown key/],
    [{ resources: {} }, /^resources: expected array/],
    [{ resources: [{ id: ORDERS }], clients: [{ client_id: 'c', client_secret: 's', grant_types: [], resources: [BILLING] }] }, /^clients\[0\]\.resources\[0\]: unknown resource/],
    [{ resources: [{ id: ORDERS, scopes: ['o'] }, { id: BILLING }], clients: [{ client_id: 'c', client_secret: 's', grant_types: [], scope: 'o', resources: [BILLING] }] },
      /^clients\[0\]\.scope: "o" belongs to resource "https:\/\/api\.example\.com\/orders", which clients\[0\]\.resources does not allow/],
  ]
  for (const [patch, message] of cases) t.throws(() => validateConfig({ ...good, ...patch }, '/'), { message }, message.source)
  t.doesNotThrow(() => validateConfig(good, '/'))
})
