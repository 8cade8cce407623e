import t from 'tap'
import { randomBytes } from 'node:crypto'
import { connect, parseOptions, RedisStore } from '@grantd/store-redis'
import { storeContract } from '../../../test/helpers/store-contract.js'
import { findRedis } from '../../../test/helpers/redis.js'

const redis = await findRedis()
if (!redis) {
  t.skip('no Redis available (see notice above)', () => {})
} else {
  const stores: RedisStore[] = []
  t.teardown(async () => {
    for (const s of stores) {
      // Leave the shared Redis as we found it: drop this run's keys only.
      const client = s.client
      const keys = await client.keys(`${(s as unknown as { prefix: string }).prefix}*`)
      if (keys.length) await client.del(...keys)
      await s.close()
    }
    await redis.stop()
  })
  storeContract(t, 'redis', async () => {
    const prefix = `grantd-test:${randomBytes(6).toString('hex')}:`
    const store = new RedisStore(connect(parseOptions({ url: redis.url, prefix })), prefix)
    stores.push(store)
    return store
  })

  t.test('options are validated with the key named', async (t) => {
    t.throws(() => parseOptions({ url: 'http://x' }), /url: expected redis/)
    t.throws(() => parseOptions({ url: 'redis://a', cluster: ['redis://b:1'] }), /choose one/)
    t.throws(() => parseOptions({ sentinels: [{ host: 'a', port: 1 }] }), /name: the Sentinel/)
    t.throws(() => parseOptions({ prefix: 'a{b}' }), /prefix:/)
    t.throws(() => parseOptions({ nope: 1 }), /nope: unknown key/)
    t.throws(() => parseOptions({ cluster: [{ host: 'a' }] }), /cluster\[0\]/)
    t.throws(() => parseOptions({ autoPipelining: 'yes' }), /autoPipelining: expected boolean/)
    t.throws(() => parseOptions({ commandTimeoutMs: 10 }), /commandTimeoutMs: must be between 50 and 60000/)
    t.throws(() => parseOptions({ commandTimeoutMs: 100.5 }), /commandTimeoutMs: expected integer, got number/)
    t.same(parseOptions({}).url, 'redis://127.0.0.1:6379')
    t.equal(parseOptions({}).autoPipelining, true, 'auto-pipelining is on by default')
  })

  t.test('an error Redis answers about the data is not a 503', async (t) => {
    const prefix = `grantd-test:${randomBytes(6).toString('hex')}:`
    const store = new RedisStore(connect(parseOptions({ url: redis.url, prefix })), prefix)
    stores.push(store)
    await store.put('counter', 'not a number', 60)
    const err = await store.increment('counter', 60).then(() => undefined, (e: unknown) => e)
    t.ok(err instanceof Error, 'increment of a non-number fails')
    t.not((err as Error).name, 'StoreUnavailableError', 'as the error Redis gave (a bug), not as "unavailable"')
    const decErr = await store.decrement('counter').then(() => undefined, (e: unknown) => e)
    t.ok(decErr instanceof Error, 'decrement of a non-number fails too')
    t.not((decErr as Error).name, 'StoreUnavailableError')
    t.equal(await store.get('counter'), 'not a number', 'and leaves the value alone')
  })

  t.test('an unreachable Redis rejects with StoreUnavailableError, and nothing is left unhandled', async (t) => {
    const { freePort } = await import('../../../test/helpers/server.js')
    const url = `redis://127.0.0.1:${await freePort()}`
    const store = new RedisStore(connect(parseOptions({ url, prefix: 'nowhere:', connectTimeoutMs: 200, commandTimeoutMs: 500 })), 'nowhere:', 500)
    const unhandled: unknown[] = []
    const onUnhandled = (e: unknown) => { unhandled.push(e) }
    process.on('unhandledRejection', onUnhandled)
    t.teardown(() => { process.off('unhandledRejection', onUnhandled) })
    for (const [what, call] of [
      ['get', () => store.get('k')], ['put', () => store.put('k', 'v', 60)], ['consume', () => store.consume('k', { family: 'f' })],
      ['revokeFamily', () => store.revokeFamily('f', 60)], ['ping', () => store.ping()], ['decrement', () => store.decrement('k')],
    ] as const) {
      const started = Date.now()
      const err = await (call as () => Promise<unknown>)().then(() => undefined, (e: unknown) => e)
      t.equal((err as Error | undefined)?.name, 'StoreUnavailableError', `${what} rejects with StoreUnavailableError`)
      t.ok(Date.now() - started < 1500, `${what} fails within 1.5 s`)
    }
    await store.close()
    await new Promise((r) => setTimeout(r, 50))
    t.same(unhandled, [], 'no unhandled rejection')
  })
}
