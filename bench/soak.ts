/**
 * `npm run --workspace bench soak`: 1,000,000 client_credentials requests against the real
 * grantd server (`grantd start`, memory store, log.level warn), loopback only, 32
 * keep-alive connections, in chunks of BENCH_SOAK_CHUNK requests (each its own bounded
 * autocannon run pinned to LOAD_CPU; any non-2xx, error or timeout aborts the soak).
 *
 * Inside the server process a bench-only probe (`lib/soak-probe.mjs`, preloaded with
 * `node --import`; no endpoint, it appends JSON lines to a temp file) samples RSS, heap and
 * event-loop delay (perf_hooks.monitorEventLoopDelay) every second. The first chunk is the
 * warm-up; when it ends the probe's cumulative histogram is restarted (SIGUSR2) and the RSS
 * then is the baseline. Issue 15 targets: RSS growth after warm-up < 10 %, event-loop delay
 * p99 < 20 ms.
 *
 * The result file is rewritten after every chunk (`complete: false` until the last one), so
 * a soak stopped early still records what it measured.
 *
 * Env: BENCH_SOAK_REQUESTS (1000000), BENCH_SOAK_CHUNK (50000), BENCH_CONNECTIONS (32), BENCH_OUT.
 */
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { exportJWK, generateKeyPair, type JWK } from 'jose'
import { startGrantd, staleBuildWarning, writeGrantdConfig } from './lib/grantd.js'
import { loadProblems, runLoad, type LoadResult } from './lib/load.js'
import { machineFigures } from './lib/machine.js'
import { cpuTimeMs, freePort } from './lib/processes.js'
import { isoDate, round } from './lib/stats.js'
import { FORM, HEADERS, verifyTarget } from './lib/token-request.js'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const SERVER_CPU = 1
const LOAD_CPU = 0
const TOTAL = Number(process.env.BENCH_SOAK_REQUESTS ?? 1_000_000)
const CHUNK = Number(process.env.BENCH_SOAK_CHUNK ?? 50_000)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32)

interface ProbeLine {
  t: number
  rss: number
  heapUsed: number
  external: number
  eld: { p50: number; p99: number; max: number; mean: number }
  eldCumulative: { since: number; p50: number; p99: number; p999: number; max: number; mean: number }
}

const stale = staleBuildWarning()
if (stale) console.error(`WARNING: ${stale}`)

const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid: 'bench-es256', alg: 'ES256', use: 'sig' }
const privateJwk: JWK = { ...(await exportJWK(privateKey)), kid: 'bench-es256', alg: 'ES256', use: 'sig' }

const probeFile = join(await mkdtemp(join(tmpdir(), 'grantd-soak-')), 'probe.jsonl')
const port = await freePort()
const config = await writeGrantdConfig({ port, jwk: privateJwk, logLevel: 'warn' })
process.env.SOAK_PROBE_FILE = probeFile
const server = await startGrantd({
  name: 'grantd', config, port, cpu: SERVER_CPU, stdout: 'capture',
  extraNodeArgs: [`--import=${join(HERE, 'lib', 'soak-probe.mjs')}`],
})
const machine = machineFigures()

async function probe(): Promise<ProbeLine[]> {
  const text = await readFile(probeFile, 'utf8').catch(() => '')
  return text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as ProbeLine)
}
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const mib = (b: number): number => round(b / 2 ** 20, 1)

interface Chunk {
  index: number
  requests: number
  seconds: number
  requestsPerSecond: number
  latencyMs: LoadResult['latencyMs']
  serverCpuUsPerRequest: number | undefined
  rssMiB: number
  heapUsedMiB: number
  eldP99MsMaxOfSeconds: number
  eldMaxMs: number
  loadAverage1m: number
}

async function writeResult(complete: boolean) {
  const lines = await probe()
  const final = lines[lines.length - 1]!
  const afterWarmup = chunks.slice(1)
  const rssGrowth = baselineRss !== undefined ? final.rss / baselineRss - 1 : NaN
  const result = {
    benchmark: 'soak: client_credentials, memory store, log.level warn',
    complete,
    date: new Date().toISOString(),
    machine,
    loadAverageAtEnd: loadavg().map((n) => round(n, 2)),
    config: { requests: TOTAL, chunk: CHUNK, connections: CONNECTIONS, serverCpu: SERVER_CPU, loadCpu: LOAD_CPU, warmup: 'the first chunk', probe: 'monitorEventLoopDelay resolution 5 ms, in the server process, sampled every 1 s' },
    totals: {
      requests: done,
      wallSeconds: round((Date.now() - started) / 1000, 1),
      rssAfterWarmupMiB: baselineRss !== undefined ? mib(baselineRss) : undefined,
      rssAtEndMiB: mib(final.rss),
      rssMaxAfterWarmupMiB: mib(Math.max(...lines.filter((l) => l.t >= final.eldCumulative.since).map((l) => l.rss))),
      rssGrowthAfterWarmup: round(rssGrowth, 4),
      heapUsedAtEndMiB: mib(final.heapUsed),
      eventLoopDelayAfterWarmupMs: final.eldCumulative,
      meanServerCpuUsPerRequestAfterWarmup: round(afterWarmup.reduce((s, c) => s + (c.serverCpuUsPerRequest ?? 0) * c.requests, 0) / afterWarmup.reduce((s, c) => s + c.requests, 0), 1),
    },
    targets: {
      rssGrowthBelow10Percent: rssGrowth < 0.1,
      eventLoopDelayP99Below20Ms: final.eldCumulative.p99 < 20,
    },
    chunks,
    probeSamples: lines.map((l) => ({ t: l.t, rssMiB: mib(l.rss), heapUsedMiB: mib(l.heapUsed), eldP99Ms: l.eld.p99, eldMaxMs: l.eld.max })),
  }
  const out = process.env.BENCH_OUT ?? join(HERE, 'results', `${isoDate()}-soak.json`)
  await mkdir(join(HERE, 'results'), { recursive: true })
  await writeFile(out, JSON.stringify(result, null, 2) + '\n')
  return { out, result }
}

const chunks: Chunk[] = []
let baselineRss: number | undefined
let done = 0
const started = Date.now()
try {
  console.error(`grantd pid ${server.proc.pid}: ${await verifyTarget(server.url + '/connect/token', true, publicJwk)}`)
  for (let index = 0; done < TOTAL; index++) {
    const amount = Math.min(CHUNK, TOTAL - done)
    const t0 = Date.now()
    const cpu0 = cpuTimeMs(server.proc.pid)
    const result = await runLoad({ url: server.url + '/connect/token', method: 'POST', headers: HEADERS, body: FORM, connections: CONNECTIONS, durationSeconds: 0, amount, timeoutSeconds: 10 }, LOAD_CPU)
    const cpu1 = cpuTimeMs(server.proc.pid)
    const t1 = Date.now()
    const problem = loadProblems(result)
    if (problem) throw new Error(`chunk ${index}: ${problem}`)
    done += result.requestsTotal
    await sleep(1100) // let the probe write a line that covers the end of the chunk
    const lines = (await probe()).filter((l) => l.t >= t0)
    const last = lines[lines.length - 1]
    if (!last) throw new Error('the probe wrote nothing: is SOAK_PROBE_FILE reaching the server?')
    const during = lines.filter((l) => l.t <= t1 + 1000)
    const chunk: Chunk = {
      index,
      requests: result.requestsTotal,
      seconds: round((t1 - t0) / 1000, 1),
      requestsPerSecond: round(result.requestsTotal / ((t1 - t0) / 1000), 0),
      latencyMs: result.latencyMs,
      serverCpuUsPerRequest: cpu0 !== undefined && cpu1 !== undefined ? round(((cpu1 - cpu0) * 1000) / result.requestsTotal, 1) : undefined,
      rssMiB: mib(last.rss),
      heapUsedMiB: mib(last.heapUsed),
      eldP99MsMaxOfSeconds: Math.max(...during.map((l) => l.eld.p99)),
      eldMaxMs: Math.max(...during.map((l) => l.eld.max)),
      loadAverage1m: round(loadavg()[0]!, 2),
    }
    chunks.push(chunk)
    if (index === 0) {
      baselineRss = last.rss
      server.proc.kill('SIGUSR2') // restart the cumulative event-loop histogram: warm-up is over
    }
    await writeResult(false) // a soak stopped early still leaves its figures
    console.error(`chunk ${index}: ${done}/${TOTAL} ${chunk.requestsPerSecond} req/s, p99 ${chunk.latencyMs.p99} ms, RSS ${chunk.rssMiB} MiB, heap ${chunk.heapUsedMiB} MiB, ELD p99 ${chunk.eldP99MsMaxOfSeconds} ms, load ${chunk.loadAverage1m}`)
  }
  const { out, result } = await writeResult(true)
  console.log(JSON.stringify({ out, totals: result.totals, targets: result.targets }, null, 2))
} finally {
  await server.stop()
}
