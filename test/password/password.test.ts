import t from 'tap'
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose'
import { hashSecret } from '@grantd/core'
import { basic, postForm, startServer, type RunningServer } from '../helpers/server.js'

/**
 * RFC 6749 §4.3 password grant with IdentityServer3-style acr_values, over real HTTP.
 * The requests are shaped the way IdentityServer3 clients send them (Basic or body
 * client credentials, `acr_values=tenant:NAME`, unknown values passed through).
 */

const ISSUER = 'http://id.test'

async function config(): Promise<Record<string, unknown>> {
  return {
    issuer: ISSUER,
    users: {
      use: '@grantd/users-static',
      options: {
        users: [
          { sub: 'u-alice', username: 'alice', password: 'wonderland', tenant: 'acme', claims: { name: 'Alice', email: 'alice@example.com', email_verified: true } },
          { sub: 'u-bob', username: 'bob', password: await hashSecret('builder', 10) },
          { sub: 'u-carol', username: 'carol', password: 'singer', active: false },
        ],
      },
    },
    plugins: ['@grantd/grant-password', '@grantd/acr-tenant'],
    clients: [
      { client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password'], scope: 'openid profile email api offline_access' },
      { client_id: 'svc', client_secret: 'svc-secret', grant_types: [], scope: 'api' },
      { client_id: 'mobile', token_endpoint_auth_method: 'none', grant_types: ['password'], scope: 'api' },
    ],
  }
}

const RO = { authorization: basic('ro', 'ro-secret') }

function password(srv: RunningServer, form: Record<string, string>, headers: Record<string, string> = RO) {
  return postForm(`${srv.url}/connect/token`, { grant_type: 'password', ...form }, headers)
}

t.test('password grant', async (t) => {
  const srv = await startServer(await config())
  t.teardown(srv.close)
  const jwks = createLocalJWKSet((await (await fetch(`${srv.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet)

  t.test('discovery lists the grant and the tenant acr prefix', async (t) => {
    const meta = (await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>
    t.ok((meta.grant_types_supported as string[]).includes('password'))
    t.ok((meta.acr_values_supported as string[]).includes('tenant:*'))
  })

  t.test('good credentials: access token, ID token with the released claims', async (t) => {
    const res = await password(srv, { username: 'alice', password: 'wonderland', scope: 'openid profile email api' })
    t.equal(res.status, 200)
    t.equal(res.headers.get('cache-control'), 'no-store')
    t.equal(res.json.token_type, 'Bearer')
    t.equal(res.json.scope, 'openid profile email api')
    // No refresh_token grant loaded or registered for the client: no refresh token.
    t.notOk('refresh_token' in res.json)
    const { payload: at } = await jwtVerify(res.json.access_token as string, jwks, { issuer: ISSUER, typ: 'at+jwt' })
    t.equal(at.sub, 'u-alice')
    t.equal(at.client_id, 'ro')
    t.equal(at.scope, 'openid profile email api')
    const { payload: id } = await jwtVerify(res.json.id_token as string, jwks, { issuer: ISSUER, audience: 'ro' })
    t.equal(id.sub, 'u-alice')
    t.equal(id.name, 'Alice')
    t.equal(id.email, 'alice@example.com')
    t.equal(id.preferred_username, 'alice')
    t.same(id.amr, ['pwd'])
    t.type(id.auth_time, 'number')
    t.type(id.at_hash, 'string')
  })

  t.test('usernames are case-insensitive; claims follow the scope', async (t) => {
    const res = await password(srv, { username: 'ALICE', password: 'wonderland', scope: 'openid' })
    t.equal(res.status, 200)
    const id = decodeJwt(res.json.id_token as string)
    t.equal(id.sub, 'u-alice')
    t.notOk('email' in id)
    t.notOk('name' in id)
  })

  t.test('no openid scope: no ID token', async (t) => {
    const res = await password(srv, { username: 'alice', password: 'wonderland', scope: 'api' })
    t.equal(res.status, 200)
    t.notOk('id_token' in res.json)
  })

  t.test('client credentials in the body (client_secret_post style) are accepted too', async (t) => {
    const srv2 = await startServer({ ...(await config()), clients: [{ client_id: 'ro', client_secret: 'ro-secret', token_endpoint_auth_method: 'client_secret_post', grant_types: ['password'], scope: 'api' }] })
    t.teardown(srv2.close)
    const res = await password(srv2, { client_id: 'ro', client_secret: 'ro-secret', username: 'alice', password: 'wonderland', scope: 'api', acr_values: 'tenant:acme' }, {})
    t.equal(res.status, 200)
  })

  t.test('wrong password, unknown user, inactive user: one identical invalid_grant', async (t) => {
    const wrong = await password(srv, { username: 'alice', password: 'nope', scope: 'api' })
    const unknown = await password(srv, { username: 'mallory', password: 'wonderland', scope: 'api' })
    const inactive = await password(srv, { username: 'carol', password: 'singer', scope: 'api' })
    t.equal(wrong.status, 400)
    t.equal(wrong.json.error, 'invalid_grant')
    t.equal(wrong.headers.get('cache-control'), 'no-store')
    t.equal(unknown.text, wrong.text, 'unknown user answers exactly like a wrong password')
    t.equal(inactive.text, wrong.text, 'a disabled user answers exactly like a wrong password')
    t.notMatch(wrong.text, /alice|user not found|unknown user/i)
  })

  t.test('an scrypt-hashed password', async (t) => {
    t.equal((await password(srv, { username: 'bob', password: 'builder', scope: 'api' })).status, 200)
    const bad = await password(srv, { username: 'bob', password: 'Builder', scope: 'api' })
    t.equal(bad.json.error, 'invalid_grant')
  })

  t.test('missing parameters', async (t) => {
    t.equal((await password(srv, { password: 'wonderland', scope: 'api' })).json.error, 'invalid_request')
    t.equal((await password(srv, { username: 'alice', scope: 'api' })).json.error, 'invalid_request')
    const noScope = await password(srv, { username: 'alice', password: 'wonderland' })
    t.equal(noScope.status, 400)
    t.equal(noScope.json.error, 'invalid_scope')
    t.equal((await password(srv, { username: 'alice', password: 'wonderland', scope: '' })).json.error, 'invalid_scope')
  })

  t.test('repeated or oversize parameters', async (t) => {
    const twice = await postForm(`${srv.url}/connect/token`, 'grant_type=password&username=alice&username=bob&password=wonderland&scope=api', RO)
    t.equal(twice.json.error, 'invalid_request')
    const acrTwice = await postForm(`${srv.url}/connect/token`, 'grant_type=password&username=alice&password=wonderland&scope=api&acr_values=a&acr_values=b', RO)
    t.equal(acrTwice.json.error, 'invalid_request')
    const long = await password(srv, { username: 'a'.repeat(300), password: 'x', scope: 'api' })
    t.equal(long.json.error, 'invalid_request')
  })

  t.test('scope outside the client registration', async (t) => {
    const res = await password(srv, { username: 'alice', password: 'wonderland', scope: 'api admin' })
    t.equal(res.json.error, 'invalid_scope')
  })

  t.test('client checks come first', async (t) => {
    const badSecret = await password(srv, { username: 'alice', password: 'wonderland', scope: 'api' }, { authorization: basic('ro', 'wrong') })
    t.equal(badSecret.status, 401)
    t.equal(badSecret.json.error, 'invalid_client')
    const notRegistered = await password(srv, { username: 'alice', password: 'wonderland', scope: 'api' }, { authorization: basic('svc', 'svc-secret') })
    t.equal(notRegistered.json.error, 'unauthorized_client')
  })

  t.test('a public client registered for the grant (RFC 6749 §4.3.2)', async (t) => {
    const res = await password(srv, { client_id: 'mobile', username: 'alice', password: 'wonderland', scope: 'api' }, {})
    t.equal(res.status, 200)
  })
})

t.test('the acr context reaches the user service; idp: needs the client and the user service', async (t) => {
  const srv = await startServer({
    issuer: ISSUER,
    users: './test/password/context-users.ts',
    plugins: [
      '@grantd/grant-password',
      '@grantd/acr-tenant',
      '@grantd/grant-authorization-code',
      { use: '@grantd/acr-idp', options: { providers: {} } },
    ],
    clients: [
      { client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password'], scope: 'openid api', identity_providers: ['corp-ldap', 'partner'] },
      { client_id: 'no-ldap', client_secret: 'x-secret', grant_types: ['password'], scope: 'api', identity_providers: ['corp-ldap'] },
      { client_id: 'plain', client_secret: 'p-secret', grant_types: ['password'], scope: 'api' },
    ],
  })
  t.teardown(srv.close)
  const users = srv.server.registry.users as unknown as { seen: Array<Record<string, unknown>>; activeChecks: string[]; active: boolean }

  const res = await password(srv, { username: 'erin', password: 'pw', scope: 'api', acr_values: 'tenant:acme idp:corp-ldap loa:2 tenant:ignored' })
  t.equal(res.status, 200)
  t.same(users.seen.at(-1), { raw: ['tenant:acme', 'idp:corp-ldap', 'loa:2', 'tenant:ignored'], tenant: 'acme', idp: 'corp-ldap' })
  t.equal(decodeJwt(res.json.access_token as string).sub, 'corp-ldap|erin')
  t.equal(users.activeChecks.at(-1), 'corp-ldap|erin', 'isActive is consulted')

  const before = users.seen.length
  const notAllowed = await password(srv, { username: 'erin', password: 'pw', scope: 'api', acr_values: 'idp:corp-ldap' }, { authorization: basic('plain', 'p-secret') })
  t.equal(notAllowed.status, 400)
  t.equal(notAllowed.json.error, 'invalid_request', 'client without the provider in identity_providers')
  const refusedByUsers = await password(srv, { username: 'erin', password: 'pw', scope: 'api', acr_values: 'idp:corp-ldap' }, { authorization: basic('no-ldap', 'x-secret') })
  t.equal(refusedByUsers.json.error, 'invalid_request', 'the user service does not accept this provider')
  const otherIdp = await password(srv, { username: 'erin', password: 'pw', scope: 'api', acr_values: 'idp:partner' })
  t.equal(otherIdp.json.error, 'invalid_request', 'the user service does not accept partner')
  t.equal(users.seen.length, before, 'refused before any password was checked')

  users.active = false
  const inactive = await password(srv, { username: 'erin', password: 'pw', scope: 'api' })
  t.equal(inactive.json.error, 'invalid_grant', 'isActive false → no tokens')
})

t.test('with users-static, idp: on the password grant is refused', async (t) => {
  const base = await config()
  const srv = await startServer({
    ...base,
    plugins: ['@grantd/grant-password', '@grantd/acr-tenant', '@grantd/grant-authorization-code', { use: '@grantd/acr-idp', options: { providers: {} } }],
    clients: [{ client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password'], scope: 'api', identity_providers: ['corp-ldap'] }],
  })
  t.teardown(srv.close)
  const res = await password(srv, { username: 'alice', password: 'wonderland', scope: 'api', acr_values: 'idp:corp-ldap' })
  t.equal(res.json.error, 'invalid_request')
  t.match(res.json.error_description, /not supported/)
  t.equal((await password(srv, { username: 'alice', password: 'wonderland', scope: 'api' })).status, 200)
})
