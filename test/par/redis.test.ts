/**
 * PAR across processes sharing Redis (SPEC §8): a request pushed at one process is redeemed
 * at another, once; the store holds it only under the SHA-256 of the request_uri, never the
 * request_uri itself (SPEC §9), and spends it.
 */
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { CookieJar, get, loginForm, pkcePair, post, startFlowServer, WEB_REDIRECT } from '../authorization-code/flow.js'
import { basic, postForm, startServer } from '../helpers/server.js'
import { findRedis } from '../helpers/redis.js'
import { parAuthorizeUrl, parConfig, push, webRequest } from './fixtures.js'

const redis = await findRedis()
if (!redis) {
  t.skip('no Redis available (see notice above)', () => {})
} else {
  t.teardown(() => redis.stop())

  t.test('pushed at one process, redeemed at another, exactly once; stored only as a hash', async (t) => {
    const prefix = `grantd-par-test:${randomBytes(4).toString('hex')}:`
    const config = parConfig({ extra: { store: { use: '@grantd/store-redis', options: { url: redis.url, prefix } } } })
    const a = await startFlowServer(config)
    t.teardown(a.close)
    const b = await startServer({ ...config, issuer: a.server.config.issuer })
    t.teardown(b.close)
    const client = new Redis(redis.url)
    t.teardown(async () => {
      const left = await client.keys(`${prefix}*`)
      if (left.length > 0) await client.del(...left)
      client.disconnect()
    })
    const keysAndValues = async (): Promise<string[]> => {
      const keys = await client.keys(`${prefix}*`)
      const values = await Promise.all(keys.map(async (k) => (await client.type(k)) === 'string' ? (await client.get(k)) ?? '' : ''))
      return [...keys, ...values]
    }

    const { verifier, challenge } = pkcePair()
    const pushed = await push(a, 'web', webRequest({ code_challenge: challenge, state: 'shared' }))
    t.equal(pushed.status, 201, pushed.text)
    const requestUri = pushed.json.request_uri as string
    const tail = requestUri.slice('urn:ietf:params:oauth:request_uri:'.length)

    const stored = await keysAndValues()
    t.notOk(stored.some((s) => s.includes(tail)), 'neither a key nor a value holds the request_uri')
    const hashed = `${prefix}par:${createHash('sha256').update(requestUri).digest('base64url')}`
    t.ok(stored.includes(hashed), 'the record is keyed by the SHA-256 of the request_uri')
    const ttl = await client.ttl(hashed)
    t.ok(ttl > 0 && ttl <= 60, `expires with expires_in (ttl ${ttl})`)

    // B redeems what A stored; the login form posts to the configured issuer (A).
    const jar = new CookieJar()
    const page = await get(parAuthorizeUrl(b, 'web', requestUri), jar)
    t.equal(page.status, 200, 'login form at the other process')
    t.equal(await client.exists(hashed), 0, 'spent at first use')
    t.equal((await get(parAuthorizeUrl(a, 'web', requestUri))).status, 400, 'and refused at the first process too')

    const form = loginForm(page.body)
    const done = await post(form.action, { ...form.fields, username: 'alice', password: 'wonderland' }, jar)
    t.equal(done.location!.searchParams.get('state'), 'shared')
    const code = done.location!.searchParams.get('code')!
    const tokens = await postForm(`${b.url}/connect/token`, { grant_type: 'authorization_code', code, redirect_uri: WEB_REDIRECT, code_verifier: verifier }, { authorization: basic('web', 'web-secret') })
    t.equal(tokens.status, 200, tokens.text)
  })
}
