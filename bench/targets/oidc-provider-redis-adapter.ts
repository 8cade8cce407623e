/**
 * A Redis adapter for node-oidc-provider with the data model of the project's own example
 * (example/adapters/redis.js in panva/node-oidc-provider), written for this benchmark:
 * one key per model instance under `<prefix><Model>:<id>`; consumable models (codes,
 * refresh tokens) as a hash with the JSON payload and a `consumed` field; grantable
 * models' keys listed under `grant:<grantId>` so a grant can be revoked; `uid:` and
 * `userCode:` indexes. Each upsert is one MULTI, preceded (for grantable models) by a TTL
 * read of the grant list, as in the example. Input: REDIS_URL; keys under `oidc-bench:`.
 */
import { Redis } from 'ioredis'

let connection: Redis | undefined
/** Connected on first use, so importing this file (the memory-adapter target does) opens nothing. */
function redis(): Redis {
  connection ??= new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { keyPrefix: 'oidc-bench:' })
  return connection
}

const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest'])
const CONSUMABLE = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest'])

type Payload = Record<string, unknown> & { grantId?: string; userCode?: string; uid?: string }

export default class RedisAdapter {
  constructor(private readonly name: string) {}

  private key(id: string): string {
    return `${this.name}:${id}`
  }

  async upsert(id: string, payload: Payload, expiresIn: number): Promise<void> {
    const key = this.key(id)
    const multi = redis().multi()
    if (CONSUMABLE.has(this.name)) multi.hset(key, { payload: JSON.stringify(payload) })
    else multi.set(key, JSON.stringify(payload))
    if (expiresIn) multi.expire(key, expiresIn)
    if (GRANTABLE.has(this.name) && payload.grantId) {
      const grantKey = `grant:${payload.grantId}`
      multi.rpush(grantKey, key)
      const ttl = await redis().ttl(grantKey)
      if (expiresIn > ttl) multi.expire(grantKey, expiresIn)
    }
    if (payload.userCode) multi.set(`userCode:${payload.userCode}`, id, 'EX', expiresIn)
    if (payload.uid) multi.set(`uid:${payload.uid}`, id, 'EX', expiresIn)
    await multi.exec()
  }

  async find(id: string): Promise<Payload | undefined> {
    if (CONSUMABLE.has(this.name)) {
      const data = await redis().hgetall(this.key(id))
      if (!data || Object.keys(data).length === 0 || data.payload === undefined) return undefined
      const { payload, ...rest } = data
      return { ...rest, ...(JSON.parse(payload) as Payload) }
    }
    const data = await redis().get(this.key(id))
    return data ? (JSON.parse(data) as Payload) : undefined
  }

  async findByUid(uid: string): Promise<Payload | undefined> {
    const id = await redis().get(`uid:${uid}`)
    return id ? this.find(id) : undefined
  }

  async findByUserCode(userCode: string): Promise<Payload | undefined> {
    const id = await redis().get(`userCode:${userCode}`)
    return id ? this.find(id) : undefined
  }

  async destroy(id: string): Promise<void> {
    await redis().del(this.key(id))
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    const grantKey = `grant:${grantId}`
    // The list holds the un-prefixed keys (ioredis prefixes key arguments, not values); DEL prefixes them again.
    const keys = await redis().lrange(grantKey, 0, -1)
    const multi = redis().multi()
    for (const k of keys) multi.del(k)
    multi.del(grantKey)
    await multi.exec()
  }

  async consume(id: string): Promise<void> {
    await redis().hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000))
  }
}
