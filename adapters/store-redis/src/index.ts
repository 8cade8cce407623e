import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis'
import { definePlugin, StoreUnavailableError, type EntryOptions, type Logger, type Store } from '@grantd/core'

export interface RedisStoreOptions {
  /** `redis://[:password@]host:port[/db]` or `rediss://…` for a single node. */
  url?: string
  /** Sentinel: the sentinels and the master group `name`. */
  sentinels?: Array<{ host: string; port: number }>
  name?: string
  /** Redis Cluster: seed nodes (`{ host, port }` or `redis://host:port`). */
  cluster?: Array<{ host: string; port: number }>
  /** Key prefix; several servers may share one Redis with different prefixes. */
  prefix: string
  /** A command that takes longer fails the request with 503 instead of piling up. */
  commandTimeoutMs: number
  connectTimeoutMs: number
}

type Client = Redis | Cluster

/*
 * Family entries live under `{prefix}{<family>}:…`: the braces are a Redis Cluster hash
 * tag, so a family's entries, its member set and its revocation marker share one slot
 * and the scripts below can touch them atomically on a Cluster too.
 */
const PUT_FAMILY = `
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('SADD', KEYS[2], KEYS[1])
if redis.call('TTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return 1`

const ADD_FAMILY = `
if redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'NX') then
  redis.call('SADD', KEYS[2], KEYS[1])
  if redis.call('TTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
  return 1
end
return 0`

const CONSUME_FAMILY = `
local v = redis.call('GETDEL', KEYS[1])
if v then redis.call('SREM', KEYS[2], KEYS[1]) end
return v`

const REVOKE_FAMILY = `
local members = redis.call('SMEMBERS', KEYS[1])
for _, k in ipairs(members) do redis.call('DEL', k) end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])
return #members`

const INCREMENT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n`

interface ScriptCommands {
  grantdPutFamily(k1: string, k2: string, value: string, ttl: number): Promise<number>
  grantdAddFamily(k1: string, k2: string, value: string, ttl: number): Promise<number>
  grantdConsumeFamily(k1: string, k2: string): Promise<string | null>
  grantdRevokeFamily(k1: string, k2: string, ttl: number): Promise<number>
  grantdIncrement(k1: string, ttl: number): Promise<number>
}

/** Errors Redis answered (a bug: wrong type, script error) stay errors; losing Redis is 503. */
function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError'
}

/**
 * The Redis store on ioredis: atomic consume with GETDEL, family writes and
 * revocation as Lua scripts within one hash slot, bounded command time.
 */
export class RedisStore implements Store {
  readonly name = 'redis'
  private readonly redis: Client & ScriptCommands

  constructor(client: Client, private readonly prefix: string) {
    client.defineCommand('grantdPutFamily', { numberOfKeys: 2, lua: PUT_FAMILY })
    client.defineCommand('grantdAddFamily', { numberOfKeys: 2, lua: ADD_FAMILY })
    client.defineCommand('grantdConsumeFamily', { numberOfKeys: 2, lua: CONSUME_FAMILY })
    client.defineCommand('grantdRevokeFamily', { numberOfKeys: 2, lua: REVOKE_FAMILY })
    client.defineCommand('grantdIncrement', { numberOfKeys: 1, lua: INCREMENT })
    this.redis = client as Client & ScriptCommands
  }

  get client(): Client {
    return this.redis
  }

  private key(key: string, options?: EntryOptions): string {
    return options?.family !== undefined ? `${this.prefix}{${options.family}}:${key}` : `${this.prefix}${key}`
  }

  private members(family: string): string {
    return `${this.prefix}{${family}}:#members`
  }

  private revoked(family: string): string {
    return `${this.prefix}{${family}}:#revoked`
  }

  private async run<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op()
    } catch (err) {
      if (isReplyError(err)) throw err
      throw new StoreUnavailableError(`redis: ${(err as Error).message}`, { cause: err })
    }
  }

  async put(key: string, value: string, ttlSeconds: number, options?: EntryOptions): Promise<void> {
    const ttl = wholeSeconds(ttlSeconds)
    const k = this.key(key, options)
    if (options?.family !== undefined) {
      const family = options.family
      await this.run(() => this.redis.grantdPutFamily(k, this.members(family), value, ttl))
    } else {
      await this.run(() => this.redis.set(k, value, 'EX', ttl))
    }
  }

  async add(key: string, value: string, ttlSeconds: number, options?: EntryOptions): Promise<boolean> {
    const ttl = wholeSeconds(ttlSeconds)
    const k = this.key(key, options)
    if (options?.family !== undefined) {
      const family = options.family
      return (await this.run(() => this.redis.grantdAddFamily(k, this.members(family), value, ttl))) === 1
    }
    return (await this.run(() => this.redis.set(k, value, 'EX', ttl, 'NX'))) === 'OK'
  }

  async get(key: string, options?: EntryOptions): Promise<string | undefined> {
    return (await this.run(() => this.redis.get(this.key(key, options)))) ?? undefined
  }

  async consume(key: string, options?: EntryOptions): Promise<string | undefined> {
    const k = this.key(key, options)
    if (options?.family !== undefined) {
      const family = options.family
      return (await this.run(() => this.redis.grantdConsumeFamily(k, this.members(family)))) ?? undefined
    }
    return (await this.run(() => this.redis.getdel(k))) ?? undefined
  }

  async delete(key: string, options?: EntryOptions): Promise<boolean> {
    const k = this.key(key, options)
    if (options?.family !== undefined) {
      const family = options.family
      const removed = await this.run(() => this.redis.grantdConsumeFamily(k, this.members(family)))
      return removed !== null
    }
    return (await this.run(() => this.redis.del(k))) > 0
  }

  async increment(key: string, ttlSeconds: number): Promise<number> {
    return this.run(() => this.redis.grantdIncrement(this.key(key), wholeSeconds(ttlSeconds)))
  }

  async revokeFamily(family: string, ttlSeconds: number): Promise<void> {
    await this.run(() => this.redis.grantdRevokeFamily(this.members(family), this.revoked(family), wholeSeconds(ttlSeconds)))
  }

  async isFamilyRevoked(family: string): Promise<boolean> {
    return (await this.run(() => this.redis.exists(this.revoked(family)))) === 1
  }

  async ping(): Promise<void> {
    await this.run(() => this.redis.ping())
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit()
    } catch {
      this.redis.disconnect()
    }
  }
}

function wholeSeconds(ttl: number): number {
  if (!(ttl > 0)) throw new RangeError('ttlSeconds must be positive')
  return Math.max(1, Math.ceil(ttl))
}

function node(value: unknown, path: string): { host: string; port: number } {
  if (typeof value === 'string') {
    let u: URL
    try {
      u = new URL(value)
    } catch {
      throw new Error(`${path}: expected redis://host:port or { host, port }`)
    }
    return { host: u.hostname, port: Number(u.port || 6379) }
  }
  const o = value as Record<string, unknown>
  if (typeof o !== 'object' || o === null || typeof o.host !== 'string' || typeof o.port !== 'number') throw new Error(`${path}: expected redis://host:port or { host, port }`)
  return { host: o.host, port: o.port }
}

export function parseOptions(raw: unknown): RedisStoreOptions {
  const o = (raw ?? {}) as Record<string, unknown>
  if (typeof o !== 'object' || Array.isArray(o)) throw new Error('expected object')
  const known = ['url', 'sentinels', 'name', 'cluster', 'prefix', 'commandTimeoutMs', 'connectTimeoutMs']
  for (const k of Object.keys(o)) if (!known.includes(k)) throw new Error(`${k}: unknown key`)
  const out: RedisStoreOptions = { prefix: 'grantd:', commandTimeoutMs: 2000, connectTimeoutMs: 2000 }
  if (o.prefix !== undefined) {
    if (typeof o.prefix !== 'string' || /[{}\s]/.test(o.prefix)) throw new Error('prefix: expected a string without braces or spaces')
    out.prefix = o.prefix
  }
  for (const k of ['commandTimeoutMs', 'connectTimeoutMs'] as const) {
    if (o[k] !== undefined) {
      if (typeof o[k] !== 'number' || !Number.isInteger(o[k]) || (o[k] as number) < 50 || (o[k] as number) > 60_000) throw new Error(`${k}: expected an integer between 50 and 60000`)
      out[k] = o[k] as number
    }
  }
  const modes = ['url', 'sentinels', 'cluster'].filter((k) => o[k] !== undefined)
  if (modes.length > 1) throw new Error(`${modes.join(', ')}: choose one of url, sentinels, cluster`)
  if (o.url !== undefined) {
    if (typeof o.url !== 'string' || !/^rediss?:\/\//.test(o.url)) throw new Error('url: expected redis://… or rediss://…')
    out.url = o.url
  }
  if (o.sentinels !== undefined) {
    if (!Array.isArray(o.sentinels) || o.sentinels.length === 0) throw new Error('sentinels: expected a non-empty array')
    out.sentinels = o.sentinels.map((s, i) => node(s, `sentinels[${i}]`))
    if (typeof o.name !== 'string' || o.name === '') throw new Error('name: the Sentinel master group name is required with sentinels')
    out.name = o.name
  } else if (o.name !== undefined) throw new Error('name: only used with sentinels')
  if (o.cluster !== undefined) {
    if (!Array.isArray(o.cluster) || o.cluster.length === 0) throw new Error('cluster: expected a non-empty array of nodes')
    out.cluster = o.cluster.map((s, i) => node(s, `cluster[${i}]`))
  }
  if (modes.length === 0) out.url = 'redis://127.0.0.1:6379'
  return out
}

/** Connect per the options. Failing fast matters more than retrying a request. */
export function connect(options: RedisStoreOptions, log?: Logger): Client {
  const common: RedisOptions = {
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: options.connectTimeoutMs,
    // A request waits for at most one reconnection attempt, then fails with 503.
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(100 * times, 1000),
    enableReadyCheck: true,
  }
  let client: Client
  if (options.cluster) {
    client = new Cluster(options.cluster as ClusterNode[], {
      redisOptions: common,
      clusterRetryStrategy: (times) => Math.min(100 * times, 1000),
      enableOfflineQueue: true,
    })
  } else if (options.sentinels) {
    client = new Redis({ ...common, sentinels: options.sentinels, name: options.name! })
  } else {
    client = new Redis(options.url!, common)
  }
  let lastWarn = 0
  client.on('error', (err: Error) => {
    // ioredis reports every failed reconnect; one line a few seconds is enough.
    const now = Date.now()
    if (now - lastWarn > 5000) {
      lastWarn = now
      log?.warn({ err: err.message }, 'redis connection error')
    }
  })
  return client
}

export default definePlugin({
  name: 'store-redis',
  options: parseOptions,
  register(host) {
    const store = new RedisStore(connect(host.options, host.log), host.options.prefix)
    host.store(store)
  },
})
