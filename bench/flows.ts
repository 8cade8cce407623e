/**
 * `npm run --workspace bench flows`: the user-facing flows of grantd against
 * node-oidc-provider 9, both on memory stores, in one run of alternating rounds
 * (lib/flow-load-worker.ts drives them; autocannon cannot):
 *
 * - `code`: the full authorization code flow — authorize → login form POST → code →
 *   token with PKCE and client_secret_basic, ID token included; one login POST per flow on
 *   both sides. `grantd` and `oidc-provider` sign ID tokens with ES256 (grantd's client
 *   sets id_token_signed_response_alg ES256) so the work is equal; `grantd-rs256` and
 *   `oidc-provider-rs256` sign them with RS256, OpenID's default. Access tokens are ES256
 *   JWTs everywhere.
 * - `refresh`: refresh_token with rotation, each user presenting the newest token it got
 *   (seeded by one code flow per user with offline_access before the clock starts).
 * - On Redis (only when named in BENCH_TARGETS): `grantd-redis`, `oidc-provider-redis` and,
 *   with BENCH_GRANTD_BASELINE, `grantd-baseline-redis`, both flows, on the run's own
 *   redis-server, whose CPU per flow is reported with the server's.
 *
 * Each server runs pinned to SERVER_CPU, the load generator to LOAD_CPU. Before measuring,
 * each target's token response is checked: an ES256 JWT access token and an ID token of
 * the expected alg that verify against the target's JWKS. Per-round ratios are kept.
 *
 * Env: BENCH_FLOWS (code,refresh), BENCH_ROUNDS (3), BENCH_SECONDS (8),
 * BENCH_WARMUP_SECONDS (3), BENCH_CONNECTIONS (16), BENCH_TARGETS (comma list), BENCH_OUT,
 * BENCH_GRANTD_BASELINE=/path/to/another/build/bin/grantd.js (adds `grantd-baseline` and, when named, `grantd-baseline-redis`; ES256
 * ID tokens from a key set whose first key is ES256, for A/B in the same rounds; see README),
 * BENCH_CPU_PROF_DIR (run the grantd targets under `node --cpu-prof` writing there;
 * summarise a profile with `npm run --workspace bench profile -- FILE`).
 */
import { writeFile, mkdir, mkdtemp } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createLocalJWKSet, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify, type JSONWebKeySet, type JWK } from 'jose'
import { startGrantd, staleBuildWarning } from './lib/grantd.js'
import type { FlowLoadResult, FlowLoadSpec } from './lib/flow-load-worker.js'
import { machineFigures } from './lib/machine.js'
import { cpuTimeMs, freePort, pinned, runJson, startServer, type ServerProcess } from './lib/processes.js'
import { spawn, type ChildProcess } from 'node:child_process'
import { Redis } from 'ioredis'
import { isoDate, median, round } from './lib/stats.js'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const WORKER = join(HERE, 'lib', 'flow-load-worker.ts')
const SERVER_CPU = 1
const LOAD_CPU = 0
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8)
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 3)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16)
const FLOWS = (process.env.BENCH_FLOWS ?? 'code,refresh').split(',').map((s) => s.trim()) as Array<'code' | 'refresh'>
const REDIRECT_URI = 'http://127.0.0.1:5000/callback'
const PROFILE_DIR = process.env.BENCH_CPU_PROF_DIR
const profileArgs = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []

async function keyPair(alg: 'ES256' | 'RS256'): Promise<{ privateJwk: JWK; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const kid = `bench-${alg.toLowerCase()}`
  return { privateJwk: { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' }, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } }
}
const es = await keyPair('ES256')
const rs = await keyPair('RS256')
const PRIVATE_JWKS = { keys: [es.privateJwk, rs.privateJwk] }
const PUBLIC_JWKS: JSONWebKeySet = { keys: [es.publicJwk, rs.publicJwk] }

/** `ops`: the operations of SPEC §13 on — request and audit lines at `info` (stdout to /dev/null) and the metrics listener. */
async function grantdConfig(port: number, idAlg: 'ES256' | 'RS256' | undefined, store?: Record<string, unknown>, ops = false): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'grantd-bench-flows-'))
  await writeFile(join(dir, 'signing.json'), JSON.stringify(PRIVATE_JWKS), { mode: 0o600 })
  const config = {
    issuer: `http://127.0.0.1:${port}`,
    port,
    keys: { file: './signing.json' },
    cookies: { keys: ['bench-cookie-key-0123456789abcdef'] },
    log: { level: ops ? 'info' : 'warn' },
    ...(ops ? { metrics: { port: await freePort(), host: '127.0.0.1' } } : {}),
    ...(store ? { store } : {}),
    users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-alice', username: 'alice', password: 'wonderland', claims: { name: 'Alice', email: 'alice@example.com', email_verified: true } }] } },
    plugins: ['@grantd/grant-authorization-code', '@grantd/grant-refresh-token'],
    clients: [{
      client_id: 'web', client_secret: 'web-secret', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [REDIRECT_URI],
      scope: 'openid profile email offline_access api', require_pkce: true, ...(idAlg ? { id_token_signed_response_alg: idAlg } : {}),
    }],
  }
  const file = join(dir, 'grantd.json')
  await writeFile(file, JSON.stringify(config, null, 2))
  return file
}

interface Target {
  name: string
  /** Needs the benchmark's own redis-server (started only when such a target runs). */
  redis?: boolean
  idAlg: 'ES256' | 'RS256'
  flows: ReadonlyArray<'code' | 'refresh'>
  /** Authorization parameters this server needs besides the common ones (oidc-provider issues offline_access only with prompt=consent). */
  extra: Record<string, string>
  endpoints: { authorize: string; token: string }
  start(port: number): Promise<ServerProcess>
}

const oidcProvider = (name: string, idAlg: 'ES256' | 'RS256', flows: Target['flows'], redis = false): Target => ({
  name, idAlg, flows, redis, extra: { prompt: 'consent' }, endpoints: { authorize: '/auth', token: '/token' },
  start: (port) => startServer({
    name, nodeArgs: ['--import=tsx', join(HERE, 'targets', 'oidc-provider-flows.ts')], port, cpu: SERVER_CPU,
    env: { PORT: String(port), BENCH_JWKS: JSON.stringify(PRIVATE_JWKS), BENCH_ID_ALG: idAlg, BENCH_REDIRECT_URI: REDIRECT_URI, ...(redis ? { BENCH_OIDC_REDIS: '1', REDIS_URL: redisUrl() } : {}) }, readyPath: '/.well-known/openid-configuration',
  }),
})
const grantd = (name: string, idAlg: 'ES256' | 'RS256', clientAlg: 'ES256' | undefined, flows: Target['flows'], cli?: string, redis = false, ops = false): Target => ({
  name, idAlg, flows, redis, extra: {}, endpoints: { authorize: '/connect/authorize', token: '/connect/token' },
  start: async (port) => startGrantd({
    name, config: await grantdConfig(port, clientAlg, redis ? { use: '@grantd/store-redis', options: { url: redisUrl(), prefix: `bench-flows-${name}:` } } : undefined, ops),
    port, cpu: SERVER_CPU, stdout: ops ? 'discard' : 'capture', extraNodeArgs: profileArgs, ...(cli ? { cli } : {}),
  }),
})

const ALL_TARGETS: Target[] = [
  grantd('grantd', 'ES256', 'ES256', ['code', 'refresh']),
  // The same with request and audit lines at info and metrics on (SPEC §13: < 3 % on each flow).
  grantd('grantd+ops', 'ES256', 'ES256', ['code', 'refresh'], undefined, false, true),
  oidcProvider('oidc-provider', 'ES256', ['code', 'refresh']),
  grantd('grantd-rs256', 'RS256', undefined, ['code']),
  oidcProvider('oidc-provider-rs256', 'RS256', ['code']),
  // On Redis (only when named in BENCH_TARGETS): grantd with @grantd/store-redis (auto-pipelining on, its default),
  // oidc-provider with every model in Redis through targets/oidc-provider-redis-adapter.ts (its own example's data model).
  grantd('grantd-redis', 'ES256', 'ES256', ['code', 'refresh'], undefined, true),
  oidcProvider('oidc-provider-redis', 'ES256', ['code', 'refresh'], true),
]
// Another build of grantd, its client set to ES256 ID tokens like `grantd`'s. A build from before per-client algs knows no
// id_token_signed_response_alg: BENCH_GRANTD_BASELINE_NO_CLIENT_ALG=1 leaves it out (that build's first key, ES256, signs).
if (process.env.BENCH_GRANTD_BASELINE) {
  const clientAlg = process.env.BENCH_GRANTD_BASELINE_NO_CLIENT_ALG === '1' ? undefined : 'ES256'
  ALL_TARGETS.push(grantd('grantd-baseline', 'ES256', clientAlg, ['code', 'refresh'], process.env.BENCH_GRANTD_BASELINE))
  // The same build on the Redis store (only when named in BENCH_TARGETS, like the other Redis targets).
  ALL_TARGETS.push(grantd('grantd-baseline-redis', 'ES256', clientAlg, ['code', 'refresh'], process.env.BENCH_GRANTD_BASELINE, true))
}
const wanted = process.env.BENCH_TARGETS?.split(',').map((s) => s.trim()).filter(Boolean)
const targets = wanted ? ALL_TARGETS.filter((t) => wanted.includes(t.name)) : ALL_TARGETS.filter((t) => !t.redis)

/** The run's own redis-server (no persistence, loopback, pinned with the load generator); the shared Redis is not touched. */
let redisServer: { url: string; proc: ChildProcess } | undefined
function redisUrl(): string {
  if (!redisServer) throw new Error('redis-server not started')
  return redisServer.url
}
if (targets.some((t) => t.redis)) {
  const redisPort = await freePort()
  const [cmd, args] = pinned(LOAD_CPU, 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', await mkdtemp(join(tmpdir(), 'grantd-bench-flows-redis-'))])
  redisServer = { url: `redis://127.0.0.1:${redisPort}`, proc: spawn(cmd, args, { stdio: 'ignore' }) }
  const probe = new Redis(redisServer.url, { retryStrategy: (times) => (times > 50 ? null : 100) })
  probe.on('error', () => {})
  await probe.ping()
  probe.disconnect()
}

const stale = staleBuildWarning()
if (stale) process.stderr.write(`WARNING: ${stale}\n`)
const machine = machineFigures()
process.stderr.write(`machine: ${machine.cpuModel}, ${machine.cores} cores, node ${machine.node}, load ${machine.loadAverageAtStart.join(' ')}\n`)

interface Running { target: Target; server: ServerProcess; url: string }
const running: Running[] = []
process.on('SIGINT', () => { void Promise.all(running.map((r) => r.server.stop())).then(() => process.exit(130)) })

function spec(r: Running, kind: 'code' | 'refresh', durationSeconds: number, once = false): FlowLoadSpec {
  return {
    kind, authorizationEndpoint: r.url + r.target.endpoints.authorize, tokenEndpoint: r.url + r.target.endpoints.token,
    clientId: 'web', clientSecret: 'web-secret', redirectUri: REDIRECT_URI,
    scope: kind === 'refresh' ? 'openid profile email offline_access api' : 'openid profile email api',
    extra: kind === 'refresh' ? r.target.extra : {}, username: 'alice', password: 'wonderland',
    connections: CONNECTIONS, durationSeconds, ...(once ? { once } : {}),
  }
}

/** The token response must carry an ES256 JWT access token and an ID token of the target's alg, both verifying. */
async function check(r: Running, kind: 'code' | 'refresh'): Promise<string> {
  const out = await runJson<{ code: Record<string, unknown>; refresh?: Record<string, unknown> }>(['--import=tsx', WORKER], LOAD_CPU, spec(r, kind, 1, true))
  const keys = createLocalJWKSet(PUBLIC_JWKS)
  const described: string[] = []
  for (const [step, body] of Object.entries(out)) {
    if (!body) continue
    if (step === 'refresh' && body.status !== 200) throw new Error(`${r.target.name}: refresh answered ${String(body.status)}`)
    const at = String(body.access_token)
    if (decodeProtectedHeader(at).alg !== 'ES256') throw new Error(`${r.target.name} ${step}: access token is not an ES256 JWT: ${at.slice(0, 40)}`)
    await jwtVerify(at, keys)
    let id = 'no id_token'
    if (typeof body.id_token === 'string') {
      const { protectedHeader, payload } = await jwtVerify(body.id_token, keys, { audience: 'web' })
      if (step === 'code' && protectedHeader.alg !== r.target.idAlg) throw new Error(`${r.target.name}: ID token alg ${protectedHeader.alg}, expected ${r.target.idAlg}`)
      id = `${protectedHeader.alg} id_token (${Object.keys(payload).join(',')})`
    } else if (step === 'code') {
      throw new Error(`${r.target.name}: no ID token in the code flow`)
    }
    described.push(`${step}: ES256 access token, ${id}${typeof body.refresh_token === 'string' ? ', refresh_token' : ''}`)
  }
  return described.join('; ')
}

/**
 * serverCpuShare: the server's CPU seconds per second of the round. On a machine with more
 * runnable threads than cores, the scheduler gives a process a share per runnable thread, so
 * a server that signs on libuv's thread pool (jose/WebCrypto) gets more of its pinned core
 * than one that signs on the main thread: req/s then measure that share as much as the work,
 * and CPU per sample is the fairer comparison.
 */
type Round = FlowLoadResult & { round: number; serverCpuMicrosPerSample: number | null; serverCpuShare: number | null; redisCpuMicrosPerSample?: number | null }
const report: Record<string, unknown> = {
  benchmark: 'user-facing flows on memory stores: authorization code flow with PKCE and login; refresh_token with rotation',
  date: new Date().toISOString(),
  machine,
  setup: { connections: CONNECTIONS, rounds: ROUNDS, secondsPerRound: SECONDS, warmupSeconds: WARMUP_SECONDS, serverCpu: SERVER_CPU, loadGeneratorCpu: LOAD_CPU, staleBuild: stale ?? null },
}
const summaryLines: string[] = []

try {
  for (const target of targets) {
    const port = await freePort()
    const server = await target.start(port)
    running.push({ target, server, url: server.url })
  }
  for (const kind of FLOWS) {
    const here = running.filter((r) => r.target.flows.includes(kind))
    const checks: Record<string, string> = {}
    for (const r of here) {
      checks[r.target.name] = await check(r, kind)
      process.stderr.write(`check ${kind} ${r.target.name}: ${checks[r.target.name]}\n`)
    }
    for (const r of here) {
      const warm = await runJson<FlowLoadResult>(['--import=tsx', WORKER], LOAD_CPU, spec(r, kind, WARMUP_SECONDS))
      process.stderr.write(`warm-up ${kind} ${r.target.name}: ${warm.samplesPerSecond}/s\n`)
    }
    const rounds = new Map<string, Round[]>()
    for (let n = 1; n <= ROUNDS; n++) {
      for (const r of here) {
        const before = cpuTimeMs(r.server.proc.pid)
        // A Redis target's store work is partly in the run's redis-server: its CPU per sample too.
        const redisBefore = r.target.redis ? cpuTimeMs(redisServer?.proc.pid) : undefined
        const result = await runJson<FlowLoadResult>(['--import=tsx', WORKER], LOAD_CPU, spec(r, kind, SECONDS))
        const after = cpuTimeMs(r.server.proc.pid)
        const redisAfter = r.target.redis ? cpuTimeMs(redisServer?.proc.pid) : undefined
        const redisCpu = redisBefore !== undefined && redisAfter !== undefined ? round(((redisAfter - redisBefore) * 1000) / result.samples, 1) : undefined
        // Refresh runs seed their chains before the clock; that CPU is spread over the samples (a few per cent at most).
        const cpu = before !== undefined && after !== undefined ? round(((after - before) * 1000) / result.samples, 1) : null
        const list = rounds.get(r.target.name) ?? []
        const share = before !== undefined && after !== undefined ? round((after - before) / 1000 / result.durationSeconds, 2) : null
        list.push({ round: n, ...result, serverCpuMicrosPerSample: cpu, serverCpuShare: share, ...(redisCpu !== undefined ? { redisCpuMicrosPerSample: redisCpu } : {}) })
        rounds.set(r.target.name, list)
        process.stderr.write(`round ${n} ${kind} ${r.target.name.padEnd(20)} ${String(result.samplesPerSecond).padStart(7)}/s  p50 ${result.latencyMs.p50} ms  p99 ${result.latencyMs.p99} ms  ${cpu ?? '?'} µs CPU/${kind === 'code' ? 'flow' : 'refresh'}  ${result.requestsPerSample} HTTP req each  load CPU ${result.loadCpuShare}, server CPU ${share ?? '?'}${redisCpu !== undefined ? `, redis ${redisCpu} µs CPU each` : ''}\n`)
      }
    }
    const summary = Object.fromEntries([...rounds].map(([name, list]) => [name, {
      medianPerSecond: round(median(list.map((x) => x.samplesPerSecond)), 1),
      medianP50Ms: median(list.map((x) => x.latencyMs.p50)),
      medianP99Ms: median(list.map((x) => x.latencyMs.p99)),
      medianServerCpuMicros: round(median(list.flatMap((x) => (x.serverCpuMicrosPerSample === null ? [] : [x.serverCpuMicrosPerSample]))), 1),
      requestsPerSample: list[0]!.requestsPerSample,
      medianLoadCpuShare: median(list.map((x) => x.loadCpuShare)),
      medianServerCpuShare: median(list.flatMap((x) => (x.serverCpuShare === null ? [] : [x.serverCpuShare]))),
      ...(list.some((x) => typeof x.redisCpuMicrosPerSample === 'number') ? { medianRedisCpuMicros: round(median(list.flatMap((x) => (typeof x.redisCpuMicrosPerSample === 'number' ? [x.redisCpuMicrosPerSample] : []))), 1) } : {}),
      spread: round(Math.max(...list.map((x) => x.samplesPerSecond)) / Math.min(...list.map((x) => x.samplesPerSecond)) - 1),
    }]))
    const pairs: Array<[string, string]> = [['grantd', 'oidc-provider'], ['grantd-rs256', 'oidc-provider-rs256'], ['grantd-rs256', 'grantd'], ['grantd', 'grantd-baseline'], ['grantd-baseline', 'oidc-provider'], ['grantd-redis', 'oidc-provider-redis'], ['grantd-redis', 'grantd'], ['grantd-redis', 'grantd-baseline-redis'], ['grantd+ops', 'oidc-provider'], ['grantd+ops', 'grantd']]
    const ratios: Record<string, { median: number; perRound: number[]; p99: number; cpu: number | null }> = {}
    for (const [a, b] of pairs) {
      const xs = rounds.get(a)
      const ys = rounds.get(b)
      if (!xs || !ys) continue
      const perRound = xs.flatMap((x, i) => (ys[i] ? [round(x.samplesPerSecond / ys[i]!.samplesPerSecond)] : []))
      ratios[`${a}/${b}`] = {
        median: round(summary[a]!.medianPerSecond / summary[b]!.medianPerSecond),
        perRound,
        p99: round(summary[a]!.medianP99Ms / summary[b]!.medianP99Ms),
        cpu: summary[a]!.medianServerCpuMicros && summary[b]!.medianServerCpuMicros ? round(summary[b]!.medianServerCpuMicros / summary[a]!.medianServerCpuMicros) : null,
      }
      summaryLines.push(`${kind}: ${a}/${b} = ${ratios[`${a}/${b}`]!.median.toFixed(2)} (per round ${perRound.map((v) => v.toFixed(2)).join(', ')}; p99 ratio ${ratios[`${a}/${b}`]!.p99}; CPU per ${kind === 'code' ? 'flow' : 'refresh'} ${b}/${a} = ${ratios[`${a}/${b}`]!.cpu ?? '?'})`)
    }
    report[kind] = { checks, targets: Object.fromEntries([...rounds].map(([name, list]) => [name, { ...summary[name], rounds: list }])), ratios, target: 'grantd/oidc-provider >= 2.5, p99 <= half' }
  }
} finally {
  await Promise.all(running.map((r) => r.server.stop()))
  redisServer?.proc.kill('SIGTERM')
}

report.noise = { loadAverageAtStart: machine.loadAverageAtStart, loadAverageAtEnd: loadavg().map((n) => round(n, 2)) }
const out = process.env.BENCH_OUT ?? join(HERE, 'results', `${isoDate()}-flows.json`)
await mkdir(join(out, '..'), { recursive: true })
await writeFile(out, JSON.stringify(report, null, 2) + '\n')
process.stdout.write(summaryLines.join('\n') + `\nwrote ${out}\n`)
