/**
 * Claims appear and disappear with scopes (SPEC §11, OIDC Core §5.4), judged by a
 * certified relying party (openid-client v6): the ID token's claims and userinfo after a
 * real authorization code flow. Custom scopes from config release custom user claims.
 */
import t, { type Test } from 'tap'
import * as oidc from 'openid-client'
import { decodeJwt } from 'jose'
import { validateConfig } from '@grantd/core'
import { CookieJar, signInAt, startFlowServer, WEB_REDIRECT } from '../authorization-code/flow.js'
import type { RunningServer } from '../helpers/server.js'
import { password, resourcesConfig, said } from './fixtures.js'

const SCOPES = {
  roles: { description: 'Your roles in the organisation', claims: ['roles'] },
  org: { description: 'Your organisation', claims: ['tenant', 'department'] },
  // A built-in scope's description may be replaced; its claims stay unless listed.
  email: { description: 'Your work email address' },
}

function config(tokens: Record<string, unknown> = {}): Record<string, unknown> {
  const base = resourcesConfig({ scopes: SCOPES })
  const clients = (base.clients as Array<Record<string, unknown>>).map((c) =>
    c.client_id === 'web' ? { ...c, scope: `${c.scope as string} roles org address phone` } : c.client_id === 'ro' ? { ...c, scope: `${c.scope as string} roles org` } : c)
  return { ...base, clients, tokens: { ...(base.tokens as Record<string, unknown>), ...tokens } }
}

let srv: RunningServer
let rp: oidc.Configuration

t.before(async () => {
  srv = await startFlowServer(config())
  rp = await oidc.discovery(new URL(srv.server.config.issuer!), 'web', undefined, oidc.ClientSecretBasic('web-secret'), { execute: [oidc.allowInsecureRequests] })
})
t.teardown(() => srv.close())

/** A full code flow through openid-client: its checks (state, nonce, PKCE, ID token) are the judge. */
async function signIn(scope: string, extra: Record<string, string> = {}): Promise<{ idToken: Record<string, unknown>; userinfo: Record<string, unknown>; accessToken: string }> {
  const verifier = oidc.randomPKCECodeVerifier()
  const state = oidc.randomState()
  const nonce = oidc.randomNonce()
  const url = oidc.buildAuthorizationUrl(rp, {
    redirect_uri: WEB_REDIRECT, scope, state, nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...extra,
  })
  const landing = await signInAt(url, 'alice', 'wonderland', new CookieJar())
  const tokens = await oidc.authorizationCodeGrant(rp, landing, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce })
  const idToken = tokens.claims() as Record<string, unknown>
  const userinfo = await oidc.fetchUserInfo(rp, tokens.access_token, idToken.sub as string) as Record<string, unknown>
  return { idToken, userinfo, accessToken: tokens.access_token }
}

const PROFILE = ['name', 'preferred_username']
const EMAIL = ['email', 'email_verified']
const CUSTOM = ['roles', 'tenant', 'department']

function has(t: Test, claims: Record<string, unknown>, present: string[], absent: string[], where: string): void {
  for (const c of present) t.ok(c in claims, `${where}: ${c} present`)
  for (const c of absent) t.notOk(c in claims, `${where}: ${c} absent`)
}

t.test('openid alone: the user is identified, nothing more', async (t) => {
  const { idToken, userinfo } = await signIn('openid')
  t.equal(idToken.sub, 'u-alice')
  has(t, idToken, [], [...PROFILE, ...EMAIL, ...CUSTOM], 'id_token')
  t.same(userinfo, { sub: 'u-alice' })
})

t.test('profile and email release their OIDC Core §5.4 claims, not custom ones', async (t) => {
  const { idToken, userinfo } = await signIn('openid profile email')
  for (const [where, claims] of [['id_token', idToken], ['userinfo', userinfo]] as const) {
    has(t, claims, [...PROFILE, ...EMAIL], CUSTOM, where)
    t.equal(claims.name, 'Alice')
    t.equal(claims.preferred_username, 'alice')
    t.equal(claims.email, 'alice@example.com')
  }
})

t.test('custom scopes release exactly the custom claims they list', async (t) => {
  const roles = await signIn('openid roles')
  for (const [where, claims] of [['id_token', roles.idToken], ['userinfo', roles.userinfo]] as const) {
    has(t, claims, ['roles'], [...PROFILE, ...EMAIL, 'tenant', 'department'], where)
    t.same(claims.roles, ['admin'], where)
  }
  const org = await signIn('openid org email')
  for (const [where, claims] of [['id_token', org.idToken], ['userinfo', org.userinfo]] as const) {
    has(t, claims, ['tenant', 'department', ...EMAIL], ['roles', ...PROFILE], where)
    t.equal(claims.tenant, 'acme', where)
    t.equal(claims.department, 'research', where)
  }
  // address and phone are granted but alice has no such claims: nothing is invented.
  const empty = await signIn('openid address phone')
  t.same(empty.userinfo, { sub: 'u-alice' })
  has(t, empty.idToken, [], ['address', 'phone_number', ...CUSTOM], 'id_token')
})

t.test('the password grant releases by scope too, and a narrowed refresh drops what its scope no longer lists', async (t) => {
  const res = await password(srv, 'openid roles offline_access')
  t.equal(res.status, 200, said(res))
  const id = decodeJwt(res.json.id_token as string)
  t.same(id.roles, ['admin'])
  t.notOk('name' in id)
  const refreshed = await postRefresh(res.json.refresh_token as string, 'openid')
  t.equal(refreshed.status, 200, said(refreshed))
  t.notOk('roles' in decodeJwt(refreshed.json.id_token as string), 'roles is gone with its scope')
})

async function postRefresh(refreshToken: string, scope: string) {
  const { postForm, basic } = await import('../helpers/server.js')
  return postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: refreshToken, scope }, { authorization: basic('ro', 'ro-secret') })
}

t.test('acr_values tenant: in the access token and the ID token (tokens.tenantClaim names it, false turns it off)', async (t) => {
  const withTenant = await signIn('openid', { acr_values: 'tenant:acme' })
  t.equal(withTenant.idToken.tenant, 'acme', 'ID token')
  t.equal(decodeJwt(withTenant.accessToken).tenant, 'acme', 'access token')
  const pw = await password(srv, 'openid api', { acr_values: 'tenant:acme' })
  t.equal(decodeJwt(pw.json.access_token as string).tenant, 'acme')
  t.equal(decodeJwt(pw.json.id_token as string).tenant, 'acme')
  const none = await password(srv, 'openid api')
  t.notOk('tenant' in decodeJwt(none.json.access_token as string), 'no tenant: context, no claim')

  const renamed = await startFlowServer(config({ tenantClaim: 'org_id' }))
  t.teardown(renamed.close)
  const r = await password(renamed, 'openid api', { acr_values: 'tenant:acme' })
  t.equal(r.status, 200, said(r))
  t.equal(decodeJwt(r.json.access_token as string).org_id, 'acme')
  t.equal(decodeJwt(r.json.id_token as string).org_id, 'acme')
  t.notOk('tenant' in decodeJwt(r.json.access_token as string))

  const off = await startFlowServer(config({ tenantClaim: false }))
  t.teardown(off.close)
  const o = await password(off, 'openid api', { acr_values: 'tenant:acme' })
  t.equal(o.status, 200, said(o))
  t.notOk('tenant' in decodeJwt(o.json.access_token as string))
  t.notOk('tenant' in decodeJwt(o.json.id_token as string))
})

t.test('discovery lists the configured scopes and the claims they release', async (t) => {
  const doc = rp.serverMetadata()
  for (const s of ['openid', 'profile', 'email', 'roles', 'org', 'orders:read']) t.ok(doc.scopes_supported?.includes(s), s)
  for (const c of ['sub', 'name', 'email', 'roles', 'tenant', 'department']) t.ok(doc.claims_supported?.includes(c), c)
})

t.test('plugins see the scopes with their descriptions (HostConfig.scopes)', async (t) => {
  const scopes = srv.server.registry.resolve('config').scopes
  t.equal(scopes.get('roles')?.description, 'Your roles in the organisation')
  t.same(scopes.get('roles')?.claims, ['roles'])
  t.equal(scopes.get('email')?.description, 'Your work email address')
  t.same(scopes.get('email')?.claims, ['email', 'email_verified'], 'a built-in keeps its claims when only the description changes')
  t.same(scopes.get('profile')?.claims.includes('given_name'), true)
  t.ok(scopes.get('offline_access'))
})

t.test('config: scopes and tokens.tenantClaim are checked at load', async (t) => {
  const good = config()
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ scopes: { roles: { claims: ['sub'] } } }, /^scopes\.roles\.claims\[0\]: "sub" is a registered claim/],
    [{ scopes: { 'a b': { claims: [] } } }, /^scopes\.a b: "a b" is not a valid scope token/],
    [{ scopes: { roles: { claims: 'roles' } } }, /^scopes\.roles\.claims: expected array/],
    [{ scopes: { roles: { claims: [], hidden: true } } }, /^scopes\.roles\.hidden: unknown key/],
    [{ scopes: { roles: { description: 3 } } }, /^scopes\.roles\.description: expected string/],
    [{ scopes: [] }, /^scopes: expected object/],
    [{ tokens: { tenantClaim: 'aud' } }, /^tokens\.tenantClaim: "aud" is a registered claim/],
    [{ tokens: { tenantClaim: true } }, /^tokens\.tenantClaim: expected string/],
  ]
  for (const [patch, message] of cases) t.throws(() => validateConfig({ ...good, ...patch }, '/'), { message }, message.source)
})
