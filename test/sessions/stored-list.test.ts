/**
 * The session indexes (a user's sessions, a session's clients) are JSON lists updated under
 * a store lock (core/src/sessions/stored-list.ts). Against the real stores: concurrent
 * additions from independent writers (two Redis connections = two processes) lose nothing.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { MemoryStore } from '@grantd/store-memory'
import { connect, RedisStore } from '@grantd/store-redis'
import type { Store } from '@grantd/core'
import { StoredList } from '../../core/src/sessions/stored-list.js'
import { findRedis } from '../helpers/redis.js'

async function concurrentAdds(t: Test, writers: Store[]): Promise<void> {
  const key = `test-list:${randomBytes(6).toString('hex')}`
  const exp = Math.floor(Date.now() / 1000) + 60
  await Promise.all(Array.from({ length: 40 }, (_, i) => new StoredList(writers[i % writers.length]!).add(key, { id: `m${i}`, exp })))
  const members = await new StoredList(writers[0]!).read(key)
  t.equal(members.length, 40, 'every concurrent addition kept')
  await Promise.all(Array.from({ length: 20 }, (_, i) => new StoredList(writers[(i + 1) % writers.length]!).remove(key, `m${i}`)))
  t.same((await new StoredList(writers[0]!).read(key)).map((m) => m.id).sort(), Array.from({ length: 20 }, (_, i) => `m${i + 20}`).sort(), 'concurrent removals too')
  const taken = await new StoredList(writers[1 % writers.length]!).take(key)
  t.equal(taken.length, 20)
  t.same(await new StoredList(writers[0]!).read(key), [], 'take empties it')
  await new StoredList(writers[0]!).add(key, { id: 'old', exp: Math.floor(Date.now() / 1000) - 1 })
  t.same(await new StoredList(writers[0]!).read(key), [], 'expired members are not listed')
}

t.test('memory store', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  await concurrentAdds(t, [store])
})

/** The store without its optional atomic index update: StoredList's locked read-modify-write. */
function withoutIndexUpdate(store: Store): Store {
  return new Proxy(store, { get: (target, prop) => (prop === 'indexUpdate' ? undefined : Reflect.get(target, prop, target)) })
}

t.test('memory store, locked fallback', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  await concurrentAdds(t, [withoutIndexUpdate(store)])
})

const redis = await findRedis()
if (!redis) t.skip('no Redis available (see notice above)', () => {})
else {
  t.teardown(() => redis.stop())
  t.test('two Redis connections', async (t) => {
    const prefix = `grantd-list:${randomBytes(4).toString('hex')}:`
    const options = { url: redis.url, prefix, commandTimeoutMs: 2000, connectTimeoutMs: 2000, autoPipelining: true }
    const a = new RedisStore(connect(options), prefix)
    const b = new RedisStore(connect(options), prefix)
    t.teardown(async () => { await a.close(); await b.close() })
    await concurrentAdds(t, [a, b])
  })
  t.test('two Redis connections, locked fallback', async (t) => {
    const prefix = `grantd-list:${randomBytes(4).toString('hex')}:`
    const options = { url: redis.url, prefix, commandTimeoutMs: 2000, connectTimeoutMs: 2000, autoPipelining: true }
    const a = new RedisStore(connect(options), prefix)
    const b = new RedisStore(connect(options), prefix)
    t.teardown(async () => { await a.close(); await b.close() })
    await concurrentAdds(t, [withoutIndexUpdate(a), withoutIndexUpdate(b)])
  })
}

