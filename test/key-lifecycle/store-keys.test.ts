/**
 * SPEC §13 `keys: { "source": "store", "rotateDays": N }`: two `grantd start` processes on
 * one Redis agree on one JWKS (one of them creates the keys, under a Store.add lock); a
 * rotation, driven by the test clock (GRANTD_TEST_CLOCK_FILE), publishes the new key a full
 * cache period before it signs and keeps the retired key until its tokens have expired;
 * private keys are encrypted at rest.
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose'
import { findRedis } from '../helpers/redis.js'
import { basic, postForm, startCli, type ChildServer } from '../helpers/server.js'

const DAY = 86_400_000
const redisHandle = await findRedis()
if (!redisHandle) {
  t.skip('store keys need Redis', () => {})
} else {
  const redisUrl = redisHandle.url
  const prefix = `grantd-keylife-${randomBytes(6).toString('hex')}:`
  const redis = new Redis(redisUrl)
  const dir = mkdtempSync(join(tmpdir(), 'grantd-keylife-store-'))
  const clockFile = join(dir, 'clock')
  t.teardown(async () => {
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length) await redis.del(...keys)
    redis.disconnect()
    await redisHandle.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  const configFile = join(dir, 'grantd.json')
  writeFileSync(configFile, JSON.stringify({
    issuer: 'http://127.0.0.1',
    keys: { source: 'store', rotateDays: 4, pollSeconds: 1, secret: 'a-store-key-secret-of-at-least-32-chars' },
    tokens: { accessTokenTtl: 300, idTokenTtl: 300 },
    store: { use: '@grantd/store-redis', options: { url: redisUrl, prefix } },
    plugins: ['@grantd/grant-client-credentials'],
    clients: [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' }],
  }))
  /** Move both processes' key clock to `at` (ms since the epoch). */
  const setClock = (at: number) => writeFileSync(clockFile, String(Math.round(at - Date.now())))
  writeFileSync(clockFile, '0')

  interface StoredKey { kid: string; alg: string; enc: string; signFrom: number; signUntil?: number }
  const record = async (): Promise<StoredKey[]> => (JSON.parse((await redis.get(`${prefix}grantd-keys:set`))!) as { keys: StoredKey[] }).keys

  const jwksOf = async (c: ChildServer): Promise<{ jwks: JSONWebKeySet; cacheControl: string | null }> => {
    const res = await fetch(`${c.url}/.well-known/jwks.json`)
    return { jwks: (await res.json()) as JSONWebKeySet, cacheControl: res.headers.get('cache-control') }
  }
  const kids = async (c: ChildServer): Promise<string[]> => (await jwksOf(c)).jwks.keys.map((k) => String(k.kid)).sort()
  const tokenKid = async (c: ChildServer): Promise<string> => {
    const res = await postForm(`${c.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc', 'svc-secret') })
    if (res.status !== 200) throw new Error(res.text)
    return String(decodeProtectedHeader(String(res.json.access_token)).kid)
  }
  /** Both processes converge (pollSeconds: 1) well within the SPEC's 60 s. */
  async function until(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
    const deadline = Date.now() + ms
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
      await new Promise((r) => setTimeout(r, 200))
    }
  }

  t.test('two processes, one Redis: one key set, one rotation published before it signs, the retired key kept until its tokens expire', async (t) => {
    const env = { GRANTD_TEST_CLOCK_FILE: clockFile }
    // Started together on an empty store: only one may create the keys (Store.add lock).
    const [a, b] = await Promise.all([startCli(configFile, { env }), startCli(configFile, { env })])
    t.teardown(async () => { await a.stop(); await b.stop() })

    const first = await record()
    t.same(first.map((k) => k.alg).sort(), ['ES256', 'RS256'], 'exactly one key per alg was created')
    t.same(await kids(a), await kids(b), 'both publish the same JWKS')
    t.same(await kids(a), first.map((k) => k.kid).sort())
    const es1 = first.find((k) => k.alg === 'ES256')!
    t.equal(await tokenKid(a), es1.kid)
    t.equal(await tokenKid(b), es1.kid)
    // A token from one process verifies with the other's JWKS.
    const cross = await postForm(`${a.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc', 'svc-secret') })
    await t.resolves(jwtVerify(String(cross.json.access_token), createLocalJWKSet((await jwksOf(b)).jwks), { issuer: 'http://127.0.0.1' }))

    // Private keys at rest: encrypted; the schedule is in clear.
    const raw = (await redis.get(`${prefix}grantd-keys:set`))!
    t.notMatch(raw, /"d"\s*:/, 'no private JWK member in the store')
    t.notMatch(raw, /"kty"/, 'no JWK in clear at all')
    t.match((await jwksOf(a)).cacheControl, /max-age=3600/, 'JWKS caches refresh far inside the one-day publish-ahead')

    // Day 3 + 1 min (rotateDays 4, publish-ahead 1 day): the successor is published, not signing.
    setClock(es1.signFrom + 3 * DAY + 60_000)
    await until('the successor is published by both', async () => (await kids(a)).length === 4 && (await kids(b)).length === 4)
    const second = await record()
    t.equal(second.length, 4, 'one successor per alg, created once')
    const es2 = second.find((k) => k.alg === 'ES256' && k.kid !== es1.kid)!
    const es1Now = second.find((k) => k.kid === es1.kid)!
    t.ok(es2.signFrom - (es1.signFrom + 3 * DAY + 60_000) >= DAY, 'it signs no sooner than a full day after its publication')
    t.equal(es1Now.signUntil, es2.signFrom, 'the old key signs until the new one starts')
    t.same(await kids(a), await kids(b))
    t.equal(await tokenKid(a), es1.kid, 'the published successor does not sign yet')
    t.equal(await tokenKid(b), es1.kid)

    // Past its start: both processes sign with it; the old key is still published (retired).
    setClock(es2.signFrom + 1000)
    await until('both sign with the new key', async () => (await tokenKid(a)) === es2.kid && (await tokenKid(b)) === es2.kid)
    t.ok((await kids(a)).includes(es1.kid), 'the retired key stays published')
    t.ok((await kids(b)).includes(es1.kid))

    // Tokens live 300 s: still published just before the last one it signed can have expired…
    setClock(es1Now.signUntil! + 300_000)
    await new Promise((r) => setTimeout(r, 2500))
    t.ok((await kids(a)).includes(es1.kid), 'kept while a token it signed may still be valid')
    t.ok((await kids(b)).includes(es1.kid))
    // …and gone once every such token has expired (+ skew and poll lag).
    setClock(es1Now.signUntil! + 300_000 + 130_000)
    await until('the retired key is removed by both', async () => !(await kids(a)).includes(es1.kid) && !(await kids(b)).includes(es1.kid))
    t.same(await kids(a), await kids(b), 'and they still agree')
    t.equal(await tokenKid(a), es2.kid)
  })

  t.test('keys.source store: config errors', async (t) => {
    const { validateConfig } = await import('@grantd/core')
    t.throws(() => validateConfig({ keys: { source: 'store' } }, dir), /keys\.secret: keys\.source "store" needs keys\.secret or cookies\.keys/)
    t.throws(() => validateConfig({ keys: { source: 'store', rotateDays: 2, secret: 'x'.repeat(32) } }, dir), /keys\.rotateDays: must be between 4 and 3650/)
    t.throws(() => validateConfig({ keys: { source: 'store', pollSeconds: 61, secret: 'x'.repeat(32) } }, dir), /keys\.pollSeconds: must be between 1 and 60/)
    t.throws(() => validateConfig({ keys: { source: 'store', algs: ['HS256'], secret: 'x'.repeat(32) } }, dir), /keys\.algs\[0\]: expected one of/)
    t.throws(() => validateConfig({ keys: { source: 'store', file: 'k.json', secret: 'x'.repeat(32) } }, dir), /keys\.file: unknown key/)
    t.throws(() => validateConfig({ keys: { source: 'vault' } }, dir), /keys\.source: expected "file" or "store"/)
    t.throws(() => validateConfig({ keys: { source: 'store', secret: 'short' } }, dir), /keys\.secret: must be at least 32 characters/)
    t.ok(validateConfig({ keys: { source: 'store' }, cookies: { keys: ['a-cookie-key-of-16+'] } }, dir).keyStore, 'cookies.keys encrypt by default')
  })
}
