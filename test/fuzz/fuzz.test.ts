/**
 * grantd's own fuzz suite (issue 7). Seeded and bounded in `npm test`; longer with
 * `FUZZ_LONG=1` (`npm run fuzz`). Reproduce a run with `FUZZ_SEED=<seed>`, one case with
 * `FUZZ_CASE=<index>` (printed with every finding).
 *
 * Every endpoint the server exposes (discovery + plugin routes, found at test time) gets
 * generated hostile requests over raw sockets; `oracle.ts` says what no answer may be.
 * Afterwards the server must still serve every real flow.
 */
import t, { type Test } from 'tap'
import { basic, postForm } from '../helpers/server.js'
import { authorizeUrl, CookieJar, get, loginForm, pkcePair, post } from '../authorization-code/flow.js'
import { generateCase } from './cases.js'
import { judge, type Finding } from './oracle.js'
import { Prng } from './prng.js'
import { exchange } from './raw-client.js'
import { clientAssertion, JWT_BEARER_ASSERTION, SECRETS, startTarget, TOKEN_EXCHANGE, ACCESS_TOKEN_TYPE, WEB_REDIRECT, type Target } from './target.js'

const LONG = process.env.FUZZ_LONG === '1'
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 0x67a17d
const CASES = process.env.FUZZ_CASES ? Number(process.env.FUZZ_CASES) : LONG ? 100_000 : 4_000
const ONLY = process.env.FUZZ_CASE !== undefined ? Number(process.env.FUZZ_CASE) : undefined
/** Every answer within this, or it is a hang (grantd's own request timeout is 30 s). */
const DEADLINE_MS = 5_000
const CONCURRENCY = 6

async function fuzz(target: Target, seed: number, count: number): Promise<{ findings: Array<Finding & { index: number }>; strategies: Map<string, number>; statuses: Map<number, number>; endpoints: Set<string> }> {
  const findings: Array<Finding & { index: number }> = []
  const strategies = new Map<string, number>()
  const statuses = new Map<number, number>()
  const endpoints = new Set<string>()
  const indices = ONLY !== undefined ? [ONLY] : Array.from({ length: count }, (_, i) => i)
  let next = 0
  async function worker(): Promise<void> {
    while (next < indices.length) {
      const index = indices[next++]!
      const fuzzCase = await generateCase(Prng.forCase(seed, index), target)
      const answer = await exchange({ port: target.srv.port, request: fuzzCase.request, timeoutMs: DEADLINE_MS })
      strategies.set(fuzzCase.strategy, (strategies.get(fuzzCase.strategy) ?? 0) + 1)
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)
      endpoints.add(fuzzCase.endpoint.path)
      for (const f of judge(fuzzCase, answer, target)) findings.push({ ...f, index })
      if (ONLY !== undefined) t.comment(`case ${index}: ${fuzzCase.request.subarray(0, 2000).toString("latin1")}\n→ ${answer.status} ${answer.headerLines.join(' | ')}\n${answer.body.toString('utf8').slice(0, 500)}`)
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  return { findings, strategies, statuses, endpoints }
}

/** The flows a client relies on, after the fuzz: the server must be unharmed. */
async function realFlowsStillWork(t: Test, target: Target): Promise<void> {
  const { srv } = target
  t.equal((await fetch(`${srv.url}/healthz`)).status, 200, 'alive')
  t.equal((await fetch(`${srv.url}/readyz`)).status, 200, 'ready')
  const cc = await postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc', SECRETS.svc!) })
  t.equal(cc.status, 200, `client_credentials: ${cc.text}`)
  const jwt = await postForm(`${srv.url}/oauth2/token`, { grant_type: 'client_credentials', scope: 'api', client_assertion_type: JWT_BEARER_ASSERTION, client_assertion: await clientAssertion(target.clientKey, target.issuer) })
  t.equal(jwt.status, 200, `private_key_jwt: ${jwt.text}`)
  const pw = await postForm(`${srv.url}/connect/token`, { grant_type: 'password', username: 'bob', password: 'builder', scope: 'openid api offline_access', client_id: 'ro', client_secret: SECRETS.ro! })
  t.equal(pw.status, 200, `password: ${pw.text}`)
  const refreshed = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: pw.json.refresh_token as string, client_id: 'ro', client_secret: SECRETS.ro! })
  t.equal(refreshed.status, 200, `refresh: ${refreshed.text}`)
  const userinfo = await fetch(`${srv.url}/connect/userinfo`, { headers: { authorization: `Bearer ${refreshed.json.access_token as string}` } })
  t.equal(userinfo.status, 200, 'userinfo')
  const exchanged = await postForm(`${srv.url}/connect/token`, { grant_type: TOKEN_EXCHANGE, subject_token: cc.json.access_token as string, subject_token_type: ACCESS_TOKEN_TYPE, scope: 'api' }, { authorization: basic('svc', SECRETS.svc!) })
  t.equal(exchanged.status, 200, `token exchange: ${exchanged.text}`)
  const introspected = await postForm(`${srv.url}/connect/introspect`, { token: cc.json.access_token as string }, { authorization: basic('svc', SECRETS.svc!) })
  t.equal(introspected.json.active, true, 'introspection')

  const jar = new CookieJar()
  const { verifier, challenge } = pkcePair()
  const page = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid api', state: 'after', code_challenge: challenge, code_challenge_method: 'S256' }), jar)
  t.equal(page.status, 200, 'login page')
  const form = loginForm(page.body)
  const landed = await post(form.action, { ...form.fields, username: 'bob', password: 'builder' }, jar)
  const code = landed.location?.searchParams.get('code')
  t.ok(code, `code flow: ${landed.status}`)
  const redeemed = await postForm(`${srv.url}/connect/token`, { grant_type: 'authorization_code', code: code ?? '', redirect_uri: WEB_REDIRECT, code_verifier: verifier }, { authorization: basic('web', SECRETS.web!) })
  t.equal(redeemed.status, 200, `code redemption: ${redeemed.text}`)
}

for (const name of ['configured-issuer', 'derived-issuer'] as const) {
  t.test(`fuzz: ${name}`, async (t) => {
    const target = await startTarget(name)
    t.teardown(() => target.close())
    const seed = name === 'configured-issuer' ? SEED : SEED + 1
    const count = Math.ceil(CASES / 2)
    const started = performance.now()
    const { findings, strategies, statuses, endpoints } = await fuzz(target, seed, count)
    const seconds = (performance.now() - started) / 1000
    t.comment(`${name}: ${ONLY !== undefined ? 1 : count} cases, seed ${seed}, ${seconds.toFixed(1)} s; endpoints ${[...endpoints].sort().join(' ')}`)
    t.comment(`strategies ${[...strategies].map(([k, v]) => `${k}=${v}`).join(' ')}; statuses ${[...statuses].sort((a, b) => a[0] - b[0]).map(([k, v]) => `${k}=${v}`).join(' ')}`)
    t.ok(target.endpoints.length >= 12, `covers every discovered endpoint (${target.endpoints.length})`)
    const unique = new Map<string, Finding & { index: number }>()
    for (const f of findings) if (!unique.has(f.problem.slice(0, 60))) unique.set(f.problem.slice(0, 60), f)
    for (const f of unique.values()) t.comment(`FINDING (FUZZ_SEED=${seed} FUZZ_CASE=${f.index}) ${f.status} ${f.problem}\n  ${f.summary}`)
    t.equal(findings.length, 0, `no findings in ${count} hostile requests`)
    const errors = target.srv.log.lines.filter((l) => l.includes('"level":"error"'))
    t.same(errors.slice(0, 5), [], 'nothing logged as an unhandled error')
    await realFlowsStillWork(t, target)
  })
}
