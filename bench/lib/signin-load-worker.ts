/**
 * Sign-in load in its own process (like autocannon-worker.ts), for scrypt-bound work where
 * a few dozen requests per second saturate a core and a plain fetch loop is no bottleneck.
 *
 * Every sign-in names a user nobody has signed in as before in this run (`user-<n>`,
 * n counting up from `firstUser`), so no service can answer from a cache of verified
 * passwords: each one checks the scrypt hash. Two kinds:
 * - `password`: one POST to the token endpoint (RFC 6749 §4.3), 200 expected;
 * - `login`: the login form flow, GET /connect/authorize (the form, its CSRF field and
 *   cookie) then POST the form, a 302 to the client with a `code` expected.
 * `connections` loops run until `durationSeconds` pass; one flow is one "request" in the result.
 * Input (stdin, JSON): a {@link SignInLoadSpec}. Output: one line of {@link LoadResult}.
 */
import type { LoadResult } from './load.js'

export interface SignInLoadSpec {
  kind: 'password' | 'login'
  /** The server's base URL. */
  base: string
  password: string
  firstUser: number
  connections: number
  durationSeconds: number
}

const chunks: Buffer[] = []
for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
const spec = JSON.parse(Buffer.concat(chunks).toString('utf8')) as SignInLoadSpec

const BASIC = `Basic ${Buffer.from('ro:ro-secret').toString('base64')}`
let next = spec.firstUser
const latencies: number[] = []
let ok = 0
let bad = 0
let errors = 0
let firstProblem: string | undefined

async function passwordGrant(user: number): Promise<boolean> {
  const res = await fetch(`${spec.base}/connect/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: BASIC },
    body: new URLSearchParams({ grant_type: 'password', username: `user-${user}`, password: spec.password, scope: 'openid api' }).toString(),
  })
  const text = await res.text()
  if (res.status !== 200) firstProblem ??= `password grant answered ${res.status}: ${text.slice(0, 200)}`
  return res.status === 200
}

const field = (html: string, name: string): string | undefined => new RegExp(`name="${name}"[^>]*value="([^"]*)"`).exec(html)?.[1]?.replace(/&amp;/g, '&')

async function loginFlow(user: number): Promise<boolean> {
  const authorize = new URL(`${spec.base}/connect/authorize`)
  authorize.search = new URLSearchParams({
    response_type: 'code', client_id: 'web', redirect_uri: 'http://127.0.0.1:5000/callback', scope: 'openid', state: `s${user}`,
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
  }).toString()
  const page = await fetch(authorize, { redirect: 'manual' })
  const html = await page.text()
  const cookie = page.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ')
  const action = /<form\b[^>]*\baction="([^"]*)"/.exec(html)?.[1]?.replace(/&amp;/g, '&')
  if (page.status !== 200 || !action) {
    firstProblem ??= `authorize answered ${page.status}`
    return false
  }
  const form = new URLSearchParams()
  for (const input of html.matchAll(/<input\b[^>]*type="hidden"[^>]*>/gi)) {
    const name = /\bname="([^"]*)"/.exec(input[0])?.[1]
    if (name) form.set(name, field(input[0], name) ?? '')
  }
  form.set('username', `user-${user}`)
  form.set('password', spec.password)
  const res = await fetch(new URL(action, spec.base), {
    method: 'POST', redirect: 'manual', body: form.toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
  })
  await res.arrayBuffer()
  const location = res.headers.get('location')
  const good = res.status === 302 && location !== null && new URL(location).searchParams.has('code')
  if (!good) firstProblem ??= `login answered ${res.status} ${location ?? ''}`
  return good
}

const started = performance.now()
const deadline = started + spec.durationSeconds * 1000
await Promise.all(Array.from({ length: spec.connections }, async () => {
  while (performance.now() < deadline) {
    const user = next++
    const t0 = performance.now()
    try {
      const good = spec.kind === 'password' ? await passwordGrant(user) : await loginFlow(user)
      if (good) ok++
      else bad++
    } catch (err) {
      errors++
      firstProblem ??= String(err)
    }
    latencies.push(performance.now() - t0)
  }
}))
const elapsed = (performance.now() - started) / 1000
latencies.sort((a, b) => a - b)
const pct = (p: number): number => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN)
const summary: LoadResult & { usersUsed: number; firstProblem?: string } = {
  requestsPerSecond: ok / elapsed,
  requestsTotal: ok + bad + errors,
  latencyMs: { p50: pct(0.5), p99: pct(0.99), mean: Math.round(latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length)), max: pct(1) },
  status2xx: ok,
  non2xx: bad,
  errors,
  timeouts: 0,
  durationSeconds: elapsed,
  usersUsed: next - spec.firstUser,
  ...(firstProblem ? { firstProblem } : {}),
}
process.stdout.write(JSON.stringify(summary) + '\n')
