/**
 * Audit finding 3 (SPEC §9): client secrets get a failure limit per client_id
 * (`throttle.maxFailuresPerClient`) and per client address, reserved atomically before any
 * secret hash is computed; a refusal is 401 invalid_client with Retry-After (and the Basic
 * challenge when Basic was used), even for the right secret.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { hashSecret } from '@grantd/core'
import { basic, freePort, postForm, startServer, type RunningServer } from '../helpers/server.js'
import { findRedis } from '../helpers/redis.js'

const LOCKED = 'too many failed client authentication attempts; try again later'
const FAILED = 'client authentication failed'

async function config(throttle: Record<string, unknown>, extra: Record<string, unknown> = {}, ln = 12): Promise<Record<string, unknown>> {
  return {
    issuer: 'http://issuer.test',
    throttle,
    plugins: ['@grantd/grant-client-credentials'],
    clients: [
      { client_id: 'svc', client_secret: await hashSecret('svc-secret', ln), grant_types: ['client_credentials'], scope: 'api' },
      { client_id: 'post', client_secret: await hashSecret('post-secret', ln), token_endpoint_auth_method: 'client_secret_post', grant_types: ['client_credentials'], scope: 'api' },
      { client_id: 'other', client_secret: 'other-secret', grant_types: ['client_credentials'], scope: 'api' },
    ],
    ...extra,
  }
}

function token(srv: RunningServer, id: string, secret: string, headers: Record<string, string> = {}) {
  return postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic(id, secret), ...headers })
}

function tokenPost(srv: RunningServer, id: string, secret: string, headers: Record<string, string> = {}) {
  return postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api', client_id: id, client_secret: secret }, headers)
}

t.test('sequential guesses: the right secret is refused once the client has failed maxFailuresPerClient times', async (t) => {
  const srv = await startServer(await config({ maxFailuresPerClient: 5, maxFailuresPerAddress: 0 }))
  t.teardown(srv.close)
  t.equal((await token(srv, 'svc', 'svc-secret')).status, 200, 'the right secret works')
  for (let i = 0; i < 5; i++) {
    const res = await token(srv, 'svc', `guess-${i}`)
    t.same([res.status, res.json.error_description], [401, FAILED], `guess ${i + 1} is checked and fails`)
  }
  const locked = await token(srv, 'svc', 'svc-secret')
  t.equal(locked.status, 401)
  t.same(locked.json, { error: 'invalid_client', error_description: LOCKED }, 'the right secret is refused while locked')
  t.equal(locked.headers.get('retry-after'), '900')
  t.equal(locked.headers.get('www-authenticate'), 'Basic realm="grantd"', 'Basic was used: the challenge is there')
  t.equal(locked.headers.get('cache-control'), 'no-store')
  t.equal((await token(srv, 'other', 'other-secret')).status, 200, 'another client is unaffected')
  const introspect = await postForm(`${srv.url}/connect/introspect`, { token: 'x' }, { authorization: basic('svc', 'svc-secret') })
  t.same([introspect.status, introspect.json.error_description], [401, LOCKED], 'introspection refuses the locked client too')
  const revoke = await postForm(`${srv.url}/connect/revocation`, { token: 'x' }, { authorization: basic('svc', 'svc-secret') })
  t.same([revoke.status, revoke.json.error_description], [401, LOCKED], 'and revocation')
})

t.test('client_secret_post: the same limit, no Basic challenge', async (t) => {
  const srv = await startServer(await config({ maxFailuresPerClient: 3, maxFailuresPerAddress: 0 }))
  t.teardown(srv.close)
  for (let i = 0; i < 3; i++) t.equal((await tokenPost(srv, 'post', `guess-${i}`)).json.error_description, FAILED)
  const locked = await tokenPost(srv, 'post', 'post-secret')
  t.same([locked.status, locked.json.error, locked.json.error_description], [401, 'invalid_client', LOCKED])
  t.equal(locked.headers.get('retry-after'), '900')
  t.equal(locked.headers.get('www-authenticate'), null)
})

t.test('a concurrent burst gets at most maxFailuresPerClient secrets checked, and the right one is refused after', async (t) => {
  const srv = await startServer(await config({ maxFailuresPerClient: 5, maxFailuresPerAddress: 0 }))
  t.teardown(srv.close)
  const results = await Promise.all(Array.from({ length: 16 }, (_, i) => token(srv, 'svc', i < 15 ? `guess-${i}` : 'svc-secret')))
  const checkedAndFailed = results.filter((r) => r.json.error_description === FAILED).length
  const ok = results.filter((r) => r.status === 200).length
  t.equal(checkedAndFailed + ok, 5, 'exactly five secrets were checked (not sixteen)')
  t.equal(results.filter((r) => r.json.error_description === LOCKED).length, 11, 'the rest were refused unchecked')
  t.equal((await token(srv, 'svc', 'svc-secret')).json.error_description, LOCKED, 'the right secret is refused after the burst')
})

t.test('the limit holds across servers sharing a Redis store, bursts included', async (t) => {
  const redis = await findRedis()
  if (!redis) {
    t.comment('no Redis: skipped (see the notice above)')
    return
  }
  t.teardown(() => redis.stop())
  const prefix = `grantd-test:client-throttle:${randomBytes(6).toString('hex')}:`
  const cfg = await config({ maxFailuresPerClient: 5, maxFailuresPerAddress: 0 }, { store: { use: '@grantd/store-redis', options: { url: redis.url, prefix } } })
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
  const results = await Promise.all(Array.from({ length: 16 }, (_, i) => token(i % 2 ? a : b, 'svc', `guess-${i}`)))
  t.equal(results.filter((r) => r.json.error_description === FAILED).length, 5, 'five checked across both servers')
  t.equal((await token(a, 'svc', 'svc-secret')).json.error_description, LOCKED)
  t.equal((await token(b, 'svc', 'svc-secret')).json.error_description, LOCKED)
})

t.test('a success gives its reservation back but never resets the failures (no interleaving for more guesses)', async (t) => {
  const srv = await startServer(await config({ maxFailuresPerClient: 5, maxFailuresPerAddress: 0 }))
  t.teardown(srv.close)
  for (let i = 0; i < 30; i++) t.equal((await token(srv, i % 2 ? 'svc' : 'other', i % 2 ? 'svc-secret' : 'other-secret')).status, 200)
  t.pass('thirty successes are not failures')
  for (let i = 0; i < 4; i++) await token(srv, 'svc', `guess-${i}`)
  t.equal((await token(srv, 'svc', 'svc-secret')).status, 200, 'four failures: still open')
  t.equal((await token(srv, 'svc', 'guess-4')).json.error_description, FAILED, 'the fifth failure is checked')
  t.equal((await token(srv, 'svc', 'svc-secret')).json.error_description, LOCKED, 'the success in between did not buy a sixth guess')
})

t.test('per address: guessing across many clients from one address trips the limit', async (t) => {
  const srv = await startServer(await config({ maxFailuresPerClient: 0, maxFailuresPerAddress: 4 }, { proxy: { trust: true } }))
  t.teardown(srv.close)
  const from = (ip: string) => ({ 'x-forwarded-for': ip })
  const ids = ['svc', 'other', 'unknown-1', 'unknown-2']
  for (const id of ids) t.equal((await token(srv, id, 'wrong', from('203.0.113.7'))).json.error_description, FAILED, `${id}: checked`)
  const locked = await token(srv, 'other', 'other-secret', from('203.0.113.7'))
  t.same([locked.status, locked.json.error_description], [401, LOCKED], 'the right secret of a fifth request is refused')
  t.equal(locked.headers.get('retry-after'), '900')
  t.equal((await tokenPost(srv, 'post', 'post-secret', from('203.0.113.7'))).json.error_description, LOCKED, 'whatever the client and method')
  t.equal((await token(srv, 'other', 'other-secret', from('198.51.100.9'))).status, 200, 'another address is unaffected')
})

t.test('a refused attempt computes no hash: it answers far faster than a checked wrong secret', async (t) => {
  // ln=15 (hashSecret's default): about 20 ms and 32 MiB per check, far above an HTTP round trip.
  const srv = await startServer(await config({ maxFailuresPerClient: 3, maxFailuresPerAddress: 0 }, {}, 15))
  t.teardown(srv.close)
  const time = async (secret: string) => {
    const started = performance.now()
    const res = await token(srv, 'svc', secret)
    return { ms: performance.now() - started, res }
  }
  const checked: number[] = []
  for (let i = 0; i < 3; i++) checked.push((await time(`guess-${i}`)).ms)
  const refused: number[] = []
  for (let i = 0; i < 5; i++) {
    const { ms, res } = await time(`more-${i}`)
    t.equal(res.json.error_description, LOCKED)
    refused.push(ms)
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  t.ok(median(refused) * 3 < median(checked), `refused ${median(refused).toFixed(1)} ms vs checked ${median(checked).toFixed(1)} ms`)
})

t.test('maxFailuresPerClient defaults to 20; 0 turns it off; knobs are validated', async (t) => {
  const srv = await startServer(await config({ maxFailuresPerAddress: 0 }))
  t.teardown(srv.close)
  for (let i = 0; i < 20; i++) await token(srv, 'other', `guess-${i}`)
  t.equal((await token(srv, 'other', 'other-secret')).json.error_description, LOCKED, 'twenty failures lock by default')
  const off = await startServer(await config({ maxFailuresPerClient: 0, maxFailuresPerAddress: 0 }))
  t.teardown(off.close)
  for (let i = 0; i < 25; i++) await token(off, 'other', `guess-${i}`)
  t.equal((await token(off, 'other', 'other-secret')).status, 200, '0 = off')
  await t.rejects(startServer(await config({ maxFailuresPerClient: -1 })), /throttle\.maxFailuresPerClient: must be between 0/)
  await t.rejects(startServer(await config({ maxFailuresPerClient: 'many' })), /throttle\.maxFailuresPerClient: expected integer/)
})

t.test('store unreachable: a secret known to be right still works, a guess cannot be counted so it is not checked (503)', async (t) => {
  const url = `redis://127.0.0.1:${await freePort()}`
  const srv = await startServer(await config({ maxFailuresPerClient: 5, maxFailuresPerAddress: 5 }, {
    store: { use: '@grantd/store-redis', options: { url, prefix: 'nowhere:', connectTimeoutMs: 200, commandTimeoutMs: 300 } },
  }))
  t.teardown(srv.close)
  t.equal((await token(srv, 'other', 'other-secret')).status, 200, 'a clear secret, compared by digest: no counter needed')
  for (const [id, secret] of [['other', 'wrong'], ['svc', 'svc-secret'], ['nobody', 'x']] as const) {
    const res = await token(srv, id, secret)
    t.same([res.status, res.json.error], [503, 'temporarily_unavailable'], `${id}: 503, never a 500 nor an unchecked pass`)
  }
})

t.test('identical requests in flight at once are one check: a cold burst of the right secret never locks its client', async (t) => {
  // ln=15: each check lasts long enough (≈20 ms and more) for a burst to be in flight together.
  const srv = await startServer(await config({ maxFailuresPerClient: 5, maxFailuresPerAddress: 5 }, {}, 15))
  t.teardown(srv.close)
  const cold = await Promise.all(Array.from({ length: 30 }, () => token(srv, 'svc', 'svc-secret')))
  t.same(cold.map((r) => r.status), Array.from({ length: 30 }, () => 200), '30 concurrent first requests of a hashed-secret client all succeed')
  const same = await Promise.all(Array.from({ length: 30 }, () => tokenPost(srv, 'post', 'one-guess')))
  t.same(same.map((r) => r.json.error_description), Array.from({ length: 30 }, () => FAILED), '30 copies of one wrong guess are checked together, not 5 checked and 25 refused')
  t.equal((await tokenPost(srv, 'post', 'post-secret')).status, 200, 'and the client is not locked by them')
})

t.test('private_key_jwt is not counted (a signature cannot be guessed), nor does it unlock a locked secret', async (t) => {
  const { exportJWK, generateKeyPair, SignJWT } = await import('jose')
  const { randomUUID } = await import('node:crypto')
  const key = await generateKeyPair('ES256', { extractable: true })
  const stranger = await generateKeyPair('ES256', { extractable: true })
  const base = await config({ maxFailuresPerClient: 2, maxFailuresPerAddress: 2 })
  const srv = await startServer({
    ...base,
    clients: [...(base.clients as unknown[]), { client_id: 'jwt', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ ...(await exportJWK(key.publicKey)), kid: 'k' }] }, grant_types: ['client_credentials'], scope: 'api' }],
  })
  t.teardown(srv.close)
  const assertion = (signer: typeof key.privateKey) => new SignJWT({ iss: 'jwt', sub: 'jwt', aud: 'http://issuer.test', jti: randomUUID() })
    .setProtectedHeader({ alg: 'ES256' }).setIssuedAt().setExpirationTime('1m').sign(signer)
  const withAssertion = async (signer: typeof key.privateKey) => postForm(`${srv.url}/connect/token`, {
    grant_type: 'client_credentials', scope: 'api', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await assertion(signer),
  })
  for (let i = 0; i < 5; i++) t.equal((await withAssertion(stranger.privateKey)).json.error_description, FAILED, `forged assertion ${i + 1}: a plain failure`)
  t.equal((await withAssertion(key.privateKey)).status, 200, 'the real key still works: nothing was counted')
  t.equal((await token(srv, 'other', 'other-secret')).status, 200, 'and the address has its whole budget for secrets')
})
