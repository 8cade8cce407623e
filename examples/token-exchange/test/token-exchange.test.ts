/**
 * RFC 8693 token exchange, black-box over HTTP against the example config
 * (examples/token-exchange.json, which loads ../dist/index.js by a relative path).
 */
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SignJWT, createLocalJWKSet, decodeJwt, generateKeyPair, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose'
import type { AccessTokenClaims, Store, TokenVerifier } from '@grantd/core'
import { ROOT, basic, postForm, startServer, type RunningServer } from '../../../test/helpers/server.js'

const EXAMPLES = join(ROOT, 'examples')
const CONFIG = JSON.parse(readFileSync(join(EXAMPLES, 'token-exchange.json'), 'utf8')) as Record<string, unknown>
const ISSUER = CONFIG.issuer as string
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token'
const SECRETS: Record<string, string> = { app: 'app-secret', gateway: 'gateway-secret', svc: 'svc-secret' }

let srv: RunningServer
t.before(async () => {
  srv = await startServer(CONFIG, { baseDir: EXAMPLES })
})
t.teardown(() => srv.close())

async function token(clientId: string, form: Record<string, string>) {
  return postForm(`${srv.url}/connect/token`, form, { authorization: basic(clientId, SECRETS[clientId]!) })
}

async function clientToken(clientId: string, scope: string): Promise<string> {
  const res = await token(clientId, { grant_type: 'client_credentials', scope })
  if (res.status !== 200) throw new Error(`client_credentials failed: ${res.text}`)
  return res.json.access_token as string
}

async function aliceToken(scope: string): Promise<string> {
  const res = await token('app', { grant_type: 'password', username: 'alice', password: 'wonderland', scope })
  if (res.status !== 200) throw new Error(`password grant failed: ${res.text}`)
  return res.json.access_token as string
}

function exchange(clientId: string, subjectToken: string, extra: Record<string, string> = {}) {
  return token(clientId, { grant_type: TOKEN_EXCHANGE, subject_token: subjectToken, subject_token_type: ACCESS_TOKEN, ...extra })
}

/** The status check's message: the body only when it failed (bodies hold tokens). */
function said(res: { status: number; text: string }): string {
  return res.status === 200 ? 'status 200' : res.text
}

async function verified(accessToken: string): Promise<JWTPayload> {
  const jwks = await (await fetch(`${srv.url}/.well-known/jwks.json`)).json() as JSONWebKeySet
  const { payload } = await jwtVerify(accessToken, createLocalJWKSet(jwks), { issuer: ISSUER, typ: 'at+jwt' })
  return payload
}

t.test('discovery lists the grant loaded from a relative path', async (t) => {
  const doc = await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json() as { grant_types_supported: string[] }
  t.ok(doc.grant_types_supported.includes(TOKEN_EXCHANGE))
})

t.test('a client exchanges its own token: same sub, act names the caller, issued_token_type', async (t) => {
  const subjectToken = await clientToken('gateway', 'api orders:read')
  const res = await exchange('gateway', subjectToken)
  t.equal(res.status, 200, said(res))
  t.equal(res.headers.get('cache-control'), 'no-store')
  t.equal(res.json.issued_token_type, ACCESS_TOKEN)
  t.equal(res.json.token_type, 'Bearer')
  t.equal(res.json.scope, 'api orders:read')
  t.notOk('refresh_token' in res.json)
  t.notOk('id_token' in res.json)
  const before = decodeJwt(subjectToken)
  const after = await verified(res.json.access_token as string)
  t.equal(after.sub, before.sub)
  t.same(after.act, { sub: 'gateway' })
  t.equal(after.client_id, 'gateway')
  t.equal(after.aud, 'gateway')
  t.not(after.jti, before.jti)
  t.ok(after.exp! <= before.exp!, 'never outlives the subject token')
  t.equal(res.json.expires_in, after.exp! - after.iat!)
})

t.test('a user token exchanged twice keeps the user and nests the actors (RFC 8693 §4.1)', async (t) => {
  const userToken = await aliceToken('openid api orders:read')
  t.equal(decodeJwt(userToken).sub, 'u-alice')

  const first = await exchange('app', userToken, { audience: 'gateway', scope: 'api orders:read' })
  t.equal(first.status, 200, said(first))
  t.notOk('id_token' in first.json, 'an exchange never issues an ID token')
  const forGateway = await verified(first.json.access_token as string)
  t.equal(forGateway.sub, 'u-alice')
  t.equal(forGateway.aud, 'gateway')
  t.same(forGateway.act, { sub: 'app' })

  // The gateway is the token's audience, so it may exchange it (subjectTokens: "caller").
  const second = await exchange('gateway', first.json.access_token as string, { audience: 'orders', scope: 'orders:read' })
  t.equal(second.status, 200, said(second))
  const forOrders = await verified(second.json.access_token as string)
  t.equal(forOrders.sub, 'u-alice')
  t.equal(forOrders.aud, 'orders')
  t.equal(forOrders.client_id, 'gateway')
  t.equal(forOrders.scope, 'orders:read')
  t.same(forOrders.act, { sub: 'gateway', act: { sub: 'app' } })
})

t.test('scope: narrower is granted, wider or offline_access is invalid_scope', async (t) => {
  const subjectToken = await clientToken('gateway', 'api orders:read')
  const narrower = await exchange('gateway', subjectToken, { scope: 'orders:read' })
  t.equal(narrower.status, 200, said(narrower))
  t.equal(narrower.json.scope, 'orders:read')
  t.equal((await verified(narrower.json.access_token as string)).scope, 'orders:read')

  const wider = await exchange('gateway', subjectToken, { scope: 'api orders:read orders:write' })
  t.equal(wider.status, 400)
  t.equal(wider.json.error, 'invalid_scope')

  const userToken = await aliceToken('openid api')
  const offline = await exchange('app', userToken, { scope: 'api offline_access' })
  t.equal(offline.status, 400)
  t.equal(offline.json.error, 'invalid_scope')
})

t.test('without scope the grant keeps what the caller may hold of the subject token\'s scope', async (t) => {
  const userToken = await aliceToken('openid profile api orders:read')
  const first = await exchange('app', userToken, { audience: 'gateway' })
  t.equal(first.status, 200, said(first))
  t.equal(first.json.scope, 'openid profile api orders:read')
  // gateway is not registered for openid/profile: they are dropped, not refused.
  const second = await exchange('gateway', first.json.access_token as string)
  t.equal(second.status, 200, said(second))
  t.equal(second.json.scope, 'api orders:read')
})

t.test('bad, foreign and misused subject tokens are invalid_grant', async (t) => {
  const garbage = await exchange('gateway', 'not-a-token')
  t.equal(garbage.status, 400)
  t.equal(garbage.json.error, 'invalid_grant')

  // Same issuer and typ, signed by a key this server does not hold.
  const { privateKey } = await generateKeyPair('ES256')
  const now = Math.floor(Date.now() / 1000)
  const foreign = await new SignJWT({ client_id: 'gateway', scope: 'api', jti: 'x-1' })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'foreign' })
    .setIssuer(ISSUER).setSubject('u-alice').setAudience('gateway').setIssuedAt(now).setExpirationTime(now + 60)
    .sign(privateKey)
  const res = await exchange('gateway', foreign)
  t.equal(res.status, 400)
  t.equal(res.json.error, 'invalid_grant')

  // A token issued to app (aud app) is not the gateway's to exchange.
  const appToken = await aliceToken('api')
  const stolen = await exchange('gateway', appToken)
  t.equal(stolen.status, 400)
  t.equal(stolen.json.error, 'invalid_grant')
})

t.test('a revoked subject token is invalid_grant', async (t) => {
  const subjectToken = await clientToken('gateway', 'api')
  t.equal((await exchange('gateway', subjectToken)).status, 200, 'usable before revocation')
  const tokens = srv.server.registry.resolve('tokens') as TokenVerifier
  const claims = await tokens.verifyAccessToken(subjectToken, ISSUER)
  t.ok(claims)
  await tokens.revokeAccessToken(claims as AccessTokenClaims)
  const res = await exchange('gateway', subjectToken)
  t.equal(res.status, 400)
  t.equal(res.json.error, 'invalid_grant')

  // The same through the RFC 7009 endpoint, as a client would do it.
  const userToken = await aliceToken('api')
  t.equal((await exchange('app', userToken)).status, 200, 'usable before revocation')
  const revoked = await postForm(`${srv.url}/connect/revocation`, { token: userToken, token_type_hint: 'access_token' }, { authorization: basic('app', 'app-secret') })
  t.equal(revoked.status, 200)
  const after = await exchange('app', userToken)
  t.equal(after.status, 400)
  t.equal(after.json.error, 'invalid_grant')
})

t.test('a client not registered for the grant is unauthorized_client', async (t) => {
  const subjectToken = await clientToken('svc', 'api')
  const res = await exchange('svc', subjectToken)
  t.equal(res.status, 400)
  t.equal(res.json.error, 'unauthorized_client')
})

t.test('token types, missing parameters and actor tokens are invalid_request', async (t) => {
  const subjectToken = await clientToken('gateway', 'api')
  const cases: Array<[string, Record<string, string>]> = [
    ['refresh token as subject', { grant_type: TOKEN_EXCHANGE, subject_token: subjectToken, subject_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }],
    ['missing subject_token_type', { grant_type: TOKEN_EXCHANGE, subject_token: subjectToken }],
    ['missing subject_token', { grant_type: TOKEN_EXCHANGE, subject_token_type: ACCESS_TOKEN }],
    ['id_token requested', { grant_type: TOKEN_EXCHANGE, subject_token: subjectToken, subject_token_type: ACCESS_TOKEN, requested_token_type: 'urn:ietf:params:oauth:token-type:id_token' }],
    ['actor_token', { grant_type: TOKEN_EXCHANGE, subject_token: subjectToken, subject_token_type: ACCESS_TOKEN, actor_token: subjectToken, actor_token_type: ACCESS_TOKEN }],
  ]
  for (const [name, form] of cases) {
    const res = await token('gateway', form)
    t.equal(res.status, 400, name)
    t.equal(res.json.error, 'invalid_request', name)
    t.type(res.json.error_description, 'string', name)
  }
  const twice = await postForm(`${srv.url}/connect/token`,
    `grant_type=${encodeURIComponent(TOKEN_EXCHANGE)}&subject_token=${subjectToken}&subject_token_type=${encodeURIComponent(ACCESS_TOKEN)}&audience=orders&audience=gateway`,
    { authorization: basic('gateway', 'gateway-secret') })
  t.equal(twice.json.error, 'invalid_request', 'one audience per request')
})

t.test('audience and resource must be configured targets (invalid_target)', async (t) => {
  const subjectToken = await clientToken('gateway', 'api')
  const both = await exchange('gateway', subjectToken, { audience: 'orders', resource: 'https://api.example.com/orders' })
  t.equal(both.status, 200, said(both))
  t.same((await verified(both.json.access_token as string)).aud, ['orders', 'https://api.example.com/orders'])

  const refused: Array<Record<string, string>> = [{ audience: 'billing' }, { resource: 'https://evil.example/orders' }, { resource: 'https://api.example.com/orders#x' }, { resource: 'orders' }]
  for (const extra of refused) {
    const res = await exchange('gateway', subjectToken, extra)
    t.equal(res.status, 400, JSON.stringify(extra))
    t.equal(res.json.error, 'invalid_target', JSON.stringify(extra))
  }
})

t.test('an exchanged token stays in its grant family: revoking the family revokes it', async (t) => {
  // A one-off grant that, like a user grant with a refresh token, belongs to a family.
  const family = `fam-${Date.now()}`
  const dir = mkdtempSync(join(tmpdir(), 'grantd-family-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const familyPlugin = join(dir, 'family-grant.mjs')
  writeFileSync(familyPlugin, `export default { name: 'family-grant', register(host) {
    host.grant({ type: 'urn:test:family', async handle(req) {
      return { subject: 'u-alice', scope: req.requestedScope ?? [], grantId: '${family}', refreshToken: false, idToken: false } } })
  } }\n`)
  const config = structuredClone(CONFIG) as { plugins: unknown[]; clients: Array<{ client_id: string; grant_types: string[] }> }
  config.plugins.push(familyPlugin)
  config.clients.find((c) => c.client_id === 'gateway')!.grant_types.push('urn:test:family')
  const local = await startServer(config, { baseDir: EXAMPLES })
  t.teardown(local.close)
  const post = (form: Record<string, string>) => postForm(`${local.url}/connect/token`, form, { authorization: basic('gateway', 'gateway-secret') })

  const subject = await post({ grant_type: 'urn:test:family', scope: 'api' })
  t.equal(subject.status, 200, said(subject))
  const exchanged = await post({ grant_type: TOKEN_EXCHANGE, subject_token: subject.json.access_token as string, subject_token_type: ACCESS_TOKEN })
  t.equal(exchanged.status, 200, said(exchanged))
  t.equal(decodeJwt(exchanged.json.access_token as string).gid, family)

  await (local.server.registry.resolve('store') as Store).revokeFamily(family, 3600)
  const again = await post({ grant_type: TOKEN_EXCHANGE, subject_token: exchanged.json.access_token as string, subject_token_type: ACCESS_TOKEN })
  t.equal(again.status, 400)
  t.equal(again.json.error, 'invalid_grant')
})

t.test('bad options stop the server with a message naming the key', async (t) => {
  const config = structuredClone(CONFIG) as { plugins: Array<string | { use: string; options: Record<string, unknown> }> }
  config.plugins[2] = { use: './token-exchange/dist/index.js', options: { audiences: 'orders' } }
  await t.rejects(startServer(config, { baseDir: EXAMPLES }), { message: /plugins\[2\]\.options: audiences: expected array, got string/ })
  config.plugins[2] = { use: './token-exchange/dist/index.js', options: { audience: ['orders'] } }
  await t.rejects(startServer(config, { baseDir: EXAMPLES }), { message: /plugins\[2\]\.options: audience: unknown key/ })
})

t.test('subjectTokens "any" lets a client exchange a token issued to another client', async (t) => {
  const config = structuredClone(CONFIG) as { plugins: Array<string | { use: string; options: Record<string, unknown> }> }
  config.plugins[2] = { use: './token-exchange/dist/index.js', options: { subjectTokens: 'any' } }
  const local = await startServer(config, { baseDir: EXAMPLES })
  t.teardown(local.close)
  const post = (clientId: string, form: Record<string, string>) => postForm(`${local.url}/connect/token`, form, { authorization: basic(clientId, SECRETS[clientId]!) })
  const user = await post('app', { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'api' })
  t.equal(user.status, 200, said(user))
  const res = await post('gateway', { grant_type: TOKEN_EXCHANGE, subject_token: user.json.access_token as string, subject_token_type: ACCESS_TOKEN })
  t.equal(res.status, 200, said(res))
  const claims = decodeJwt(res.json.access_token as string)
  t.equal(claims.sub, 'u-alice')
  t.same(claims.act, { sub: 'gateway' })
  // No audiences configured: naming one is refused.
  const target = await post('gateway', { grant_type: TOKEN_EXCHANGE, subject_token: user.json.access_token as string, subject_token_type: ACCESS_TOKEN, audience: 'orders' })
  t.equal(target.json.error, 'invalid_target')
})

t.test('an exchanged token never outlives its subject token, even for a client with a longer TTL', async (t) => {
  const config = structuredClone(CONFIG) as { clients: Array<{ client_id: string; access_token_ttl?: number }> }
  config.clients.find((c) => c.client_id === 'app')!.access_token_ttl = 60
  const local = await startServer(config, { baseDir: EXAMPLES })
  t.teardown(local.close)
  const post = (clientId: string, form: Record<string, string>) => postForm(`${local.url}/connect/token`, form, { authorization: basic(clientId, SECRETS[clientId]!) })
  const user = await post('app', { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'api' })
  const forGateway = await post('app', { grant_type: TOKEN_EXCHANGE, subject_token: user.json.access_token as string, subject_token_type: ACCESS_TOKEN, audience: 'gateway' })
  t.equal(forGateway.status, 200, said(forGateway))
  const subjectExp = decodeJwt(forGateway.json.access_token as string).exp!
  // gateway's tokens live 300 s; this one may live only as long as the 60 s subject token.
  const res = await post('gateway', { grant_type: TOKEN_EXCHANGE, subject_token: forGateway.json.access_token as string, subject_token_type: ACCESS_TOKEN })
  t.equal(res.status, 200, said(res))
  const exchanged = decodeJwt(res.json.access_token as string)
  t.ok(exchanged.exp! <= subjectExp, `exp ${exchanged.exp} <= ${subjectExp}`)
  t.ok((res.json.expires_in as number) <= 60, 'expires_in reflects the bound')
})
