/**
 * `npm run --workspace bench refresh-redis`: refresh_token throughput of grantd on Redis
 * with rotation on, next to its floor — Koa + one ES256 signature (jose) + 2 Redis
 * commands (targets/floor-sign-redis-koa.ts) — in one run, in alternating rounds. The
 * target is grantd ≥ 0.8 × the floor.
 *
 * Every request presents the refresh token the previous answer returned (a rotated-out
 * token is refused, so nothing can be replayed: lib/rotating-load-worker.ts). The
 * benchmark runs its own redis-server (no persistence) on a free loopback port, pinned
 * with autocannon to LOAD_CPU (BENCH_REDIS_CPU); each server is pinned to SERVER_CPU. The
 * machine's shared Redis is not touched.
 *
 * Targets: `floor+sign+redis`; `floor+sign+redis7`, the same floor making 7 sequential
 * Redis round trips per request like grantd's refresh (5 extra GETs): what round trips
 * cost; `grantd` (store-redis); and `grantd-memory` (the same config on the memory
 * store: what Redis costs grantd); on request, `grantd-no-autopipelining` (store-redis
 * with `autoPipelining: false`). Server CPU time per request and Redis commands per
 * request (from INFO stats, commands inside Lua scripts included) are reported too.
 *
 * Env: BENCH_ROUNDS (3), BENCH_SECONDS (10), BENCH_WARMUP_SECONDS (5),
 * BENCH_CONNECTIONS (32), BENCH_TARGETS (comma list of target names), BENCH_OUT (file),
 * BENCH_REDIS_CPU (the CPU Redis is pinned to: LOAD_CPU by default, or `none`),
 * BENCH_CPU_PROF_DIR (run the grantd targets under `node --cpu-prof` writing there;
 * summarise a profile with `npm run --workspace bench profile -- FILE`).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { createLocalJWKSet, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify, type JWK } from 'jose'
import { startGrantd, staleBuildWarning } from './lib/grantd.js'
import { loadProblems, type LoadResult } from './lib/load.js'
import { machineFigures } from './lib/machine.js'
import { cpuTimeMs, freePort, pinned, runJson, startServer, type ServerProcess } from './lib/processes.js'
import type { RotatingLoadSpec } from './lib/rotating-load-worker.js'
import { isoDate, median, round } from './lib/stats.js'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const SERVER_CPU = 1
const LOAD_CPU = 0
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 5)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32)
const WORKER = join(HERE, 'lib', 'rotating-load-worker.ts')
const REDIS_CPU = process.env.BENCH_REDIS_CPU === 'none' ? undefined : Number(process.env.BENCH_REDIS_CPU ?? LOAD_CPU)
const PROFILE_DIR = process.env.BENCH_CPU_PROF_DIR
const profileArgs = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []

/** RFC 6749 §6 with client_secret_basic; the seed is a password grant (§4.3) with offline_access. */
const HEADERS: Record<string, string> = {
  'content-type': 'application/x-www-form-urlencoded',
  authorization: `Basic ${Buffer.from('ro:ro-secret').toString('base64')}`,
}
const SEED_BODY = 'grant_type=password&username=alice&password=wonderland&scope=api%20offline_access'
const REFRESH_BODY = 'grant_type=refresh_token&refresh_token={token}'

const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid: 'bench-es256', alg: 'ES256', use: 'sig' }
const privateJwk: JWK = { ...(await exportJWK(privateKey)), kid: 'bench-es256', alg: 'ES256', use: 'sig' }

const workDir = await mkdtemp(join(tmpdir(), 'grantd-bench-refresh-'))

/** The benchmark's own Redis: no persistence, loopback only, next to the load generator by default. */
async function startRedis(): Promise<{ url: string; client: Redis; stop(): Promise<void> }> {
  const port = await freePort()
  const [cmd, args] = pinned(REDIS_CPU, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', workDir])
  const proc = spawn(cmd, args, { stdio: 'ignore' })
  const url = `redis://127.0.0.1:${port}`
  // The server takes a moment to listen; ioredis retries the connection until it does.
  const client = new Redis(url, { retryStrategy: (times) => (times > 50 ? null : 100) })
  client.on('error', () => {})
  await client.ping()
  return {
    url,
    client,
    async stop() {
      client.disconnect()
      if (proc.exitCode === null) {
        const exited = once(proc, 'exit')
        proc.kill('SIGTERM')
        await exited
      }
    },
  }
}

async function writeConfig(port: number, store: Record<string, unknown> | undefined): Promise<string> {
  const dir = await mkdtemp(join(workDir, 'grantd-'))
  await writeFile(join(dir, 'signing.json'), JSON.stringify({ keys: [privateJwk] }), { mode: 0o600 })
  const config = {
    issuer: `http://127.0.0.1:${port}`,
    port,
    host: '127.0.0.1',
    keys: { file: './signing.json' },
    tokens: { accessTokenTtl: 300, refreshTokenTtl: 3600, refreshTokenRotation: true },
    log: { level: 'warn' },
    ...(store ? { store } : {}),
    users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-alice', username: 'alice', password: 'wonderland' }] } },
    plugins: ['@grantd/grant-password', '@grantd/grant-refresh-token'],
    clients: [{ client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password', 'refresh_token'], scope: 'api offline_access' }],
  }
  const file = join(dir, 'grantd.json')
  await writeFile(file, JSON.stringify(config, null, 2))
  return file
}

interface Target {
  name: string
  path: string
  /** Measured only when BENCH_TARGETS names it. */
  optional?: boolean
  start(port: number, redisUrl: string): Promise<ServerProcess>
}

const ALL_TARGETS: Target[] = [
  {
    name: 'floor+sign+redis',
    path: '/token',
    start: (port, redisUrl) => startServer({
      name: 'floor+sign+redis',
      nodeArgs: ['--import=tsx', join(HERE, 'targets', 'floor-sign-redis-koa.ts')],
      port,
      cpu: SERVER_CPU,
      env: { PORT: String(port), REDIS_URL: redisUrl, BENCH_JWK: JSON.stringify(privateJwk) },
      readyPath: '/healthz',
    }),
  },
  {
    name: 'floor+sign+redis7',
    path: '/token',
    start: (port, redisUrl) => startServer({
      name: 'floor+sign+redis7',
      nodeArgs: ['--import=tsx', join(HERE, 'targets', 'floor-sign-redis-koa.ts')],
      port,
      cpu: SERVER_CPU,
      env: { PORT: String(port), REDIS_URL: redisUrl, BENCH_JWK: JSON.stringify(privateJwk), FLOOR_EXTRA_READS: '5' },
      readyPath: '/healthz',
    }),
  },
  {
    name: 'grantd',
    path: '/connect/token',
    start: async (port, redisUrl) => startGrantd({
      name: 'grantd',
      config: await writeConfig(port, { use: '@grantd/store-redis', options: { url: redisUrl, prefix: 'bench:' } }),
      port,
      cpu: SERVER_CPU,
      stdout: 'capture',
      extraNodeArgs: profileArgs,
    }),
  },
  {
    name: 'grantd-no-autopipelining',
    path: '/connect/token',
    optional: true,
    start: async (port, redisUrl) => startGrantd({
      name: 'grantd-no-autopipelining',
      config: await writeConfig(port, { use: '@grantd/store-redis', options: { url: redisUrl, prefix: 'bench-np:', autoPipelining: false } }),
      port,
      cpu: SERVER_CPU,
      stdout: 'capture',
      extraNodeArgs: profileArgs,
    }),
  },
  {
    name: 'grantd-memory',
    path: '/connect/token',
    start: async (port) => startGrantd({ name: 'grantd-memory', config: await writeConfig(port, undefined), port, cpu: SERVER_CPU, stdout: 'capture', extraNodeArgs: profileArgs }),
  },
]

/**
 * Before a target is measured: a seed token must rotate into an ES256 access token that
 * verifies against the benchmark key, and presenting the rotated-out token again must be
 * refused (rotation really is on). Returns a short description of what came back.
 */
async function verifyTarget(url: string): Promise<string> {
  const post = async (body: string) => {
    const res = await fetch(url, { method: 'POST', headers: HEADERS, body })
    return { status: res.status, json: JSON.parse(await res.text()) as Record<string, unknown> }
  }
  const seed = await post(SEED_BODY)
  if (seed.status !== 200 || typeof seed.json.refresh_token !== 'string') throw new Error(`${url}: seed answered ${seed.status} ${JSON.stringify(seed.json)}`)
  const refreshBody = (token: string) => REFRESH_BODY.replace('{token}', encodeURIComponent(token))
  const rotated = await post(refreshBody(seed.json.refresh_token))
  if (rotated.status !== 200 || typeof rotated.json.refresh_token !== 'string' || typeof rotated.json.access_token !== 'string') throw new Error(`${url}: refresh answered ${rotated.status} ${JSON.stringify(rotated.json)}`)
  const header = decodeProtectedHeader(rotated.json.access_token)
  if (header.alg !== 'ES256') throw new Error(`${url}: access token alg is ${String(header.alg)}`)
  const { payload } = await jwtVerify(rotated.json.access_token, createLocalJWKSet({ keys: [publicJwk] }))
  if (payload.client_id !== 'ro' || payload.scope !== 'api offline_access') throw new Error(`${url}: unexpected claims ${JSON.stringify(payload)}`)
  const replay = await post(refreshBody(seed.json.refresh_token))
  if (replay.status !== 400) throw new Error(`${url}: a rotated-out token answered ${replay.status}: rotation is off?`)
  return `200 ES256 ${String(header.typ)} JWT + rotated refresh token (${rotated.json.refresh_token.length} chars); replay → ${replay.status} ${String(replay.json.error)}`
}

const wanted = process.env.BENCH_TARGETS?.split(',').map((s) => s.trim()).filter(Boolean)
const targets = wanted ? ALL_TARGETS.filter((t) => wanted.includes(t.name)) : ALL_TARGETS.filter((t) => !t.optional)
if (targets.length === 0) throw new Error(`BENCH_TARGETS matched nothing; names: ${ALL_TARGETS.map((t) => t.name).join(', ')}`)

const stale = staleBuildWarning()
if (stale) process.stderr.write(`WARNING: ${stale}\n`)
const machine = machineFigures()
if (!machine.taskset) process.stderr.write('WARNING: no taskset: servers, Redis and the load generator are not pinned; figures are noisier\n')
process.stderr.write(`machine: ${machine.cpuModel}, ${machine.cores} cores, node ${machine.node}, ${machine.os}, load ${machine.loadAverageAtStart.join(' ')}\n`)

interface Running { target: Target; server: ServerProcess; url: string; check: string }
const running: Running[] = []
const redis = await startRedis()
// The CLI lets REDIS_URL override the configured url: make sure it names this run's Redis.
process.env.REDIS_URL = redis.url
const stopAll = async (): Promise<void> => {
  await Promise.all(running.map((r) => r.server.stop()))
  await redis.stop()
  await rm(workDir, { recursive: true, force: true })
}
process.on('SIGINT', () => { void stopAll().then(() => process.exit(130)) })

async function redisCommands(): Promise<number> {
  const stats = await redis.client.info('stats')
  return Number(/total_commands_processed:(\d+)/.exec(stats)?.[1] ?? NaN)
}

type Round = LoadResult & { round: number; serverCpuMicrosPerRequest: number | null; redisCommandsPerRequest: number }
const rounds = new Map<string, Round[]>()

const load = (url: string, durationSeconds: number): Promise<LoadResult> => runJson<LoadResult>(['--import=tsx', WORKER], LOAD_CPU, {
  url, headers: HEADERS, seedBody: SEED_BODY, seeds: CONNECTIONS * 2, bodyTemplate: REFRESH_BODY, connections: CONNECTIONS, durationSeconds,
} satisfies RotatingLoadSpec)

try {
  for (const target of targets) {
    const port = await freePort()
    const server = await target.start(port, redis.url)
    running.push({ target, server, url: server.url + target.path, check: '' })
  }
  for (const r of running) {
    r.check = await verifyTarget(r.url)
    process.stderr.write(`check ${r.target.name}: ${r.check}\n`)
  }
  for (const r of running) {
    const warm = await load(r.url, WARMUP_SECONDS)
    const problem = loadProblems(warm)
    if (problem) throw new Error(`${r.target.name} warm-up failed: ${problem}\n${r.server.output().slice(-2000)}`)
    process.stderr.write(`warm-up ${r.target.name}: ${Math.round(warm.requestsPerSecond)} req/s\n`)
  }
  for (let roundNumber = 1; roundNumber <= ROUNDS; roundNumber++) {
    for (const r of running) {
      const cpuBefore = cpuTimeMs(r.server.proc.pid)
      const commandsBefore = await redisCommands()
      const result = await load(r.url, SECONDS)
      const cpuAfter = cpuTimeMs(r.server.proc.pid)
      // Seeding, the closing check and this INFO itself add a few commands: noise below 0.1 per request.
      const commands = (await redisCommands()) - commandsBefore
      const problem = loadProblems(result)
      if (problem) throw new Error(`${r.target.name} round ${roundNumber} is invalid: ${problem}\n${r.server.output().slice(-2000)}`)
      const cpuPerRequest = cpuBefore !== undefined && cpuAfter !== undefined ? round(((cpuAfter - cpuBefore) * 1000) / result.requestsTotal, 1) : null
      const commandsPerRequest = round(commands / result.requestsTotal, 2)
      const list = rounds.get(r.target.name) ?? []
      list.push({ round: roundNumber, ...result, serverCpuMicrosPerRequest: cpuPerRequest, redisCommandsPerRequest: commandsPerRequest })
      rounds.set(r.target.name, list)
      process.stderr.write(`round ${roundNumber} ${r.target.name.padEnd(24)} ${Math.round(result.requestsPerSecond).toString().padStart(6)} req/s  p50 ${result.latencyMs.p50} ms  p99 ${result.latencyMs.p99} ms  ${cpuPerRequest ?? '?'} µs CPU/req  ${commandsPerRequest} Redis cmd/req\n`)
    }
  }
} finally {
  await stopAll()
}

const summary: Record<string, { medianRequestsPerSecond: number; medianP50Ms: number; medianP99Ms: number; medianServerCpuMicrosPerRequest: number | null; redisCommandsPerRequest: number }> = {}
for (const [name, list] of rounds) {
  const cpu = list.flatMap((r) => (r.serverCpuMicrosPerRequest === null ? [] : [r.serverCpuMicrosPerRequest]))
  summary[name] = {
    medianRequestsPerSecond: Math.round(median(list.map((r) => r.requestsPerSecond))),
    medianP50Ms: median(list.map((r) => r.latencyMs.p50)),
    medianP99Ms: median(list.map((r) => r.latencyMs.p99)),
    medianServerCpuMicrosPerRequest: cpu.length > 0 ? round(median(cpu), 1) : null,
    redisCommandsPerRequest: round(median(list.map((r) => r.redisCommandsPerRequest)), 2),
  }
}
const rps = (name: string): number | undefined => summary[name]?.medianRequestsPerSecond
const ratio = (a: string, b: string): number | undefined => {
  const x = rps(a)
  const y = rps(b)
  return x !== undefined && y !== undefined ? round(x / y) : undefined
}
const perRound = (a: string, b: string): number[] => {
  const xs = rounds.get(a) ?? []
  const ys = rounds.get(b) ?? []
  return xs.flatMap((x, i) => (ys[i] ? [round(x.requestsPerSecond / ys[i]!.requestsPerSecond)] : []))
}
const ratios = {
  'grantd/floor+sign+redis': ratio('grantd', 'floor+sign+redis'),
  'grantd-memory/floor+sign+redis': ratio('grantd-memory', 'floor+sign+redis'),
  'grantd/grantd-memory': ratio('grantd', 'grantd-memory'),
  'floor+sign+redis7/floor+sign+redis': ratio('floor+sign+redis7', 'floor+sign+redis'),
  'grantd/floor+sign+redis7': ratio('grantd', 'floor+sign+redis7'),
}
const perRoundRatios = {
  'grantd/floor+sign+redis': perRound('grantd', 'floor+sign+redis'),
  'grantd/grantd-memory': perRound('grantd', 'grantd-memory'),
  'grantd/floor+sign+redis7': perRound('grantd', 'floor+sign+redis7'),
}
const spread = Object.fromEntries([...rounds].map(([name, list]) => {
  const values = list.map((r) => r.requestsPerSecond)
  return [name, round(Math.max(...values) / Math.min(...values) - 1)]
}))
const worstSpread = Math.max(0, ...Object.values(spread))
const loadAverageAtEnd = loadavg().map((n) => round(n, 2))

const report = {
  benchmark: 'refresh_token with rotation, client_secret_basic, ES256 JWT access token, store-redis',
  date: new Date().toISOString(),
  machine,
  setup: {
    connections: CONNECTIONS,
    rounds: ROUNDS,
    secondsPerRound: SECONDS,
    warmupSeconds: WARMUP_SECONDS,
    serverCpu: machine.taskset ? SERVER_CPU : null,
    loadGeneratorCpu: machine.taskset ? LOAD_CPU : null,
    redisCpu: machine.taskset ? REDIS_CPU ?? null : null,
    request: `POST ${REFRESH_BODY} with Authorization: Basic (ro:ro-secret); each request presents the token the previous answer returned`,
    seeds: `${CONNECTIONS * 2} password grants per run, before the clock starts`,
    redis: 'the benchmark\'s own redis-server, no persistence, loopback',
    grantdLogging: 'log.level "warn" (no request lines, like the floor)',
    staleBuild: stale ?? null,
  },
  noise: { roundSpread: spread, loadAverageAtStart: machine.loadAverageAtStart, loadAverageAtEnd, noisy: worstSpread > 0.2 },
  checks: Object.fromEntries(running.map((r) => [r.target.name, r.check])),
  targets: Object.fromEntries([...rounds].map(([name, list]) => [name, { ...summary[name], rounds: list }])),
  ratios,
  perRoundRatios,
  target: 'grantd/floor+sign+redis >= 0.8',
}

const out = process.env.BENCH_OUT ?? join(HERE, 'results', `${isoDate()}-refresh-redis.json`)
await mkdir(join(out, '..'), { recursive: true })
await writeFile(out, JSON.stringify(report, null, 2) + '\n')

process.stdout.write('\nmedian req/s:\n')
for (const [name, s] of Object.entries(summary)) process.stdout.write(`  ${name.padEnd(24)} ${String(s.medianRequestsPerSecond).padStart(6)} req/s  p50 ${s.medianP50Ms} ms  p99 ${s.medianP99Ms} ms  server CPU ${s.medianServerCpuMicrosPerRequest ?? '?'} µs/req  ${s.redisCommandsPerRequest} Redis cmd/req\n`)
process.stdout.write('ratios:\n')
for (const [name, value] of Object.entries(ratios)) if (value !== undefined) process.stdout.write(`  ${name.padEnd(32)} ${value.toFixed(3)}\n`)
process.stdout.write('per round (back-to-back runs), median:\n')
for (const [name, values] of Object.entries(perRoundRatios)) if (values.length > 0) process.stdout.write(`  ${name.padEnd(32)} ${median(values).toFixed(3)}  [${values.map((v) => v.toFixed(2)).join(', ')}]\n`)
if (worstSpread > 0.2) process.stdout.write(`WARNING: req/s moved by up to ${Math.round(worstSpread * 100)} % between rounds (load average ${loadAverageAtEnd.join(' ')}): other work shared the machine; re-run when it is quiet\n`)
const verdict = ratios['grantd/floor+sign+redis']
if (verdict !== undefined) process.stdout.write(`target grantd/floor+sign+redis >= 0.8: ${verdict >= 0.8 ? 'met' : 'NOT met'} (${verdict.toFixed(2)})\n`)
process.stdout.write(`wrote ${out}\n`)
