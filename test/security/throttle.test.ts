/**
 * Brute-force throttling (core/src/ops/throttle.ts): failed password sign-ins are counted per
 * account and per client address in the store, through the password grant and the login
 * form alike. Bursts, tenants and Unicode spellings: throttle-account.test.ts.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { basic, postForm, startServer, type RunningServer } from '../helpers/server.js'
import { findRedis } from '../helpers/redis.js'
import { ALICE, BOB, authorizeUrl, baseConfig, CookieJar, get, loginForm, pkcePair, post, startFlowServer, WEB_REDIRECT } from '../authorization-code/flow.js'

const THROTTLED = 'too many failed sign-in attempts; try again later'

function passwordConfig(throttle: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    issuer: 'http://issuer.test',
    throttle,
    users: { use: '@grantd/users-static', options: { users: [ALICE, BOB, { sub: 'u-carol', username: 'carol', password: 'c4rol', tenant: 'globex' }] } },
    plugins: ['@grantd/grant-password', '@grantd/acr-tenant'],
    clients: [{ client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password'], scope: 'openid api' }],
    ...extra,
  }
}

function signIn(srv: RunningServer, username: string, password: string, headers: Record<string, string> = {}, extra: Record<string, string> = {}) {
  return postForm(`${srv.url}/connect/token`, { grant_type: 'password', username, password, scope: 'api', ...extra }, { authorization: basic('ro', 'ro-secret'), ...headers })
}

t.test('per username: a correct password is refused once the limit is reached, for any spelling of the name', async (t) => {
  const srv = await startServer(passwordConfig({ maxFailuresPerUser: 3, maxFailuresPerAddress: 0 }))
  t.teardown(srv.close)
  for (let i = 0; i < 3; i++) {
    const res = await signIn(srv, 'alice', `guess-${i}`)
    t.equal(res.json.error_description, 'invalid username or password', `attempt ${i + 1} is a plain failure`)
  }
  const right = await signIn(srv, 'alice', 'wonderland')
  t.equal(right.status, 400)
  t.same(right.json, { error: 'invalid_grant', error_description: THROTTLED }, 'the right password does not get through')
  t.equal(right.headers.get('retry-after'), '900')
  t.equal(right.headers.get('cache-control'), 'no-store')
  t.equal((await signIn(srv, 'ALICE', 'wonderland')).json.error_description, THROTTLED, 'usernames are counted case-insensitively')
  t.equal((await signIn(srv, 'bob', 'builder')).status, 200, 'another user is unaffected')
  t.equal((await signIn(srv, 'alice', 'wonderland', {}, { acr_values: 'tenant:acme' })).json.error_description, THROTTLED, 'naming her tenant does not reopen the account (audit finding 2)')
})

t.test('unknown usernames are counted like known ones (the throttle reveals no account)', async (t) => {
  const srv = await startServer(passwordConfig({ maxFailuresPerUser: 2, maxFailuresPerAddress: 0 }))
  t.teardown(srv.close)
  for (const name of ['alice', 'nobody']) {
    await signIn(srv, name, 'x')
    await signIn(srv, name, 'y')
  }
  const known = await signIn(srv, 'alice', 'z')
  const unknown = await signIn(srv, 'nobody', 'z')
  t.same(known.json, unknown.json)
  t.equal(known.status, unknown.status)
})

t.test('a success resets the username counter', async (t) => {
  const srv = await startServer(passwordConfig({ maxFailuresPerUser: 3, maxFailuresPerAddress: 0 }))
  t.teardown(srv.close)
  await signIn(srv, 'alice', 'a')
  await signIn(srv, 'alice', 'b')
  t.equal((await signIn(srv, 'alice', 'wonderland')).status, 200)
  await signIn(srv, 'alice', 'c')
  await signIn(srv, 'alice', 'd')
  // Without the reset this would be the fifth failure of a limit of three.
  t.equal((await signIn(srv, 'alice', 'wonderland')).status, 200, 'two failures after a success are not over the limit')
})

t.test('per client address: spraying many usernames from one address trips the limit, with the same answer', async (t) => {
  const srv = await startServer(passwordConfig({ maxFailuresPerUser: 0, maxFailuresPerAddress: 4 }, { proxy: { trust: true } }))
  t.teardown(srv.close)
  const from = (ip: string) => ({ 'x-forwarded-for': ip })
  for (let i = 0; i < 4; i++) t.equal((await signIn(srv, `user-${i}`, 'Winter2024!', from('203.0.113.7'))).json.error_description, 'invalid username or password')
  const res = await signIn(srv, 'alice', 'wonderland', from('203.0.113.7'))
  t.same(res.json, { error: 'invalid_grant', error_description: THROTTLED }, 'same text as the username limit: no hint which part tripped')
  t.equal((await signIn(srv, 'alice', 'wonderland', from('198.51.100.9'))).status, 200, 'another address is unaffected')
  t.equal((await signIn(srv, 'alice', 'wonderland', from('203.0.113.7'))).status, 400, 'a success elsewhere does not reset the address')
})

t.test('without proxy trust, X-Forwarded-For cannot buy an attacker fresh addresses', async (t) => {
  const srv = await startServer(passwordConfig({ maxFailuresPerUser: 0, maxFailuresPerAddress: 3 }))
  t.teardown(srv.close)
  for (let i = 0; i < 3; i++) await signIn(srv, `user-${i}`, 'x', { 'x-forwarded-for': `10.0.0.${i}` })
  t.equal((await signIn(srv, 'alice', 'wonderland', { 'x-forwarded-for': '10.9.9.9' })).json.error_description, THROTTLED)
})

t.test('throttle knobs are validated', async (t) => {
  await t.rejects(startServer(passwordConfig({ maxFailuresPerUser: -1 })), /throttle\.maxFailuresPerUser: must be between 0/)
  await t.rejects(startServer(passwordConfig({ windowSeconds: 'x' })), /throttle\.windowSeconds: expected integer/)
  await t.rejects(startServer(passwordConfig({ lockout: true })), /throttle\.lockout: unknown key/)
})

t.test('zero turns a limit off', async (t) => {
  const srv = await startServer(passwordConfig({ maxFailuresPerUser: 0, maxFailuresPerAddress: 0 }))
  t.teardown(srv.close)
  for (let i = 0; i < 25; i++) await signIn(srv, 'alice', `g${i}`)
  t.equal((await signIn(srv, 'alice', 'wonderland')).status, 200)
})

t.test('the login form shows a page, not JSON, and passes the client address', async (t) => {
  const config = baseConfig()
  const srv = await startFlowServer({ ...config, throttle: { maxFailuresPerUser: 0, maxFailuresPerAddress: 3 } })
  t.teardown(srv.close)
  // Each attempt from a fresh authorization request, so the plugin's per-request limit never applies.
  async function attempt(username: string, password: string) {
    const jar = new CookieJar()
    const { challenge } = pkcePair()
    const page = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 'S', code_challenge: challenge, code_challenge_method: 'S256' }), jar)
    const form = loginForm(page.body)
    return post(form.action, { ...form.fields, username, password }, jar)
  }
  for (let i = 0; i < 3; i++) t.equal((await attempt(`user-${i}`, 'x')).status, 401)
  const res = await attempt('alice', 'wonderland')
  t.equal(res.status, 429)
  t.match(res.headers.get('content-type'), /^text\/html/)
  t.match(res.body, /Too many failed sign-in attempts/)
  t.notOk(res.location, 'no redirect: the client learns nothing')
  t.doesNotThrow(() => loginForm(res.body), 'the form is shown again')
})

t.test('the login form and the password grant share the username counter', async (t) => {
  const config = baseConfig()
  const srv = await startFlowServer({
    ...config,
    throttle: { maxFailuresPerUser: 2, maxFailuresPerAddress: 0 },
    plugins: [...(config.plugins as string[]), '@grantd/grant-password'],
    clients: [...(config.clients as unknown[]), { client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password'], scope: 'openid api' }],
  })
  t.teardown(srv.close)
  await signIn(srv, 'alice', 'x')
  await signIn(srv, 'alice', 'y')
  const jar = new CookieJar()
  const { challenge } = pkcePair()
  const page = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 'S', code_challenge: challenge, code_challenge_method: 'S256' }), jar)
  const form = loginForm(page.body)
  const res = await post(form.action, { ...form.fields, username: 'alice', password: 'wonderland' }, jar)
  t.equal(res.status, 429)
})

t.test('the limit holds across servers sharing a Redis store', async (t) => {
  const redis = await findRedis()
  if (!redis) {
    t.comment('no Redis: skipped (see the notice above)')
    return
  }
  t.teardown(() => redis.stop())
  const prefix = `grantd-test:throttle:${randomBytes(6).toString('hex')}:`
  const config = passwordConfig({ maxFailuresPerUser: 3, maxFailuresPerAddress: 0 }, { store: { use: '@grantd/store-redis', options: { url: redis.url, prefix } } })
  const a = await startServer(config)
  t.teardown(a.close)
  const b = await startServer(config)
  t.teardown(b.close)
  await signIn(a, 'alice', 'x')
  await signIn(b, 'alice', 'y')
  await signIn(a, 'alice', 'z')
  t.equal((await signIn(b, 'alice', 'wonderland')).json.error_description, THROTTLED, 'failures at one server count at the other')
  t.equal((await signIn(a, 'bob', 'builder')).status, 200)
})
