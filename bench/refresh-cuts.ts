/**
 * `npm run --workspace bench refresh-cuts`: CPU per call of the refresh path's own pieces
 * (core/src/tokens/refresh-family.ts on the memory store, the client-auth counter reads), each
 * next to the alternative it replaced, in one process pinned to the server CPU. Writes
 * bench/results/<date>-refresh-cuts.json. The figures behind the refresh-path changes.
 */
import { spawnSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { RefreshFamily } from '../core/dist/tokens/refresh-family.js'
import { FailureCounter } from '../core/dist/ops/throttle.js'
import type { Client, RefreshTokenRecord, TokenSettings } from '../core/dist/interfaces.js'
import { MemoryStore } from '../adapters/store-memory/dist/index.js'
import { RedisStore, connect, parseOptions } from '../adapters/store-redis/dist/index.js'
import { hasTaskset } from './lib/machine.js'
import { isoDate, round } from './lib/stats.js'

const HERE = fileURLToPath(new URL('.', import.meta.url))
if (hasTaskset() && process.env.REFRESH_CUTS_PINNED !== '1') {
  const run = spawnSync('taskset', ['-c', '1', process.execPath, '--import=tsx', fileURLToPath(import.meta.url)], { stdio: 'inherit', env: { ...process.env, REFRESH_CUTS_PINNED: '1' } })
  process.exit(run.status ?? 1)
}

const results: Record<string, number> = {}
function measure(name: string, n: number, fn: () => unknown): void {
  for (let i = 0; i < n / 10; i++) fn()
  const before = process.cpuUsage()
  for (let i = 0; i < n; i++) fn()
  const used = process.cpuUsage(before)
  results[name] = round((used.user + used.system) / n, 3)
}
async function measureAsync(name: string, n: number, fn: () => Promise<unknown>): Promise<void> {
  let left = n / 10
  const lanes = (): Promise<void[]> => Promise.all(Array.from({ length: 32 }, async () => { while (left-- > 0) await fn() }))
  await lanes()
  left = n
  const before = process.cpuUsage()
  await lanes()
  const used = process.cpuUsage(before)
  results[name] = round((used.user + used.system) / n, 2)
}

// A record shaped like the flows benchmark's (code flow with a session, openid + offline_access).
const record: RefreshTokenRecord = {
  client_id: 'web', sub: 'u-alice', scope: ['openid', 'profile', 'email', 'offline_access'], grant_id: 'BulZz8udECNaMTxdQIfLuA',
  context: { raw: [] }, session: { sid: 'YuWcguQPni4YbyhtabcEUQ', auth_time: 1796031167, amr: ['pwd'] }, iat: 1796031167, exp: 1798623167,
}
const raw = JSON.stringify(record)
for (let rep = 0; rep < 2; rep++) {
  measure('tombstone: parse + JSON.stringify({ rotated_at, record }) (before)', 300_000, () => JSON.stringify({ rotated_at: Date.now(), record: JSON.parse(raw) as RefreshTokenRecord }))
  measure('tombstone: parse + text around the stored JSON (now)', 300_000, () => { JSON.parse(raw); return `{"rotated_at":${Date.now()},"record":${raw}}` })
}

const settings = { accessTokenTtl: 300, idTokenTtl: 300, codeTtl: 60, refreshTokenTtl: 2_592_000, refreshTokenRotation: true, refreshTokenReuseInterval: 0, accessTokenFormat: 'jwt', tenantClaim: 'tenant' } as unknown as TokenSettings
const webClient = { client_id: 'web', confidential: true } as unknown as Client
const store = new MemoryStore(3_600_000)
const { iat: _iat, exp: _exp, ...issueInput } = record
void _iat
void _exp
/*
 * One rotation, sequential, one chain. `spend then put`: RefreshFamily.redeem spends the token at once (consume + tombstone),
 * then issue puts the successor — two store writes, the path before Store.rotate. `one rotate call`: a token request's
 * RefreshRotation, whose redeem reads and checks and whose issue spends, leaves the tombstone and stores the successor
 * in one Store.rotate call. Both alternate in one process; the same chain lengths.
 */
async function rotations(family: RefreshFamily, n: number, perRequest: boolean): Promise<number> {
  let token = await family.issue(issueInput, settings.refreshTokenTtl)
  const before = process.cpuUsage()
  for (let i = 0; i < n; i++) {
    const lane = perRequest ? family.forRequest() : family
    if (!(await lane.redeem(token, webClient, () => undefined))) throw new Error('rotation chain broke')
    token = await lane.issue(issueInput, settings.refreshTokenTtl)
  }
  const used = process.cpuUsage(before)
  return round((used.user + used.system) / n, 2)
}
{
  // A fresh store for each chain: every rotation leaves a tombstone, and a bigger Map costs more per call.
  const fresh = (): RefreshFamily => new RefreshFamily(new MemoryStore(3_600_000), settings)
  await rotations(fresh(), 5000, false)
  await rotations(fresh(), 5000, true)
  for (let rep = 0; rep < 3; rep++) {
    results['one rotation, memory store: spend then put (before)'] = await rotations(fresh(), 50_000, false)
    results['one rotation, memory store: one rotate call (now)'] = await rotations(fresh(), 50_000, true)
  }
}

// SPEC §9 client-auth throttle: the two counter reads every secret-authenticated request makes.
const counters = new FailureCounter(store, 20, 900)
for (let rep = 0; rep < 2; rep++) {
  await measureAsync('client auth: two isOver counter reads, memory store (nothing failed)', 200_000, () => Promise.all([counters.isOver('throttle:client:x'), counters.isOver('throttle:client-addr:y')]))
}

// The same on Redis (REDIS_URL, else the local one; a prefix of this run's own, deleted after): the client's CPU for
// the two reads, auto-pipelined into one round trip, and the wall time of that round trip.
{
  const prefix = `grantd-refresh-cuts-${process.pid}:`
  const options = parseOptions({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix })
  const client = connect(options)
  const redisStore = new RedisStore(client, prefix)
  const redisCounters = new FailureCounter(redisStore, 20, 900)
  const reads = (): Promise<unknown> => Promise.all([redisCounters.isOver('throttle:client:x'), redisCounters.isOver('throttle:client-addr:y')])
  for (let rep = 0; rep < 2; rep++) await measureAsync('client auth: two isOver counter reads, store-redis (one pipelined round trip), client CPU', 20_000, reads)
  const n = 2000
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) await reads()
  results['client auth: two isOver counter reads, store-redis, wall µs per sequential call (loopback RTT)'] = round(Number(process.hrtime.bigint() - t0) / 1000 / n, 1)
  const family = new RefreshFamily(redisStore, settings)
  await rotations(family, 500, false)
  await rotations(family, 500, true)
  for (let rep = 0; rep < 2; rep++) {
    for (const perRequest of [false, true]) {
      const label = perRequest ? 'one rotate call: 2 round trips (now)' : 'spend then put: 3 round trips (before)'
      const t0 = process.hrtime.bigint()
      results[`one rotation, store-redis, ${label}, client CPU`] = await rotations(family, 5000, perRequest)
      results[`one rotation, store-redis, ${label}, wall µs per sequential rotation`] = round(Number(process.hrtime.bigint() - t0) / 1000 / 5000, 1)
    }
  }
  const keys = await client.keys(`${prefix}*`)
  if (keys.length > 0) await client.del(...keys)
  await redisStore.close()
}

const width = Math.max(...Object.keys(results).map((k) => k.length))
for (const [name, micros] of Object.entries(results)) process.stdout.write(`${name.padEnd(width)}  ${String(micros).padStart(8)} µs${name.includes("wall") ? "" : " CPU"}\n`)
const out = process.env.BENCH_OUT ?? join(HERE, 'results', `${isoDate()}-refresh-cuts.json`)
await writeFile(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, note: 'CPU microseconds per call on the server CPU (taskset -c 1); the last of two repetitions', results }, null, 2) + '\n')
process.stdout.write(`wrote ${out}\n`)
process.exit(0)
