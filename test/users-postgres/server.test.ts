/**
 * users-postgres behind a real grantd, over HTTP (SPEC §12): the password grant and the
 * login form sign users in from PostgreSQL, tenants select among same-named users, a
 * disabled user's refresh tokens stop working, weak hashes are upgraded on a good login,
 * and no password reaches a table or a log line.
 */
import t from 'tap'
import { decodeJwt } from 'jose'
import pg from 'pg'
import { parseHashedSecret, hashSecret } from '@grantd/core'
import type { PostgresUsers } from '@grantd/users-postgres'
import { basic, postForm, type RunningServer } from '../helpers/server.js'
import { dropSchema as dropSchemaNow, findPostgres } from '../helpers/postgres.js'
import * as client from 'openid-client'
import { loginForCode, redeem, signInAt, startFlowServer, WEB_REDIRECT } from '../authorization-code/flow.js'
import { seed, serverConfig } from './setup.js'

const pgsql = await findPostgres()
if (!pgsql) {
  t.pass('skipped: no PostgreSQL')
} else {
  t.teardown(() => pgsql.stop())
  const data = await seed(pgsql.url, 'http', [
    { username: 'alice', password: 'wonderland', tenant: 'acme', claims: { name: 'Alice', email: 'alice@example.com', email_verified: true } },
    { username: 'alice', password: 'globex-pw', tenant: 'globex', claims: { name: 'Other Alice' } },
    { username: 'bob', password: 'builder', claims: { name: 'Bob' } },
  ])
  t.teardown(() => data.drop())
  const srv: RunningServer = await startFlowServer(serverConfig(pgsql.url, data.schema))
  t.teardown(() => srv.close())
  const db = new pg.Client({ connectionString: pgsql.url })
  await db.connect()
  t.teardown(() => db.end())
  const RO = { authorization: basic('ro', 'ro-secret') }
  const password = (username: string, pw: string, extra: Record<string, string> = {}) =>
    postForm(`${srv.url}/connect/token`, { grant_type: 'password', username, password: pw, scope: 'openid profile offline_access api', ...extra }, RO)

  t.test('password grant: tenants pick among users of one name', async (t) => {
    const acme = await password('Alice', 'wonderland', { acr_values: 'tenant:acme' })
    t.equal(acme.status, 200, String(acme.json.error ?? 'signed in'))
    t.equal(decodeJwt(acme.json.access_token as string).sub, data.subs.get('acme/alice'))
    const id = decodeJwt(acme.json.id_token as string)
    t.equal(id.name, 'Alice', 'claims come from the JSONB column')
    t.equal(id.preferred_username, 'alice')
    const globex = await password('alice', 'globex-pw', { acr_values: 'tenant:globex' })
    t.equal(decodeJwt(globex.json.access_token as string).sub, data.subs.get('globex/alice'))
    const none = await password('alice', 'wonderland')
    t.equal(none.status, 400)
    t.equal(none.json.error, 'invalid_grant', 'ambiguous without a tenant')
    t.equal((await password('bob', 'builder')).status, 200, 'a unique name needs no tenant')
    t.equal((await password('bob', 'wrong')).json.error, 'invalid_grant')
    t.equal((await password('nobody', 'builder')).json.error, 'invalid_grant')
  })

  t.test('the hot path: one query per password-grant sign-in; refresh still asks the database', async (t) => {
    const users = srv.server.registry.users as PostgresUsers
    const before = users.queryCount
    const res = await password('bob', 'builder')
    t.equal(res.status, 200)
    // The core's per-account throttle asks resolveAccount first (SPEC §9), then authenticate runs its one query.
    t.equal(users.queryCount - before, 2, 'resolveAccount, then authenticate (the isActive after it is answered from memory): two queries')
    const mid = users.queryCount
    const refreshed = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: res.json.refresh_token as string }, RO)
    t.equal(refreshed.status, 200)
    t.ok(users.queryCount - mid >= 1, 'a refresh asks the database (isActive; findById for the ID token)')
  })

  t.test('attack: NUL bytes (PostgreSQL text cannot hold them) are refused, never a database error or a 500', async (t) => {
    const cases: Array<[string, Record<string, string>]> = [
      ['username', { username: 'bo\u0000b', password: 'builder' }],
      ['tenant', { username: 'alice', password: 'wonderland', acr_values: 'tenant:ac\u0000me' }],
    ]
    for (const [what, form] of cases) {
      const res = await postForm(`${srv.url}/connect/token`, { grant_type: 'password', scope: 'api', ...form }, RO)
      t.equal(res.status, 400, `NUL in the ${what}: ${res.status}`)
      t.match(res.json.error, /^(invalid_request|invalid_grant)$/, 'the core refuses it before the service sees it')
    }
    const users = srv.server.registry.users as PostgresUsers
    const external = await users.authenticateExternal({ idp: 'upstream', subject: 'up\u0000x', claims: { name: 'N\u0000ul' }, context: { raw: [] }, client: { client_id: 'web' } as never, provider: { autoProvision: true } })
    t.equal(external, undefined, 'an upstream subject with NUL is refused')
    const claims = await users.authenticateExternal({ idp: 'upstream', subject: `up-nul-claims-${Date.now()}`, claims: { name: 'N\u0000ul', email: 'ok@example.com' }, context: { raw: [] }, client: { client_id: 'web' } as never, provider: { autoProvision: true } })
    t.same((claims as { claims?: unknown } | undefined)?.claims, { email: 'ok@example.com' }, 'upstream claims holding NUL are dropped, the user is made')
    t.equal(await users.findById('a\u0000b', { raw: [] }), undefined)
    t.equal(await users.isActive('a\u0000b', { raw: [] }), false)
  })

  t.test('login form: a user from PostgreSQL signs in and gets a code', async (t) => {
    const { code, verifier } = await loginForCode(srv, { username: 'BOB', password: 'builder' })
    const tokens = await redeem(srv, code, verifier)
    t.equal(tokens.status, 200, tokens.text)
    t.equal(decodeJwt(tokens.json.id_token as string).sub, data.subs.get('/bob'))
    await t.rejects(loginForCode(srv, { username: 'bob', password: 'nope' }), /expected a redirect to the client, got 401/)
  })

  t.test('openid-client (certified RP) signs a PostgreSQL user in through the login form, tenant by acr_values', async (t) => {
    const config = await client.discovery(new URL(srv.url), 'web', undefined, client.ClientSecretBasic('web-secret'), { execute: [client.allowInsecureRequests] })
    client.enableNonRepudiationChecks(config)
    const codeVerifier = client.randomPKCECodeVerifier()
    const state = client.randomState()
    const nonce = client.randomNonce()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: WEB_REDIRECT, scope: 'openid profile email offline_access', state, nonce, acr_values: 'tenant:acme',
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256',
    })
    const callback = await signInAt(url, 'ALICE', 'wonderland')
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true })
    const claims = tokens.claims()!
    t.equal(claims.sub, data.subs.get('acme/alice'), 'the acme alice, though two users are named alice')
    const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
    t.equal(info.email, 'alice@example.com', 'userinfo claims from JSONB')
    t.equal(info.email_verified, true)
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!)
    t.equal(refreshed.claims()!.sub, claims.sub)
  })

  t.test("a disabled user's refresh tokens stop working; enabled again, they work", async (t) => {
    const first = await password('bob', 'builder')
    const refresh = first.json.refresh_token as string
    t.type(refresh, 'string')
    await data.admin.management.setDisabled({ username: 'bob' }, true)
    const refused = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: refresh }, RO)
    t.equal(refused.status, 400)
    t.equal(refused.json.error, 'invalid_grant')
    t.equal((await password('bob', 'builder')).json.error, 'invalid_grant', 'nor can the user sign in')
    await data.admin.management.setDisabled({ username: 'bob' }, false)
    const again = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: refresh }, RO)
    t.equal(again.status, 200, 'the refused refresh did not spend the token')
  })

  t.test('a weaker hash is upgraded on the next good login, never on a bad one', async (t) => {
    const sub = data.subs.get('/bob')!
    const weak = await hashSecret('builder', 10)
    await db.query(`UPDATE "${data.schema}".users SET password_hash = $2 WHERE sub = $1`, [sub, weak])
    const stored = async () => (await db.query(`SELECT password_hash FROM "${data.schema}".users WHERE sub = $1`, [sub])).rows[0].password_hash as string
    t.equal((await password('bob', 'wrong')).status, 400)
    t.equal(await stored(), weak, 'a failed login changes nothing')
    t.equal((await password('bob', 'builder')).status, 200, 'the weak hash still verifies')
    const upgraded = await stored()
    t.not(upgraded, weak)
    t.equal(parseHashedSecret(upgraded)?.ln, 12, 'now at the configured cost')
    t.equal((await password('bob', 'builder')).status, 200, 'and the password still works')
  })

  t.test('no clear password in the tables or the logs; /readyz checks the database', async (t) => {
    const dump = await db.query(`SELECT row_to_json(u)::text AS j FROM "${data.schema}".users u`)
    const text = dump.rows.map((r) => r.j as string).join('\n')
    for (const pw of ['wonderland', 'globex-pw', 'builder']) {
      t.notMatch(text, pw, `no ${pw} in users`)
      t.notOk(srv.log.lines.some((l) => l.includes(pw)), `no ${pw} in the log`)
    }
    const ready = await fetch(`${srv.url}/readyz`)
    t.equal(ready.status, 200)
  })
}

if (pgsql) {
  t.test('a schema dropped under a running server: 503, never a 500', async (t) => {
    const data = await seed(pgsql.url, 'dropped', [{ username: 'carl', password: 'carl-pw' }])
    t.teardown(() => data.drop())
    const srv = await startFlowServer(serverConfig(pgsql.url, data.schema))
    t.teardown(() => srv.close())
    const sign = () => postForm(`${srv.url}/connect/token`, { grant_type: 'password', username: 'carl', password: 'carl-pw', scope: 'api' }, { authorization: basic('ro', 'ro-secret') })
    t.equal((await sign()).status, 200)
    await dropSchemaNow(pgsql.url, data.schema)
    const res = await sign()
    t.equal(res.status, 503)
    t.equal(res.json.error, 'temporarily_unavailable')
    t.notOk(srv.log.lines.some((l) => l.includes('"status":500')), 'no 500 logged')
  })
}
