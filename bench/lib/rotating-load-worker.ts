/**
 * autocannon for rotating refresh tokens, in its own process (like autocannon-worker.ts):
 * a rotated-out token is refused, so no request can be replayed. Before the clock starts
 * it obtains `seeds` first tokens (`seed` request, e.g. a password grant); then every
 * request takes a token from a shared pool and every response puts the new token it
 * carries back. autocannon records a response (onResponse) before it builds the
 * connection's next request (setupRequest), so with at least one seed per connection
 * the pool never runs dry while every answer is a 200.
 * Input (stdin, JSON): a {@link RotatingLoadSpec}. Output: one line of {@link LoadResult}.
 */
import autocannon from 'autocannon'
import type { LoadResult } from './load.js'

export interface RotatingLoadSpec {
  url: string
  headers: Record<string, string>
  /** The request that mints a first token: its body (same url and headers). */
  seedBody: string
  seeds: number
  /** Body of every measured request, with `{token}` where the refresh token goes. */
  bodyTemplate: string
  connections: number
  durationSeconds: number
}

const chunks: Buffer[] = []
for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
const spec = JSON.parse(Buffer.concat(chunks).toString('utf8')) as RotatingLoadSpec

async function mint(body: string): Promise<string> {
  const res = await fetch(spec.url, { method: 'POST', headers: spec.headers, body })
  const text = await res.text()
  const token = res.status === 200 ? (JSON.parse(text) as { refresh_token?: unknown }).refresh_token : undefined
  if (typeof token !== 'string') throw new Error(`seed request answered ${res.status}: ${text.slice(0, 300)}`)
  return token
}

const pool: string[] = []
for (let i = 0; i < spec.seeds; i++) pool.push(await mint(spec.seedBody))
let starved = 0

const result = await autocannon({
  url: spec.url,
  method: 'POST',
  headers: spec.headers,
  connections: spec.connections,
  duration: spec.durationSeconds,
  pipelining: 1,
  requests: [{
    method: 'POST',
    setupRequest(request: Record<string, unknown>) {
      const token = pool.pop()
      if (token === undefined) starved++
      return { ...request, body: spec.bodyTemplate.replace('{token}', encodeURIComponent(token ?? 'pool-empty')) }
    },
    onResponse(status: number, body: string) {
      if (status !== 200) return
      const token = (JSON.parse(body) as { refresh_token?: unknown }).refresh_token
      if (typeof token === 'string') pool.push(token)
    },
  }],
})

// The last token of every chain must still rotate: proof that the run was a real chain.
const last = pool.pop()
if (last === undefined) throw new Error('no token left in the pool')
await mint(spec.bodyTemplate.replace('{token}', encodeURIComponent(last)))

const summary: LoadResult = {
  requestsPerSecond: result.requests.average,
  requestsTotal: result.requests.total,
  latencyMs: { p50: result.latency.p50, p99: result.latency.p99, mean: result.latency.mean, max: result.latency.max },
  status2xx: result['2xx'],
  non2xx: result.non2xx,
  errors: result.errors + starved,
  timeouts: result.timeouts,
  durationSeconds: result.duration,
}
process.stdout.write(JSON.stringify(summary) + '\n')
