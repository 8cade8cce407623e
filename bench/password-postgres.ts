/**
 * `npm run --workspace bench password-postgres`: sign-in throughput of grantd with
 * `@grantd/users-postgres` next to the same server with `@grantd/users-static`, in one run,
 * in alternating rounds: the password grant, and the login form flow (GET the form, POST
 * it, a 302 with a code). Both are scrypt-bound; the target is that the database costs
 * less than 10 % on top (postgres/static ≥ 0.9).
 *
 * Every sign-in is a user's first in the run (lib/signin-load-worker.ts): users-static
 * remembers a password it has verified, so repeating one user would measure its cache, not
 * scrypt. Both services hold the same BENCH_USERS users (`user-<n>`) with one shared
 * `$scrypt$` hash at BENCH_HASH_COST; users-postgres reads them from a schema of this run's
 * own on DATABASE_URL (else postgres://postgres@127.0.0.1:5432/test), dropped at the end.
 * Each grantd is pinned to SERVER_CPU, the load to LOAD_CPU; PostgreSQL is not pinned (it
 * is the machine's shared server), so its CPU is outside the servers' CPU figures.
 *
 * Env: BENCH_ROUNDS (3), BENCH_SECONDS (8), BENCH_WARMUP_SECONDS (3), BENCH_CONNECTIONS (8),
 * BENCH_HASH_COST (14), BENCH_USERS (20000), BENCH_KINDS (password,login), BENCH_OUT (file).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { decodeJwt } from 'jose'
import { hashSecret } from '@grantd/core'
import { PostgresUsers, parsePostgresUsersOptions } from '@grantd/users-postgres'
import { startGrantd, staleBuildWarning } from './lib/grantd.js'
import { loadProblems, type LoadResult } from './lib/load.js'
import { machineFigures } from './lib/machine.js'
import { cpuTimeMs, freePort, runJson, type ServerProcess } from './lib/processes.js'
import type { SignInLoadSpec } from './lib/signin-load-worker.js'
import { isoDate, median, round } from './lib/stats.js'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const SERVER_CPU = 1
const LOAD_CPU = 0
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8)
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 3)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8)
const HASH_COST = Number(process.env.BENCH_HASH_COST ?? 14)
const USERS = Number(process.env.BENCH_USERS ?? 20000)
const KINDS = (process.env.BENCH_KINDS ?? 'password,login').split(',').map((s) => s.trim()).filter((k): k is SignInLoadSpec['kind'] => k === 'password' || k === 'login')
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const WORKER = join(HERE, 'lib', 'signin-load-worker.ts')
const PASSWORD = 'bench-password'

const stale = staleBuildWarning()
if (stale) process.stderr.write(`WARNING: ${stale}\n`)
const machine = machineFigures()
if (!machine.taskset) process.stderr.write('WARNING: no taskset: servers and the load generator are not pinned; figures are noisier\n')
process.stderr.write(`machine: ${machine.cpuModel}, ${machine.cores} cores, node ${machine.node}, load ${machine.loadAverageAtStart.join(' ')}\n`)

const workDir = await mkdtemp(join(tmpdir(), 'grantd-bench-pg-'))
const schema = `grantd_bench_${process.pid}`
const hash = await hashSecret(PASSWORD, HASH_COST)
const admin = new PostgresUsers(parsePostgresUsersOptions({ connectionString: DATABASE_URL, schema }), { info() {}, warn() {}, error() {}, debug() {} })
await admin.migrate()
await admin.query({ text: `INSERT INTO "${schema}".users (sub, username, password_hash) SELECT 'u-' || i, 'user-' || i, $1 FROM generate_series(0, $2::int - 1) AS i` }, [hash, USERS])
await admin.query({ text: `ANALYZE "${schema}".users` })

async function writeConfig(port: number, users: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(join(workDir, 'grantd-'))
  const config = {
    issuer: `http://127.0.0.1:${port}`,
    port,
    host: '127.0.0.1',
    log: { level: 'warn' },
    cookies: { keys: ['bench-cookie-key-0123456789abcdef'] },
    users,
    plugins: ['@grantd/grant-authorization-code', '@grantd/grant-password'],
    clients: [
      { client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password'], scope: 'openid api' },
      { client_id: 'web', client_secret: 'web-secret', grant_types: ['authorization_code'], redirect_uris: ['http://127.0.0.1:5000/callback'], scope: 'openid api' },
    ],
  }
  const file = join(dir, 'grantd.json')
  await writeFile(file, JSON.stringify(config))
  return file
}

const TARGETS: Array<{ name: string; users: Record<string, unknown> }> = [
  { name: 'static', users: { use: '@grantd/users-static', options: { users: Array.from({ length: USERS }, (_, i) => ({ sub: `u-${i}`, username: `user-${i}`, password: hash })) } } },
  { name: 'postgres', users: { use: '@grantd/users-postgres', options: { connectionString: DATABASE_URL, schema, hashCost: HASH_COST } } },
]

interface Running { name: string; server: ServerProcess }
const running: Running[] = []
let nextUser = 0
const stopAll = async (): Promise<void> => {
  await Promise.all(running.map((r) => r.server.stop()))
  await admin.query({ text: `DROP SCHEMA IF EXISTS "${schema}" CASCADE` }).catch(() => {})
  await admin.close()
  await rm(workDir, { recursive: true, force: true })
}
process.on('SIGINT', () => { void stopAll().then(() => process.exit(130)) })

type Outcome = LoadResult & { usersUsed: number; firstProblem?: string }
async function load(kind: SignInLoadSpec['kind'], base: string, durationSeconds: number): Promise<Outcome> {
  // Room for every user this run could possibly use: each sign-in is someone's first.
  if (nextUser + 5000 > USERS) throw new Error(`out of fresh users (${nextUser} of ${USERS} used): raise BENCH_USERS`)
  const result = await runJson<Outcome>(['--import=tsx', WORKER], LOAD_CPU, { kind, base, password: PASSWORD, firstUser: nextUser, connections: CONNECTIONS, durationSeconds } satisfies SignInLoadSpec)
  nextUser += result.usersUsed
  return result
}

/** Before measuring: a fresh user's password grant returns that user's token; the form flow ends in a code. */
async function check(base: string): Promise<string> {
  const user = nextUser++
  const res = await fetch(`${base}/connect/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('ro:ro-secret').toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'password', username: `USER-${user}`, password: PASSWORD, scope: 'openid api' }).toString(),
  })
  const body = (await res.json()) as { access_token?: string }
  if (res.status !== 200 || !body.access_token) throw new Error(`${base}: password grant answered ${res.status} ${JSON.stringify(body)}`)
  const sub = decodeJwt(body.access_token).sub
  if (sub !== `u-${user}`) throw new Error(`${base}: token for ${String(sub)}, expected u-${user}`)
  const wrong = await fetch(`${base}/connect/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('ro:ro-secret').toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'password', username: `user-${nextUser++}`, password: 'wrong', scope: 'api' }).toString(),
  })
  if (wrong.status !== 400) throw new Error(`${base}: a wrong password answered ${wrong.status}`)
  const flow = await load('login', base, 1)
  if (flow.status2xx === 0 || flow.non2xx > 0 || flow.errors > 0) throw new Error(`${base}: login flow failed: ${flow.firstProblem ?? JSON.stringify(flow)}`)
  return `password grant 200 for USER-${user} (sub u-${user}, case-folded); wrong password 400; ${flow.status2xx} login flows → 302 with code`
}

type Round = Outcome & { round: number; serverCpuMicrosPerRequest: number | null }
const rounds = new Map<string, Round[]>()
const checks: Record<string, string> = {}
try {
  for (const target of TARGETS) {
    const port = await freePort()
    const server = await startGrantd({ name: target.name, config: await writeConfig(port, target.users), port, cpu: SERVER_CPU, stdout: 'capture' })
    running.push({ name: target.name, server })
  }
  for (const r of running) {
    checks[r.name] = await check(r.server.url)
    process.stderr.write(`check ${r.name}: ${checks[r.name]}\n`)
  }
  for (const kind of KINDS) {
    for (const r of running) {
      const warm = await load(kind, r.server.url, WARMUP_SECONDS)
      const problem = loadProblems(warm)
      if (problem) throw new Error(`${kind}-${r.name} warm-up failed: ${problem} (${warm.firstProblem ?? ''})\n${r.server.output().slice(-2000)}`)
      process.stderr.write(`warm-up ${kind}-${r.name}: ${warm.requestsPerSecond.toFixed(1)} /s\n`)
    }
    for (let n = 1; n <= ROUNDS; n++) {
      for (const r of running) {
        const name = `${kind}-${r.name}`
        const cpuBefore = cpuTimeMs(r.server.proc.pid)
        const result = await load(kind, r.server.url, SECONDS)
        const cpuAfter = cpuTimeMs(r.server.proc.pid)
        const problem = loadProblems(result)
        if (problem) throw new Error(`${name} round ${n} is invalid: ${problem} (${result.firstProblem ?? ''})\n${r.server.output().slice(-2000)}`)
        const cpu = cpuBefore !== undefined && cpuAfter !== undefined ? round(((cpuAfter - cpuBefore) * 1000) / result.requestsTotal, 0) : null
        const list = rounds.get(name) ?? []
        list.push({ round: n, ...result, serverCpuMicrosPerRequest: cpu })
        rounds.set(name, list)
        process.stderr.write(`round ${n} ${name.padEnd(18)} ${result.requestsPerSecond.toFixed(1).padStart(7)} /s  p50 ${result.latencyMs.p50} ms  p99 ${result.latencyMs.p99} ms  ${cpu ?? '?'} µs CPU/sign-in\n`)
      }
    }
  }
} finally {
  await stopAll()
}

const summary = Object.fromEntries([...rounds].map(([name, list]) => {
  const cpu = list.flatMap((r) => (r.serverCpuMicrosPerRequest === null ? [] : [r.serverCpuMicrosPerRequest]))
  return [name, {
    medianPerSecond: round(median(list.map((r) => r.requestsPerSecond)), 2),
    medianP50Ms: median(list.map((r) => r.latencyMs.p50)),
    medianP99Ms: median(list.map((r) => r.latencyMs.p99)),
    medianServerCpuMicrosPerSignIn: cpu.length > 0 ? median(cpu) : null,
  }]
}))
const ratios: Record<string, number> = {}
const perRoundRatios: Record<string, number[]> = {}
const cpuRatios: Record<string, number> = {}
for (const kind of KINDS) {
  const a = summary[`${kind}-postgres`]
  const b = summary[`${kind}-static`]
  if (a && b) ratios[`${kind}: postgres/static`] = round(a.medianPerSecond / b.medianPerSecond)
  // CPU per sign-in is far less sensitive to neighbours than throughput on a shared machine.
  const ca = a?.medianServerCpuMicrosPerSignIn
  const cb = b?.medianServerCpuMicrosPerSignIn
  if (ca != null && cb != null) cpuRatios[`${kind}: postgres/static server CPU per sign-in`] = round(ca / cb)
  const xs = rounds.get(`${kind}-postgres`) ?? []
  const ys = rounds.get(`${kind}-static`) ?? []
  perRoundRatios[`${kind}: postgres/static`] = xs.flatMap((x, i) => (ys[i] ? [round(x.requestsPerSecond / ys[i]!.requestsPerSecond)] : []))
}
const spread = Object.fromEntries([...rounds].map(([name, list]) => {
  const values = list.map((r) => r.requestsPerSecond)
  return [name, round(Math.max(...values) / Math.min(...values) - 1)]
}))
const worstSpread = Math.max(0, ...Object.values(spread))
const loadAverageAtEnd = loadavg().map((n) => round(n, 2))

const report = {
  benchmark: 'sign-in throughput: users-postgres vs users-static (password grant; login form flow), every sign-in a fresh user',
  date: new Date().toISOString(),
  machine,
  setup: {
    connections: CONNECTIONS,
    rounds: ROUNDS,
    secondsPerRound: SECONDS,
    warmupSeconds: WARMUP_SECONDS,
    serverCpu: machine.taskset ? SERVER_CPU : null,
    loadGeneratorCpu: machine.taskset ? LOAD_CPU : null,
    hash: `$scrypt$ ln=${HASH_COST},r=8,p=1 (one hash shared by all users)`,
    users: USERS,
    usersSignedIn: nextUser,
    database: 'the machine\'s shared PostgreSQL (not pinned), a schema of this run\'s own, dropped after',
    grantdLogging: 'log.level "warn"',
    throttle: 'grantd defaults (successes clear the per-user counter: one store delete per sign-in, both targets)',
    staleBuild: stale ?? null,
  },
  noise: { roundSpread: spread, loadAverageAtStart: machine.loadAverageAtStart, loadAverageAtEnd, noisy: worstSpread > 0.2 },
  checks,
  targets: Object.fromEntries([...rounds].map(([name, list]) => [name, { ...summary[name], rounds: list }])),
  ratios,
  perRoundRatios,
  cpuRatios,
  target: 'postgres/static >= 0.9 (the database costs < 10 % on top of scrypt)',
}
const out = process.env.BENCH_OUT ?? join(HERE, 'results', `${isoDate()}-password-postgres.json`)
await mkdir(join(out, '..'), { recursive: true })
await writeFile(out, JSON.stringify(report, null, 2) + '\n')

process.stdout.write('\nmedian sign-ins/s:\n')
for (const [name, s] of Object.entries(summary)) process.stdout.write(`  ${name.padEnd(18)} ${s.medianPerSecond.toFixed(1).padStart(7)} /s  p50 ${s.medianP50Ms} ms  p99 ${s.medianP99Ms} ms  server CPU ${s.medianServerCpuMicrosPerSignIn ?? '?'} µs/sign-in\n`)
process.stdout.write('ratios:\n')
for (const [name, value] of Object.entries(ratios)) process.stdout.write(`  ${name.padEnd(28)} ${value.toFixed(3)}  per round [${(perRoundRatios[name] ?? []).map((v) => v.toFixed(2)).join(', ')}]  target >= 0.9: ${value >= 0.9 ? 'met' : 'NOT met'}\n`)
for (const [name, value] of Object.entries(cpuRatios)) process.stdout.write(`  ${name.padEnd(28)} ${value.toFixed(3)}  (database cost on the server: ${((value - 1) * 100).toFixed(1)} %)\n`)
if (worstSpread > 0.2) process.stdout.write(`WARNING: throughput moved by up to ${Math.round(worstSpread * 100)} % between rounds (load average ${loadAverageAtEnd.join(' ')}): other work shared the machine\n`)
process.stdout.write(`wrote ${out}\n`)
