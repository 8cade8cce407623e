/**
 * Load for multi-step flows, in its own process (like autocannon-worker.ts), which
 * autocannon cannot drive. `connections` virtual users run in parallel over keep-alive
 * sockets (node:http, lighter than fetch), each like a browser with its own cookie jar:
 *
 * - `code`: GET the authorization URL (state, nonce and an S256 code_challenge fresh per
 *   flow), follow redirects, submit the first login form it meets (one login POST per
 *   flow), follow redirects until the client's redirect_uri, then redeem the code with
 *   client_secret_basic and the code_verifier. One flow = one sample; a fresh jar per flow,
 *   so every flow signs in.
 * - `refresh`: each user first gets a refresh token by one code flow (before the clock),
 *   then presents the newest refresh token it was given, again and again (rotation: a
 *   rotated-out token is refused, so nothing is replayed). One refresh = one sample.
 *
 * Any answer other than the expected one aborts the run. Output: one JSON line with
 * samples/s, latency percentiles per sample, HTTP requests per sample, and this
 * process's CPU share (near 1.0 means the load generator, not the server, was the limit).
 * Input (stdin, JSON): a {@link FlowLoadSpec}.
 */
import { createHash, randomBytes } from 'node:crypto'
import { Agent, request } from 'node:http'

export interface FlowLoadSpec {
  kind: 'code' | 'refresh'
  authorizationEndpoint: string
  tokenEndpoint: string
  clientId: string
  clientSecret: string
  redirectUri: string
  scope: string
  /** Extra authorization parameters (e.g. prompt=consent where offline_access needs it). */
  extra?: Record<string, string>
  username: string
  password: string
  connections: number
  durationSeconds: number
  /** Do one flow and print its token response instead of measuring (the pre-run check). */
  once?: boolean
}

export interface FlowLoadResult {
  samplesPerSecond: number
  samples: number
  requestsPerSample: number
  latencyMs: { p50: number; p99: number; mean: number; max: number }
  errors: number
  durationSeconds: number
  loadCpuShare: number
}

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: string }

const chunks: Buffer[] = []
for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
const spec = JSON.parse(Buffer.concat(chunks).toString('utf8')) as FlowLoadSpec
const agent = new Agent({ keepAlive: true, maxSockets: spec.connections * 2 })
const basicAuth = `Basic ${Buffer.from(`${encodeURIComponent(spec.clientId)}:${encodeURIComponent(spec.clientSecret)}`).toString('base64')}`
let requests = 0

function send(method: 'GET' | 'POST', url: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  requests++
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) } : {}) } }, (res) => {
      const parts: Buffer[] = []
      res.on('data', (c: Buffer) => parts.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Cookies by name, for one browser (both servers sit on one host; paths are not needed here). */
class Jar {
  private readonly cookies = new Map<string, string>()
  take(headers: Answer['headers']): void {
    const lines = headers['set-cookie'] ?? []
    for (const line of Array.isArray(lines) ? lines : [lines]) {
      const [pair, ...attrs] = line.split(';')
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq).trim()
      const value = pair!.slice(eq + 1).trim()
      if (value === '' || attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=thu, 01 jan 1970/i.test(a))) this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }
  header(): Record<string, string> {
    return this.cookies.size === 0 ? {} : { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') }
  }
}

const decode = (s: string): string => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')

function loginForm(html: string, base: string): { action: string; body: string } {
  const form = /<form\b[^>]*\baction="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i.exec(html)
  if (!form) throw new Error(`no form on the page: ${html.slice(0, 300)}`)
  const fields = new URLSearchParams()
  for (const input of form[2]!.matchAll(/<input\b[^>]*>/gi)) {
    const name = /\bname="([^"]*)"/.exec(input[0])?.[1]
    if (name === undefined || name === 'username' || name === 'password') continue
    fields.set(decode(name), decode(/\bvalue="([^"]*)"/.exec(input[0])?.[1] ?? ''))
  }
  fields.set('username', spec.username)
  fields.set('password', spec.password)
  return { action: new URL(decode(form[1]!), base).href, body: fields.toString() }
}

/** One authorization code flow; returns the token response. */
async function codeFlow(): Promise<Record<string, unknown>> {
  const jar = new Jar()
  const verifier = randomBytes(32).toString('base64url')
  const state = randomBytes(12).toString('base64url')
  const url = new URL(spec.authorizationEndpoint)
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: spec.clientId, redirect_uri: spec.redirectUri, scope: spec.scope, state,
    nonce: randomBytes(12).toString('base64url'), code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
    ...(spec.extra ?? {}),
  })) url.searchParams.set(k, v)
  let at = url.href
  let answer = await send('GET', at, jar.header())
  let posted = false
  for (let hop = 0; ; hop++) {
    if (hop > 10) throw new Error('too many hops')
    jar.take(answer.headers)
    const location = answer.headers.location
    if (answer.status >= 300 && answer.status < 400 && typeof location === 'string') {
      const next = new URL(location, at)
      if (next.href.startsWith(spec.redirectUri)) {
        const code = next.searchParams.get('code')
        if (!code || next.searchParams.get('state') !== state) throw new Error(`bad redirect ${next.href}`)
        const token = await send('POST', spec.tokenEndpoint, { authorization: basicAuth }, new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: spec.redirectUri, code_verifier: verifier }).toString())
        if (token.status !== 200) throw new Error(`token endpoint answered ${token.status}: ${token.body.slice(0, 300)}`)
        return JSON.parse(token.body) as Record<string, unknown>
      }
      at = next.href
      answer = await send('GET', at, jar.header())
    } else if (answer.status === 200 && !posted) {
      posted = true
      const form = loginForm(answer.body, at)
      at = form.action
      answer = await send('POST', at, jar.header(), form.body)
    } else {
      throw new Error(`unexpected ${answer.status} at ${at}: ${answer.body.slice(0, 300)}`)
    }
  }
}

async function refresh(token: string): Promise<string> {
  const answer = await send('POST', spec.tokenEndpoint, { authorization: basicAuth }, new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token }).toString())
  if (answer.status !== 200) throw new Error(`refresh answered ${answer.status}: ${answer.body.slice(0, 300)}`)
  const next = (JSON.parse(answer.body) as { refresh_token?: unknown }).refresh_token
  if (typeof next !== 'string' || next === token) throw new Error('the refresh token was not rotated')
  return next
}

if (spec.once) {
  const first = await codeFlow()
  const out: Record<string, unknown> = { code: first }
  if (spec.kind === 'refresh') {
    const answer = await send('POST', spec.tokenEndpoint, { authorization: basicAuth }, new URLSearchParams({ grant_type: 'refresh_token', refresh_token: String(first.refresh_token) }).toString())
    out.refresh = { status: answer.status, ...(JSON.parse(answer.body) as Record<string, unknown>) }
  }
  process.stdout.write(JSON.stringify(out) + '\n')
  agent.destroy()
  process.exit(0)
}

const chains: string[] = []
if (spec.kind === 'refresh') {
  for (let i = 0; i < spec.connections; i++) {
    const t = (await codeFlow()).refresh_token
    if (typeof t !== 'string') throw new Error('no refresh_token from the code flow')
    chains.push(t)
  }
}

const latencies: number[] = []
requests = 0
const cpuBefore = process.cpuUsage()
const started = performance.now()
const until = started + spec.durationSeconds * 1000
async function user(i: number): Promise<void> {
  while (performance.now() < until) {
    const t0 = performance.now()
    if (spec.kind === 'code') await codeFlow()
    else chains[i] = await refresh(chains[i]!)
    latencies.push(performance.now() - t0)
  }
}
await Promise.all(Array.from({ length: spec.connections }, (_, i) => user(i)))
const elapsed = (performance.now() - started) / 1000
const cpu = process.cpuUsage(cpuBefore)
const measuredRequests = requests
if (spec.kind === 'refresh') for (const t of chains) await refresh(t) // the last token of every chain still rotates
agent.destroy()

latencies.sort((a, b) => a - b)
const pct = (p: number): number => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]! * 10) / 10
const result: FlowLoadResult = {
  samplesPerSecond: Math.round((latencies.length / elapsed) * 10) / 10,
  samples: latencies.length,
  requestsPerSample: Math.round((measuredRequests / latencies.length) * 100) / 100,
  latencyMs: { p50: pct(0.5), p99: pct(0.99), mean: Math.round((latencies.reduce((a, b) => a + b, 0) / latencies.length) * 10) / 10, max: pct(1) },
  errors: 0,
  durationSeconds: Math.round(elapsed * 100) / 100,
  loadCpuShare: Math.round(((cpu.user + cpu.system) / 1e6 / elapsed) * 100) / 100,
}
process.stdout.write(JSON.stringify(result) + '\n')
