import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { findRedis } from '../helpers/redis.js'
import { type RunningServer } from '../helpers/server.js'
import {
  authorizeUrl, baseConfig, CookieJar, get, loginForm, pkcePair, post, redeem, startFlowServer, WEB_REDIRECT,
} from '../authorization-code/flow.js'

/**
 * SPEC §9: anonymous requests never create unbounded state. The attack from the audit:
 * 300 unauthenticated GET /connect/authorize, each with a large attacker-chosen
 * state/nonce/login_hint, left 300 pending authorizations (≈1.2 MB) in the store for
 * 600 s each. Now the validated request travels in the login form (MAC-protected,
 * bound to the browser) and nothing is stored before a sign-in succeeds.
 */

const REQUESTS = 320

function attackParams(i: number): Record<string, string> {
  const { challenge } = pkcePair()
  return {
    response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid profile',
    state: `${i}-${'s'.repeat(1500)}`, nonce: 'n'.repeat(500), login_hint: 'h'.repeat(250),
    code_challenge: challenge, code_challenge_method: 'S256',
  }
}

async function flood(t: Test, srv: RunningServer): Promise<void> {
  let pages = 0
  for (let i = 0; i < REQUESTS; i += 20) {
    const batch = await Promise.all(Array.from({ length: 20 }, (_, j) => get(authorizeUrl(srv, attackParams(i + j)))))
    pages += batch.filter((p) => p.status === 200 && /name="password"/.test(p.body)).length
  }
  t.equal(pages, REQUESTS, `${REQUESTS} anonymous requests each got the login form`)
}

/** The flow still works after the flood: sign in, single use, code redemption. */
async function signInStillWorks(t: Test, srv: RunningServer): Promise<void> {
  const jar = new CookieJar()
  const { verifier, challenge } = pkcePair()
  const page = await get(authorizeUrl(srv, { ...attackParams(0), code_challenge: challenge }), jar)
  const form = loginForm(page.body)
  t.match(form.fields.login_hint ?? form.fields.username, /^h+$/, 'login_hint prefills the username')
  const res = await post(form.action, { ...form.fields, username: 'alice', password: 'wonderland' }, jar)
  t.equal(res.status, 302, 'signed in')
  t.equal(res.location!.searchParams.get('state'), attackParams(0).state, 'state comes back intact')
  const tokens = await redeem(srv, res.location!.searchParams.get('code')!, verifier)
  t.equal(tokens.status, 200, 'the code redeems')
  const again = await post(form.action, { ...form.fields, username: 'alice', password: 'wonderland' }, jar)
  t.equal(again.status, 400, 'the same form cannot be used twice')
  t.match(again.body, /expired|already/)
}

t.test('memory store: anonymous authorize requests leave no entries', async (t) => {
  const srv = await startFlowServer(baseConfig())
  t.teardown(srv.close)
  const store = srv.server.registry.store as unknown as { size: number }
  const before = store.size
  await flood(t, srv)
  t.ok(store.size - before <= 2, `store entries before ${before}, after ${store.size}`)
  await signInStillWorks(t, srv)
})

t.test('Redis store: anonymous authorize requests leave (near) zero keys', async (t) => {
  const redis = await findRedis()
  if (!redis) return
  t.teardown(() => redis.stop())
  const prefix = `grantd-test:anon:${randomBytes(6).toString('hex')}:`
  const srv = await startFlowServer({ ...baseConfig(), store: { use: '@grantd/store-redis', options: { url: redis.url, prefix } } })
  t.teardown(srv.close)
  const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await client.connect()
  const keys = async (): Promise<string[]> => {
    const found: string[] = []
    let cursor = '0'
    do {
      const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      found.push(...batch)
      cursor = next
    } while (cursor !== '0')
    return found
  }
  t.teardown(async () => {
    const left = await keys()
    if (left.length > 0) await client.del(...left)
    client.disconnect()
  })
  await flood(t, srv)
  const left = await keys()
  t.ok(left.length <= 2, `Redis keys under the test prefix after ${REQUESTS} anonymous requests: ${left.length} (${left.slice(0, 3).join(', ')})`)
  await signInStillWorks(t, srv)
})

t.test('the carried request cannot be altered or replayed into another browser', async (t) => {
  const srv = await startFlowServer(baseConfig())
  t.teardown(srv.close)
  const jar = new CookieJar()
  const page = await get(authorizeUrl(srv, attackParams(1)), jar)
  const form = loginForm(page.body)
  const pending = form.fields.pending!
  // Flip one character of the carried request: its MAC no longer matches.
  const at = Math.floor(pending.length / 3)
  const altered = pending.slice(0, at) + (pending[at] === 'A' ? 'B' : 'A') + pending.slice(at + 1)
  const res = await post(form.action, { ...form.fields, pending: altered, username: 'alice', password: 'wonderland' }, jar)
  t.equal(res.status, 400)
  t.notOk(res.location)
  t.notOk(res.headers.getSetCookie().some((c) => c.startsWith('grantd_session=')), 'no session')
  // Another browser with its own cookie cannot post this form (CSRF binding).
  const other = new CookieJar()
  await get(authorizeUrl(srv, attackParams(2)), other)
  const crossed = await post(form.action, { ...form.fields, username: 'alice', password: 'wonderland' }, other)
  t.equal(crossed.status, 403)
  const garbage = await post(form.action, { ...form.fields, pending: 'not-a-request', username: 'alice', password: 'wonderland' }, jar)
  t.equal(garbage.status, 400)
})

t.test('a request too large to carry in the form is refused with invalid_request, never stored', async (t) => {
  const srv = await startFlowServer(baseConfig())
  t.teardown(srv.close)
  const store = srv.server.registry.store as unknown as { size: number }
  // Every parameter within its own limit, together more than one form field can carry.
  const res = await get(authorizeUrl(srv, { ...attackParams(3), state: 's'.repeat(2048), nonce: 'n'.repeat(512), acr_values: `x:${'a'.repeat(1000)}` }))
  t.equal(res.status, 302)
  t.equal(res.location!.searchParams.get('error'), 'invalid_request')
  t.match(res.location!.searchParams.get('error_description'), /too large/)
  t.equal(res.location!.searchParams.get('state'), 's'.repeat(2048), 'state is echoed back')
  t.equal(store.size, 0)
})

t.test('posting the form without a password guess stores nothing; wrong passwords are counted', async (t) => {
  const srv = await startFlowServer(baseConfig())
  t.teardown(srv.close)
  const store = srv.server.registry.store as unknown as { size: number }
  for (let i = 0; i < 30; i++) {
    const jar = new CookieJar()
    const form = loginForm((await get(authorizeUrl(srv, attackParams(i)), jar)).body)
    const empty = await post(form.action, { ...form.fields, username: 'alice', password: '' }, jar)
    t.equal(empty.status, 400)
    const huge = await post(form.action, { ...form.fields, username: 'alice', password: 'p'.repeat(2000) }, jar)
    t.equal(huge.status, 401)
  }
  t.equal(store.size, 0, 'no entries for forms posted without a guess')
  const jar = new CookieJar()
  const form = loginForm((await get(authorizeUrl(srv, attackParams(99)), jar)).body)
  t.equal((await post(form.action, { ...form.fields, username: 'alice', password: 'wrong' }, jar)).status, 401)
  t.ok(store.size > 0, `a wrong password is counted (${store.size} entries: the request's attempts and the core throttle)`)
})
