import t from 'tap'
import { randomBytes } from 'node:crypto'
import { connect, parseOptions, RedisStore } from '@grantd/store-redis'
import { storeContract } from '../../../test/helpers/store-contract.js'
import { findRedis } from '../../../test/helpers/redis.js'

const redis = await findRedis()
if (!redis) {
  t.skip('no Redis available (see notice above)')
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
    t.same(parseOptions({}).url, 'redis://127.0.0.1:6379')
  })
}
