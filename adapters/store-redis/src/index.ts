import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis'
import { definePlugin, option, StoreUnavailableError, type ConsumeOptions, type EntryOptions, type IndexChange, type Logger, type RotateOptions, type Store } from '@grantd/core'

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
  /**
   * Send the commands of all requests issued in one event-loop tick as one pipeline
   * (ioredis `enableAutoPipelining`): fewer writes and wake-ups under load.
   */
  autoPipelining: boolean
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

const CONSUME_LEAVING_FAMILY = `
redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[2])
redis.call('SADD', KEYS[2], KEYS[3])
if redis.call('TTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
local v = redis.call('GETDEL', KEYS[1])
if v then redis.call('SREM', KEYS[2], KEYS[1]) end
return v`

/*
 * Refresh-token rotation in one step: CONSUME_LEAVING_FAMILY, then — only for the caller
 * that got the value — the successor (KEYS[4]) is stored in the family. The member set
 * lives as long as the longest-lived of them.
 */
const ROTATE_FAMILY = `
redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[2])
redis.call('SADD', KEYS[2], KEYS[3])
local v = redis.call('GETDEL', KEYS[1])
local ttl = tonumber(ARGV[2])
if v then
  redis.call('SREM', KEYS[2], KEYS[1])
  redis.call('SET', KEYS[4], ARGV[3], 'EX', ARGV[4])
  redis.call('SADD', KEYS[2], KEYS[4])
  ttl = math.max(ttl, tonumber(ARGV[4]))
end
if redis.call('TTL', KEYS[2]) < ttl then redis.call('EXPIRE', KEYS[2], ttl) end
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

/*
 * Gives back one reservation of a brute-force counter: DECR keeps the key's TTL; an absent
 * counter is not created (it would outlive nothing), and a counter never goes below zero.
 */
const DECREMENT = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
if tonumber(v) == nil then return redis.error_reply('ERR value is not an integer or out of range') end
if tonumber(v) <= 0 then return 0 end
return redis.call('DECR', KEYS[1])`

/*
 * Store.indexUpdate: a JSON array of {id, exp, ...} members updated in one atomic step.
 * ARGV: the JSON text of the id to drop, the member to append ('' for none), its exp, now,
 * the cap. The core writes every member as {"id":…,"exp":…,…} (id first, exp second), so
 * the script walks the array's text instead of decoding it: a member starts at `{"id":"`
 * (a string cannot hold an unescaped quote, so that text, and `},{"id":"` and `","exp":`,
 * occur only where a member or its exp starts) and is kept as it is. A value in any other
 * shape is decoded with cjson and rewritten in that shape. Decoding and re-encoding a
 * 200-member list (24 KB) cost Redis ~0.3 ms per update; the walk, copying runs of kept
 * members as one piece, ~0.1 ms. The common update — a new id appended to a list whose
 * first (oldest) member is live — skips the walk: one search says the id is not there, the
 * member boundaries are counted for the cap, and the text is appended to; expired members
 * further on stay (readers skip them) until the first member expires and a walk prunes.
 * Sessions' members are appended in time order with one lifetime, so that is rare.
 */
const INDEX_UPDATE = `
local raw = redis.call('GET', KEYS[1])
local idjson = ARGV[1]
local now = tonumber(ARGV[4])
local cap = tonumber(ARGV[5])
local starts, stops, exps, texts = {}, {}, {}, nil
local n = 0
local fast = raw ~= false and string.sub(raw, 1, 8) == '[{"id":"' and string.sub(raw, -2) == '}]'
if fast and ARGV[2] ~= '' then
  local q = string.find(raw, '","exp":', 9, true)
  local nx = string.find(raw, '},{"id":"', 9, true)
  local e = q and (not nx or q < nx) and tonumber(string.match(raw, '^[-+.%deE]+', q + 8))
  if e and e > now and not string.find(raw, '{"id":' .. idjson .. ',"exp":', 1, true) then
    local bounds = {}
    while nx do
      bounds[#bounds + 1] = nx
      nx = string.find(raw, '},{"id":"', nx + 9, true)
    end
    local count = #bounds + 1
    local drop = count + 1 - cap
    local value
    if drop >= count then
      value = '[' .. ARGV[2] .. ']'
    elseif drop > 0 then
      value = '[' .. string.sub(raw, bounds[drop] + 2, #raw - 1) .. ',' .. ARGV[2] .. ']'
    else
      value = string.sub(raw, 1, #raw - 1) .. ',' .. ARGV[2] .. ']'
    end
    local ttl = redis.call('TTL', KEYS[1])
    local need = math.ceil(tonumber(ARGV[3]) - now)
    if ttl < need then ttl = need end
    redis.call('SET', KEYS[1], value, 'EX', math.max(1, ttl))
    return math.min(count + 1, cap)
  end
end
if fast then
  local len = #raw
  local pos = 2
  while true do
    local q = string.find(raw, '","exp":', pos + 7, true)
    local nx = string.find(raw, '},{"id":"', pos + 7, true)
    local stop = nx or (len - 1)
    if not q or q > stop then fast = false break end
    local e = tonumber(string.match(raw, '^[-+.%deE]+', q + 8))
    if not e then fast = false break end
    if e > now and not (q - pos - 5 == #idjson and string.sub(raw, pos + 6, q) == idjson) then
      n = n + 1
      starts[n] = pos
      stops[n] = stop
      exps[n] = e
    end
    if not nx then break end
    pos = nx + 2
  end
end
if raw and not fast then
  n, exps, texts = 0, {}, {}
  local ok, list = pcall(cjson.decode, raw)
  if ok and type(list) == 'table' then
    for _, m in ipairs(list) do
      if type(m) == 'table' and type(m.id) == 'string' and type(m.exp) == 'number' and m.exp > now and cjson.encode(m.id) ~= idjson then
        local t = {'{"id":', cjson.encode(m.id), ',"exp":', cjson.encode(m.exp)}
        for k, v in pairs(m) do
          if k ~= 'id' and k ~= 'exp' and type(k) == 'string' then t[#t + 1] = ',' .. cjson.encode(k) .. ':' .. cjson.encode(v) end
        end
        t[#t + 1] = '}'
        n = n + 1
        texts[n] = table.concat(t)
        exps[n] = m.exp
      end
    end
  end
end
local adding = ARGV[2] ~= ''
local total = n + (adding and 1 or 0)
if total == 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
local first = 1
if total > cap then first = total - cap + 1 end
local parts = {}
local latest = 0
for i = first, n do
  if exps[i] > latest then latest = exps[i] end
end
if texts then
  for i = first, n do parts[#parts + 1] = texts[i] end
else
  -- Kept members next to each other in the old text are copied as one piece.
  local i = first
  while i <= n do
    local j = i
    while j < n and starts[j + 1] == stops[j] + 2 do j = j + 1 end
    parts[#parts + 1] = string.sub(raw, starts[i], stops[j])
    i = j + 1
  end
end
if adding then
  parts[#parts + 1] = ARGV[2]
  local e = tonumber(ARGV[3])
  if e > latest then latest = e end
end
redis.call('SET', KEYS[1], '[' .. table.concat(parts, ',') .. ']', 'EX', math.max(1, math.ceil(latest - now)))
return total - first + 1`

interface ScriptCommands {
  grantdIndexUpdate(k1: string, idJson: string, member: string, exp: number, now: number, cap: number): Promise<number>
  grantdPutFamily(k1: string, k2: string, value: string, ttl: number): Promise<number>
  grantdAddFamily(k1: string, k2: string, value: string, ttl: number): Promise<number>
  grantdConsumeFamily(k1: string, k2: string): Promise<string | null>
  grantdConsumeLeavingFamily(k1: string, k2: string, k3: string, value: string, ttl: number): Promise<string | null>
  grantdRotateFamily(k1: string, k2: string, k3: string, k4: string, leaveValue: string, leaveTtl: number, nextValue: string, nextTtl: number): Promise<string | null>
  grantdRevokeFamily(k1: string, k2: string, ttl: number): Promise<number>
  grantdIncrement(k1: string, ttl: number): Promise<number>
  grantdDecrement(k1: string): Promise<number>
}

/**
 * Answers that mean "not now" rather than "wrong": a demoted master during a Sentinel
 * failover (READONLY), a node still loading its data, a Cluster reshuffling slots.
 */
const TRANSIENT_REPLY = /^(READONLY|LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY)\b/

/** Errors Redis answered (a bug: wrong type, script error) stay errors; losing Redis is 503. */
function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError' && !TRANSIENT_REPLY.test(err.message)
}

/** A store call waiting for Redis, failed by the watchdog once its deadline passes. */
interface PendingCall {
  readonly deadline: number
  readonly fail: (err: Error) => void
}

/**
 * The Redis store on ioredis: atomic consume with GETDEL, family writes and
 * revocation as Lua scripts within one hash slot, bounded command time.
 */
export class RedisStore implements Store {
  readonly name = 'redis'
  private readonly redis: Client & ScriptCommands
  /*
   * Command deadlines. ioredis' own `commandTimeout` arms and clears a timer per command
   * (dropping it saved 15–30 % of the client-side CPU per store call in a micro-benchmark
   * of the refresh path's calls); one coarse watchdog over
   * the calls in flight gives the same bound — a hung Redis fails a call within
   * commandTimeoutMs plus one watchdog period — for a Set insert per call.
   */
  private readonly pending = new Set<PendingCall>()
  private readonly watchdog: NodeJS.Timeout

  constructor(client: Client, private readonly prefix: string, private readonly commandTimeoutMs = 2000) {
    client.defineCommand('grantdPutFamily', { numberOfKeys: 2, lua: PUT_FAMILY })
    client.defineCommand('grantdAddFamily', { numberOfKeys: 2, lua: ADD_FAMILY })
    client.defineCommand('grantdConsumeFamily', { numberOfKeys: 2, lua: CONSUME_FAMILY })
    client.defineCommand('grantdConsumeLeavingFamily', { numberOfKeys: 3, lua: CONSUME_LEAVING_FAMILY })
    client.defineCommand('grantdRotateFamily', { numberOfKeys: 4, lua: ROTATE_FAMILY })
    client.defineCommand('grantdRevokeFamily', { numberOfKeys: 2, lua: REVOKE_FAMILY })
    client.defineCommand('grantdIncrement', { numberOfKeys: 1, lua: INCREMENT })
    client.defineCommand('grantdDecrement', { numberOfKeys: 1, lua: DECREMENT })
    client.defineCommand('grantdIndexUpdate', { numberOfKeys: 1, lua: INDEX_UPDATE })
    this.redis = client as Client & ScriptCommands
    this.watchdog = setInterval(() => this.expire(), Math.min(100, Math.ceil(commandTimeoutMs / 4)))
    this.watchdog.unref()
  }

  private expire(): void {
    const now = Date.now()
    for (const call of this.pending) {
      if (call.deadline > now) continue
      this.pending.delete(call)
      call.fail(new StoreUnavailableError(`redis: no answer within ${this.commandTimeoutMs} ms`))
    }
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

  private run<T>(op: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const call: PendingCall = { deadline: Date.now() + this.commandTimeoutMs, fail: reject }
      this.pending.add(call)
      const settle = (err: unknown): void => {
        this.pending.delete(call)
        reject(isReplyError(err) ? err : new StoreUnavailableError(`redis: ${describeFailure(err, this.redis)}`, { cause: err }))
      }
      try {
        op().then((value) => {
          this.pending.delete(call)
          resolve(value)
        }, settle)
      } catch (err) {
        settle(err)
      }
    })
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

  async consume(key: string, options?: ConsumeOptions): Promise<string | undefined> {
    const k = this.key(key, options)
    const leave = options?.leave
    if (options?.family !== undefined) {
      const family = options.family
      if (leave) {
        const l = this.key(leave.key, options)
        const ttl = wholeSeconds(leave.ttlSeconds)
        return (await this.run(() => this.redis.grantdConsumeLeavingFamily(k, this.members(family), l, leave.value, ttl))) ?? undefined
      }
      return (await this.run(() => this.redis.grantdConsumeFamily(k, this.members(family)))) ?? undefined
    }
    // Outside a family the two keys may live on different Cluster slots: marker first, then consume.
    if (leave) await this.put(leave.key, leave.value, leave.ttlSeconds)
    return (await this.run(() => this.redis.getdel(k))) ?? undefined
  }

  async rotate(key: string, options: RotateOptions): Promise<string | undefined> {
    const { next, leave } = options
    if (options.family === undefined || leave === undefined) {
      // Outside a family the keys may live on different Cluster slots: consume, then put for the winner.
      const value = await this.consume(key, options)
      if (value !== undefined) await this.put(next.key, next.value, next.ttlSeconds, options)
      return value
    }
    const family = options.family
    const [k, l, n] = [this.key(key, options), this.key(leave.key, options), this.key(next.key, options)]
    const [leaveTtl, nextTtl] = [wholeSeconds(leave.ttlSeconds), wholeSeconds(next.ttlSeconds)]
    return (await this.run(() => this.redis.grantdRotateFamily(k, this.members(family), l, n, leave.value, leaveTtl, next.value, nextTtl))) ?? undefined
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

  async decrement(key: string): Promise<number> {
    return this.run(() => this.redis.grantdDecrement(this.key(key)))
  }

  async indexUpdate(key: string, change: IndexChange): Promise<void> {
    const member = change.member ?? ''
    const exp = change.member === undefined ? 0 : (change.exp ?? (JSON.parse(change.member) as { exp: number }).exp)
    await this.run(() => this.redis.grantdIndexUpdate(this.key(key), JSON.stringify(change.id), member, exp, change.now, change.maxMembers))
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
    clearInterval(this.watchdog)
    closing.add(this.redis)
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
  const expected = 'expected redis://host:port or { host, port }'
  if (typeof value === 'string') {
    let u: URL
    try {
      u = new URL(value)
    } catch {
      return option.fail(path, expected)
    }
    return { host: u.hostname, port: Number(u.port || 6379) }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) option.fail(path, expected)
  const o = value as Record<string, unknown>
  if (typeof o.host !== 'string' || typeof o.port !== 'number') option.fail(path, expected)
  return { host: o.host as string, port: o.port as number }
}

export function parseOptions(raw: unknown): RedisStoreOptions {
  const o = option.object(raw ?? {}, '(options)')
  option.only(o, '(options)', ['url', 'sentinels', 'name', 'cluster', 'prefix', 'commandTimeoutMs', 'connectTimeoutMs', 'autoPipelining'])
  const out: RedisStoreOptions = { prefix: 'grantd:', commandTimeoutMs: 2000, connectTimeoutMs: 2000, autoPipelining: true }
  if (o.autoPipelining !== undefined) out.autoPipelining = option.boolean(o.autoPipelining, 'autoPipelining')
  if (o.prefix !== undefined) {
    out.prefix = option.string(o.prefix, 'prefix')
    if (/[{}\s]/.test(out.prefix)) option.fail('prefix', 'expected a string without braces or spaces')
  }
  for (const k of ['commandTimeoutMs', 'connectTimeoutMs'] as const) {
    if (o[k] !== undefined) out[k] = option.integer(o[k], k, 50, 60_000)
  }
  const modes = ['url', 'sentinels', 'cluster'].filter((k) => o[k] !== undefined)
  if (modes.length > 1) option.fail(modes.join(', '), 'choose one of url, sentinels, cluster')
  if (o.url !== undefined) {
    out.url = option.string(o.url, 'url')
    if (!/^rediss?:\/\//.test(out.url)) option.fail('url', 'expected redis://… or rediss://…')
  }
  if (o.sentinels !== undefined) {
    if (!Array.isArray(o.sentinels) || o.sentinels.length === 0) option.fail('sentinels', 'expected a non-empty array')
    out.sentinels = (o.sentinels as unknown[]).map((s, i) => node(s, option.at('sentinels', i)))
    if (o.name === undefined) option.fail('name', 'the Sentinel master group name is required with sentinels')
    out.name = option.string(o.name, 'name')
  } else if (o.name !== undefined) option.fail('name', 'only used with sentinels')
  if (o.cluster !== undefined) {
    if (!Array.isArray(o.cluster) || o.cluster.length === 0) option.fail('cluster', 'expected a non-empty array of nodes')
    out.cluster = (o.cluster as unknown[]).map((s, i) => node(s, option.at('cluster', i)))
  }
  if (modes.length === 0) out.url = 'redis://127.0.0.1:6379'
  return out
}

/** Connect per the options. Failing fast matters more than retrying a request. */
export function connect(options: RedisStoreOptions, log?: Logger): Client {
  const common: RedisOptions = {
    // Command deadlines are the store's watchdog (RedisStore), not a timer per command.
    connectTimeout: options.connectTimeoutMs,
    // A request waits for at most one reconnection attempt, then fails with 503.
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(100 * times, 1000),
    enableReadyCheck: true,
    enableAutoPipelining: options.autoPipelining,
    // A master demoted by a failover answers READONLY: reconnect (asking Sentinel anew).
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
  }
  let client: Client
  if (options.cluster) {
    client = new Cluster(options.cluster as ClusterNode[], {
      redisOptions: common,
      clusterRetryStrategy: (times) => Math.min(100 * times, 1000),
      enableOfflineQueue: true,
      enableAutoPipelining: options.autoPipelining,
    })
  } else if (options.sentinels) {
    client = new Redis({ ...common, sentinels: options.sentinels, name: options.name! })
  } else {
    client = new Redis(options.url!, common)
  }
  watchConnection(client, target(options), log)
  return client
}

/** Clients whose close() was asked for: their connection ending is no news. */
const closing = new WeakSet<Client>()
/** Why the connection is down, while it is (ECONNREFUSED says more than "gave up"). */
const lastFailure = new WeakMap<Client, string>()

/** Where the store connects, for log lines: never the URL itself (it may hold a password). */
function target(options: RedisStoreOptions): string {
  if (options.cluster) return `cluster ${options.cluster.map((n) => `${n.host}:${n.port}`).join(',')}`
  if (options.sentinels) return `sentinel master "${options.name}"`
  const u = new URL(options.url!)
  return `${u.hostname}:${u.port || 6379}`
}

/**
 * ioredis reports every failed reconnect and names its own options in some messages
 * ("Refer to maxRetriesPerRequest option"); a request or a log line gets grantd's words.
 */
export function describeFailure(err: unknown, client?: Client): string {
  if (!(err instanceof Error)) return 'failed'
  if (err.name === 'MaxRetriesPerRequestError' || /enableOfflineQueue|maxRetriesPerRequest|Connection is closed/i.test(err.message)) {
    const why = client && lastFailure.get(client)
    return why ? `not connected: ${why}` : 'not connected'
  }
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ECONNREFUSED') return 'connection refused'
  if (code === 'ETIMEDOUT' || /timed? ?out/i.test(err.message)) return 'connection timed out'
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found'
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'connection reset'
  if (/NOAUTH|WRONGPASS|invalid password|invalid username-password/i.test(err.message)) return 'authentication refused'
  // Anything else: the first line, without option names.
  return err.message.split('\n')[0]!.replace(/\b(?:Refer to|see) .*option.*$/i, '').trim() || 'failed'
}

/**
 * One log line when the connection is lost and one when it is back, however many
 * reconnect attempts happen in between (SPEC §13).
 */
function watchConnection(client: Client, where: string, log?: Logger): void {
  let state: 'connecting' | 'up' | 'down' = 'connecting'
  let since = Date.now()
  let lastReason: string | undefined
  const down = (reason?: string): void => {
    if (reason) {
      lastReason = reason
      lastFailure.set(client, reason)
    }
    if (state === 'down' || closing.has(client)) return
    const wasUp = state === 'up'
    state = 'down'
    since = Date.now()
    log?.warn({ store: 'redis', server: where, ...(lastReason ? { reason: lastReason } : {}) },
      wasUp ? 'store connection lost; requests that need the store fail with 503 until it is back' : 'store not reachable; retrying in the background')
  }
  client.on('ready', () => {
    if (state === 'down') log?.info({ store: 'redis', server: where, downSeconds: Math.round((Date.now() - since) / 100) / 10 }, 'store connection restored')
    state = 'up'
    lastReason = undefined
    lastFailure.delete(client)
  })
  client.on('error', (err: Error) => down(describeFailure(err)))
  client.on('close', () => down())
}

export default definePlugin({
  name: 'store-redis',
  options: parseOptions,
  register(host) {
    const store = new RedisStore(connect(host.options, host.log), host.options.prefix, host.options.commandTimeoutMs)
    host.store(store)
  },
})
