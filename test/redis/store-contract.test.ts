/**
 * The store contract suite (test/helpers/store-contract.ts) against the memory store and a
 * single Redis (Sentinel and Cluster run it in their own files).
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { MemoryStore } from '@grantd/store-memory'
import { connect, RedisStore } from '@grantd/store-redis'
import { storeContract } from '../helpers/store-contract.js'
import { findRedis } from '../helpers/redis.js'

const memory: MemoryStore[] = []
t.teardown(async () => { for (const s of memory) await s.close() })
storeContract(t, 'memory', async () => {
  const store = new MemoryStore()
  memory.push(store)
  return store
})

const redis = await findRedis()
if (!redis) t.skip('no Redis available (see notice above)', () => {})
else {
  const prefix = `grantd-contract:${randomBytes(4).toString('hex')}:`
  const store = new RedisStore(connect({ url: redis.url, prefix, commandTimeoutMs: 2000, connectTimeoutMs: 2000, autoPipelining: true }), prefix)
  t.teardown(async () => {
    const keys = await store.client.keys(`${prefix}*`)
    if (keys.length > 0) await store.client.del(...keys)
    await store.close()
    await redis.stop()
  })
  storeContract(t, 'redis', async () => store)
}
