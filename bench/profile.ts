/**
 * `npm run profile`: where grantd's time goes on the client_credentials hot path. Starts
 * the real CLI under `node --cpu-prof` (pinned like the benchmark), loads it with
 * autocannon, stops it with SIGTERM (the profile is written on exit) and prints the top
 * functions by self and inclusive time.
 *
 * Reading it: jose signs through WebCrypto, which Node runs as a job on its libuv thread
 * pool. That thread shares the pinned core with the main thread, so the signature itself
 * shows up on the main thread as self time of the job's promise executor
 * (node:internal/crypto/util, while the worker preempts it) and as "(idle)".
 *
 * Env: PROFILE_SECONDS (10), PROFILE_LOG (warn|info), PROFILE_METRICS (1: metrics on), BENCH_CONNECTIONS (32).
 * Usage: `npm run profile` or `npm run profile -- FILE.cpuprofile` (summarise only).
 */
import { copyFile, mkdtemp, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { exportJWK, generateKeyPair } from 'jose'
import { startGrantd, staleBuildWarning, writeGrantdConfig } from './lib/grantd.js'
import { formatSummary, summarizeProfile } from './lib/cpuprofile.js'
import { loadProblems, runLoad } from './lib/load.js'
import { freePort } from './lib/processes.js'
import { isoDate } from './lib/stats.js'
import { FORM, HEADERS, verifyTarget } from './lib/token-request.js'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const RESULTS = join(HERE, 'results')
const SECONDS = Number(process.env.PROFILE_SECONDS ?? 10)
const LOG = (process.env.PROFILE_LOG ?? 'warn') as 'warn' | 'info'
/** PROFILE_METRICS=1: the metrics listener on (SPEC §13), to see what the metrics middleware costs. */
const METRICS = process.env.PROFILE_METRICS === '1'

// npm runs workspace scripts in bench/; a path given on the command line is relative to where npm was started.
let file = process.argv[2] ? resolve(process.env.INIT_CWD ?? process.cwd(), process.argv[2]) : undefined
if (!file) {
  const stale = staleBuildWarning()
  if (stale) process.stderr.write(`WARNING: ${stale}\n`)
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  const jwk = { ...(await exportJWK(privateKey)), kid: 'bench-es256', alg: 'ES256', use: 'sig' }
  const publicJwk = { ...(await exportJWK(publicKey)), kid: 'bench-es256', alg: 'ES256', use: 'sig' }
  const port = await freePort()
  const profileDir = await mkdtemp(join(tmpdir(), 'grantd-cpuprof-'))
  const server = await startGrantd({
    name: 'grantd',
    config: await writeGrantdConfig({ port, jwk, logLevel: LOG, ...(METRICS ? { metricsPort: await freePort() } : {}) }),
    port,
    cpu: 1,
    stdout: 'discard',
    extraNodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`],
  })
  try {
    const url = `${server.url}/connect/token`
    process.stderr.write(`check: ${await verifyTarget(url, true, publicJwk)}\n`)
    const result = await runLoad({ url, method: 'POST', headers: HEADERS, body: FORM, connections: Number(process.env.BENCH_CONNECTIONS ?? 32), durationSeconds: SECONDS }, 0)
    const problem = loadProblems(result)
    if (problem) throw new Error(`load run invalid: ${problem}`)
    process.stderr.write(`${Math.round(result.requestsPerSecond)} req/s under the profiler (log level ${LOG}); p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms\n`)
  } finally {
    await server.stop()
  }
  // Files are CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main thread (others: the module-hooks loader).
  const main = (await readdir(profileDir)).find((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f))
  if (!main) throw new Error(`no main-thread profile written to ${profileDir}`)
  file = join(RESULTS, `grantd-${LOG}-${Date.now()}.cpuprofile`)
  await copyFile(join(profileDir, main), file)
}

const summary = await summarizeProfile(file)
process.stdout.write(formatSummary(summary) + '\n')
const out = join(RESULTS, `${isoDate()}-grantd-profile-${LOG}${METRICS ? '-metrics' : ''}.json`)
if (!process.argv[2]) {
  await writeFile(out, JSON.stringify(summary, null, 2) + '\n')
  process.stdout.write(`wrote ${out}\n`)
}
