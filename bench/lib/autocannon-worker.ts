/**
 * Runs one autocannon measurement in its own process (so the load generator can sit on
 * its own CPU) and prints a one-line JSON summary. Input: a LoadSpec as JSON on stdin.
 */
import autocannon from 'autocannon'
import type { LoadResult, LoadSpec } from './load.js'

const chunks: Buffer[] = []
for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
const spec = JSON.parse(Buffer.concat(chunks).toString('utf8')) as LoadSpec

const result = await autocannon({
  url: spec.url,
  method: spec.method,
  headers: spec.headers,
  ...(spec.body !== undefined ? { body: spec.body } : {}),
  connections: spec.connections,
  ...(spec.amount !== undefined ? { amount: spec.amount } : { duration: spec.durationSeconds }),
  ...(spec.timeoutSeconds !== undefined ? { timeout: spec.timeoutSeconds } : {}),
  pipelining: 1,
})

const summary: LoadResult = {
  requestsPerSecond: result.requests.average,
  requestsTotal: result.requests.total,
  latencyMs: { p50: result.latency.p50, p99: result.latency.p99, mean: result.latency.mean, max: result.latency.max },
  status2xx: result['2xx'],
  non2xx: result.non2xx,
  errors: result.errors,
  timeouts: result.timeouts,
  durationSeconds: result.duration,
}
process.stdout.write(JSON.stringify(summary) + '\n')
