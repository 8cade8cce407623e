/**
 * Audit findings 1 and 2 (SPEC §9): the sign-in throttle reserves an attempt atomically in
 * the store before the password is checked, so a concurrent burst never gets more than the
 * limit checked; and it counts per account (the user service's `resolveAccount`), so no
 * optional request part (acr_values tenant, Unicode spelling, case) buys fresh guesses.
 */
import t from 'tap'
import type { Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { basic, postForm, startServer, type RunningServer } from '../helpers/server.js'
import { findRedis } from '../helpers/redis.js'
import { ALICE, BOB, authorizeUrl, baseConfig, CookieJar, get, loginForm, pkcePair, post, startFlowServer, WEB_REDIRECT } from '../authorization-code/flow.js'

const THROTTLED = 'too many failed sign-in attempts; try again later'
const RENE = { sub: 'u-rene', username: 'rené', password: 'pâtisserie', claims: {} }
const USERS = [ALICE, BOB, RENE]

function config(throttle: Record<string, unknown>, extra: Record<string, unknown> = {}, delayMs = 0): Record<string, unknown> {
  return {
    issuer: 'http://issuer.test',
    throttle,
    users: { use: './test/security/counting-users.ts', options: { users: USERS, delayMs } },
    plugins: ['@grantd/grant-password', '@grantd/acr-tenant'],
    clients: [{ client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password'], scope: 'openid api' }],
    ...extra,
  }
}

function signIn(srv: RunningServer, username: string, password: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}) {
  return postForm(`${srv.url}/connect/token`, { grant_type: 'password', username, password, scope: 'api', ...extra }, { authorization: basic('ro', 'ro-secret'), ...headers })
}

async function checks(...servers: RunningServer[]): Promise<number> {
  let sum = 0
  for (const srv of servers) sum += ((await (await fetch(`${srv.url}/test/password-checks`)).json()) as { checks: number }).checks
  return sum
}

/** 15 wrong guesses and the right password, all in flight at once (the user service holds each check 150 ms). */
async function burst(servers: RunningServer[], username: string, right: string) {
  const attempts = Array.from({ length: 16 }, (_, i) => (i < 15 ? `guess-${i}` : right))
  return Promise.all(attempts.map((password, i) => signIn(servers[i % servers.length]!, username, password)))
}

async function assertBurstHeld(t: Test, servers: RunningServer[]) {
  const results = await burst(servers, 'alice', 'wonderland')
  const checked = await checks(...servers)
  t.equal(checked, 5, 'exactly the limit of passwords reached the user service (not 16)')
  const throttled = results.filter((r) => r.json.error_description === THROTTLED)
  t.equal(throttled.length, 16 - checked, 'every other attempt was refused unchecked')
  t.ok(results.every((r) => r.status === 400 || r.status === 200), 'no other answer')
  t.ok(results.filter((r) => r.status === 200).length <= 1, 'at most the right password (if it was among the first five)')
  const after = await signIn(servers[0]!, 'alice', 'wonderland')
  t.same(after.json, { error: 'invalid_grant', error_description: THROTTLED }, 'the right password is refused after the burst')
  t.equal(await checks(...servers), checked, 'and was not checked either')
}

t.test('a concurrent burst gets at most maxFailuresPerUser passwords checked (memory store)', async (t) => {
  const srv = await startServer(config({ maxFailuresPerUser: 5, maxFailuresPerAddress: 0 }, {}, 150))
  t.teardown(srv.close)
  await assertBurstHeld(t, [srv])
})

t.test('a concurrent burst gets at most maxFailuresPerUser passwords checked (Redis, two servers)', async (t) => {
  const redis = await findRedis()
  if (!redis) {
    t.comment('no Redis: skipped (see the notice above)')
    return
  }
  t.teardown(() => redis.stop())
  const prefix = `grantd-test:throttle-burst:${randomBytes(6).toString('hex')}:`
  const cfg = config({ maxFailuresPerUser: 5, maxFailuresPerAddress: 0 }, { store: { use: '@grantd/store-redis', options: { url: redis.url, prefix } } }, 150)
  const a = await startServer(cfg)
  t.teardown(a.close)
  const b = await startServer(cfg)
  t.teardown(b.close)
  t.teardown(async () => {
    const { Redis } = await import('ioredis')
    const client = new Redis(redis.url)
    const keys = await client.keys(`${prefix}*`)
    if (keys.length) await client.del(...keys)
    await client.quit()
  })
  await assertBurstHeld(t, [a, b])
})

t.test('a concurrent burst from one address gets at most maxFailuresPerAddress passwords checked', async (t) => {
  const srv = await startServer(config({ maxFailuresPerUser: 0, maxFailuresPerAddress: 5 }, {}, 150))
  t.teardown(srv.close)
  const results = await Promise.all(Array.from({ length: 16 }, (_, i) => signIn(srv, i === 15 ? 'alice' : `user-${i}`, i === 15 ? 'wonderland' : 'Winter2024!')))
  t.equal(await checks(srv), 5, 'five checked, not sixteen')
  t.equal(results.filter((r) => r.json.error_description === THROTTLED).length, 11)
  t.equal((await signIn(srv, 'alice', 'wonderland')).json.error_description, THROTTLED, 'the right password is refused after')
})

t.test('a success gives its address reservation back; failures keep theirs', async (t) => {
  const srv = await startServer(config({ maxFailuresPerUser: 0, maxFailuresPerAddress: 3 }))
  t.teardown(srv.close)
  for (let i = 0; i < 6; i++) t.equal((await signIn(srv, 'bob', 'builder')).status, 200, `success ${i + 1} does not count against the address`)
  for (let i = 0; i < 3; i++) await signIn(srv, 'bob', `wrong-${i}`)
  t.equal((await signIn(srv, 'bob', 'builder')).json.error_description, THROTTLED, 'three failures do')
})

t.test('the tenant spelling of a locked account is locked too', async (t) => {
  const srv = await startServer(config({ maxFailuresPerUser: 3, maxFailuresPerAddress: 0 }))
  t.teardown(srv.close)
  t.equal((await signIn(srv, 'alice', 'wonderland', { acr_values: 'tenant:acme' })).status, 200, 'alice signs in with her tenant')
  for (let i = 0; i < 3; i++) await signIn(srv, 'alice', `guess-${i}`)
  const withTenant = await signIn(srv, 'alice', 'wonderland', { acr_values: 'tenant:acme' })
  t.same(withTenant.json, { error: 'invalid_grant', error_description: THROTTLED }, 'acr_values=tenant:acme does not reopen the account')
  t.equal((await signIn(srv, 'alice', 'wonderland', { acr_values: 'tenant:acme other:x' })).json.error_description, THROTTLED, 'nor extra acr values')
  t.equal(await checks(srv), 4, 'and neither was checked')
  t.equal((await signIn(srv, 'bob', 'builder')).status, 200, 'another account is unaffected')
})

t.test('failures counted with the tenant lock the account without it', async (t) => {
  const srv = await startServer(config({ maxFailuresPerUser: 3, maxFailuresPerAddress: 0 }))
  t.teardown(srv.close)
  for (let i = 0; i < 3; i++) await signIn(srv, 'Alice', `guess-${i}`, { acr_values: 'tenant:acme' })
  t.equal((await signIn(srv, 'alice', 'wonderland')).json.error_description, THROTTLED)
})

t.test('decomposed, composed, upper-case and compatibility spellings of one account share its counter', async (t) => {
  const srv = await startServer(config({ maxFailuresPerUser: 3, maxFailuresPerAddress: 0 }))
  t.teardown(srv.close)
  t.equal((await signIn(srv, 'rene\u0301', 'pâtisserie')).status, 200, 'users-static matches the decomposed spelling (NFKC)')
  t.equal((await signIn(srv, 'RENÉ', 'pâtisserie')).status, 200, 'and the upper-case one')
  for (let i = 0; i < 3; i++) await signIn(srv, 'rené', `guess-${i}`)
  for (const spelling of ['rene\u0301', 'RENE\u0301', 'RENÉ', '\uff52\uff45\uff4e\u00e9']) {
    t.equal((await signIn(srv, spelling, 'pâtisserie')).json.error_description, THROTTLED, `${JSON.stringify(spelling)} is locked`)
  }
})

t.test('a user service without resolveAccount: the key is the NFKC + lower-cased username, never the tenant', async (t) => {
  const srv = await startServer({
    issuer: 'http://issuer.test',
    throttle: { maxFailuresPerUser: 2, maxFailuresPerAddress: 0 },
    users: './test/password/context-users.ts',
    plugins: ['@grantd/grant-password', '@grantd/acr-tenant'],
    clients: [{ client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password'], scope: 'openid api' }],
  })
  t.teardown(srv.close)
  t.equal((await signIn(srv, 'erin', 'pw', { acr_values: 'tenant:acme' })).status, 200)
  await signIn(srv, 'erin', 'x', { acr_values: 'tenant:acme' })
  await signIn(srv, 'ERIN', 'y', { acr_values: 'tenant:globex' })
  for (const [name, acr] of [['erin', ''], ['erin', 'tenant:acme'], ['erin', 'tenant:initech'], ['\uff45\uff52\uff49\uff4e', '']] as const) {
    t.equal((await signIn(srv, name, 'pw', acr ? { acr_values: acr } : {})).json.error_description, THROTTLED, `${name} ${acr || '(no tenant)'} is locked`)
  }
})

t.test('the login form: the tenant and decomposed spellings of a locked account are locked', async (t) => {
  const base = baseConfig({ users: USERS })
  const srv = await startFlowServer({
    ...base,
    throttle: { maxFailuresPerUser: 2, maxFailuresPerAddress: 0 },
    plugins: [...(base.plugins as string[]), '@grantd/grant-password'],
    clients: [...(base.clients as unknown[]), { client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password'], scope: 'openid api' }],
  })
  t.teardown(srv.close)
  async function formLogin(username: string, password: string, acrValues?: string) {
    const jar = new CookieJar()
    const { challenge } = pkcePair()
    const page = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 'S', code_challenge: challenge, code_challenge_method: 'S256', acr_values: acrValues }), jar)
    const form = loginForm(page.body)
    return post(form.action, { ...form.fields, username, password }, jar)
  }
  await signIn(srv, 'alice', 'x')
  await signIn(srv, 'alice', 'y')
  const tenant = await formLogin('alice', 'wonderland', 'tenant:acme')
  t.equal(tenant.status, 429, 'tenant:acme on the authorization request does not reopen alice')
  t.match(tenant.body, /Too many failed sign-in attempts/)
  await formLogin('rené', 'a')
  await formLogin('RENÉ', 'b')
  const decomposed = await formLogin('rene\u0301', 'pâtisserie')
  t.equal(decomposed.status, 429, 'the decomposed spelling of rené is locked on the form too')
  t.equal((await formLogin('bob', 'builder')).status, 302, 'another account signs in')
})

t.test('a user service that cannot answer gives the reservations back: an outage locks nobody out', async (t) => {
  const srv = await startServer(config({ maxFailuresPerUser: 2, maxFailuresPerAddress: 2 }))
  t.teardown(srv.close)
  for (let i = 0; i < 5; i++) {
    const res = await signIn(srv, 'alice', '!unavailable')
    t.same([res.status, res.json.error], [503, 'temporarily_unavailable'], `outage ${i + 1}: 503`)
  }
  t.equal((await signIn(srv, 'alice', 'wonderland')).status, 200, 'afterwards alice signs in from the same address')
  await signIn(srv, 'alice', 'x')
  await signIn(srv, 'alice', 'y')
  t.equal((await signIn(srv, 'alice', 'wonderland')).json.error_description, THROTTLED, 'real failures still count')
})

t.test('locking a name through a spelling that matches no account locks known and unknown names alike (no existence oracle)', async (t) => {
  const srv = await startServer(config({ maxFailuresPerUser: 3, maxFailuresPerAddress: 0 }))
  t.teardown(srv.close)
  for (const name of ['alice', 'zed']) for (let i = 0; i < 3; i++) await signIn(srv, name, `guess-${i}`, { acr_values: 'tenant:globex' })
  const known = await signIn(srv, 'alice', 'wonderland')
  const unknown = await signIn(srv, 'zed', 'whatever')
  t.same(known.json, { error: 'invalid_grant', error_description: THROTTLED }, 'alice, who exists (in acme), is locked')
  t.same(unknown.json, known.json, 'exactly as zed, who does not exist')
  t.same((await signIn(srv, 'ALICE', 'wonderland', { acr_values: 'tenant:acme' })).json, known.json, 'with her own tenant too')
})

t.test('an address over its limit gets no lookup and creates no per-name counter (bounded state)', async (t) => {
  const srv = await startServer(config({ maxFailuresPerUser: 5, maxFailuresPerAddress: 2 }))
  t.teardown(srv.close)
  const counters = () => (srv.server.registry.store as unknown as { dump(): Array<[string, string]> }).dump().filter(([k]) => k.startsWith('throttle:user:') || k.startsWith('throttle:account:')).length
  await signIn(srv, 'alice', 'x')
  await signIn(srv, 'alice', 'y')
  const before = counters()
  for (let i = 0; i < 20; i++) t.equal((await signIn(srv, `spray-${i}`, 'Winter2024!')).json.error_description, THROTTLED)
  t.equal(counters(), before, 'twenty new names, no new counter')
  t.equal(await checks(srv), 2, 'and no password checked')
})
