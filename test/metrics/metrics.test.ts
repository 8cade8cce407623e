/**
 * SPEC §13 metrics: Prometheus text at GET /metrics on a listener of its own, after known
 * traffic, with exact counts; never on the public port; the sum over workers with --workers.
 */
import t from 'tap'
import { join } from 'node:path'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basic, freePort, postForm, startCli, startServer } from '../helpers/server.js'
import { findRedis } from '../helpers/redis.js'
import { baseConfig, loginForCode, redeem, startFlowServer } from '../authorization-code/flow.js'
import { sample, scrape } from './scrape.js'

const token = (url: string, form: Record<string, string>, id: string, secret: string) =>
  postForm(`${url}/connect/token`, form, { authorization: basic(id, secret) })

t.test('counts after known traffic', async (t) => {
  const metricsPort = await freePort()
  const base = baseConfig()
  const srv = await startFlowServer({
    ...base,
    metrics: { port: metricsPort },
    throttle: { maxFailuresPerUser: 2 },
    plugins: [...(base.plugins as string[]), '@grantd/grant-password', '@grantd/grant-client-credentials'],
    clients: [
      ...(base.clients as unknown[]),
      { client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password', 'refresh_token'], scope: 'openid api offline_access' },
    ],
  })
  t.teardown(() => srv.close())
  const M = `http://127.0.0.1:${metricsPort}/metrics`

  // client_credentials: 3 issued, then 3 refusals of different kinds.
  for (let i = 0; i < 3; i++) t.equal((await token(srv.url, { grant_type: 'client_credentials', scope: 'api' }, 'svc', 'svc-secret')).status, 200)
  t.equal((await token(srv.url, { grant_type: 'client_credentials', scope: 'admin' }, 'svc', 'svc-secret')).json.error, 'invalid_scope')
  t.equal((await token(srv.url, { grant_type: 'client_credentials', scope: 'api' }, 'svc', 'wrong')).json.error, 'invalid_client')
  t.equal((await token(srv.url, { grant_type: 'urn:nope', scope: 'api' }, 'svc', 'svc-secret')).json.error, 'unsupported_grant_type')

  // password grant: one success with a refresh token, two failures, then a locked attempt (even with the right password).
  const ok = await token(srv.url, { grant_type: 'password', username: 'bob', password: 'builder', scope: 'api offline_access' }, 'ro', 'ro-secret')
  t.equal(ok.status, 200, ok.text)
  for (let i = 0; i < 2; i++) t.equal((await token(srv.url, { grant_type: 'password', username: 'alice', password: 'nope', scope: 'api' }, 'ro', 'ro-secret')).json.error, 'invalid_grant')
  const locked = await token(srv.url, { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'api' }, 'ro', 'ro-secret')
  t.equal(locked.json.error, 'invalid_grant')
  t.ok(locked.headers.get('retry-after'), 'throttled')

  // refresh: one rotation, then the old token again is a reuse.
  const rt = ok.json.refresh_token as string
  t.equal((await token(srv.url, { grant_type: 'refresh_token', refresh_token: rt }, 'ro', 'ro-secret')).status, 200)
  t.equal((await token(srv.url, { grant_type: 'refresh_token', refresh_token: rt }, 'ro', 'ro-secret')).json.error, 'invalid_grant')

  // the login form: bob signs in (alice is locked), and the code is redeemed.
  const login = await loginForCode(srv, { username: 'bob', password: 'builder', scope: 'openid api' })
  t.equal((await redeem(srv, login.code, login.verifier)).status, 200)

  // a raw path nobody routes, and the JWKS.
  t.equal((await fetch(`${srv.url}/no/such/path-${'x'.repeat(8)}`)).status, 404)
  t.equal((await fetch(`${srv.url}/.well-known/jwks.json`)).status, 200)

  const { status, type, samples, text } = await scrape(M)
  t.equal(status, 200)
  t.match(type, /^text\/plain; version=0\.0\.4/)
  const v = (name: string, labels?: Record<string, string>) => samples.get(sample(name, labels))
  t.equal(v('grantd_tokens_issued_total', { grant_type: 'client_credentials', client_id: 'svc' }), 3)
  t.equal(v('grantd_tokens_issued_total', { grant_type: 'password', client_id: 'ro' }), 1)
  t.equal(v('grantd_tokens_issued_total', { grant_type: 'refresh_token', client_id: 'ro' }), 1)
  t.equal(v('grantd_tokens_issued_total', { grant_type: 'authorization_code', client_id: 'web' }), 1)
  t.equal(v('grantd_token_errors_total', { error: 'invalid_scope' }), 1)
  t.equal(v('grantd_token_errors_total', { error: 'invalid_client' }), 1)
  t.equal(v('grantd_token_errors_total', { error: 'unsupported_grant_type' }), 1)
  t.equal(v('grantd_token_errors_total', { error: 'invalid_grant' }), 4, 'two wrong passwords, one locked, one reuse')
  t.equal(v('grantd_logins_total', { result: 'success' }), 2, 'password grant and login form alike')
  t.equal(v('grantd_logins_total', { result: 'failure' }), 2)
  t.equal(v('grantd_logins_total', { result: 'locked' }), 1)
  t.equal(v('grantd_refresh_reuse_total'), 1)
  // 6 client_credentials + 4 password + 2 refresh + 1 code redemption = 13 token requests, 6 of them 200.
  const tokenRequests = [...samples].filter(([k]) => k.startsWith('grantd_http_request_duration_seconds_count{') && k.includes('route="/connect/token"'))
  t.equal(tokenRequests.reduce((n, [, c]) => n + c, 0), 13)
  t.equal(v('grantd_http_request_duration_seconds_count', { route: '/connect/token', method: 'POST', status: '200' }), 6)
  t.equal(v('grantd_http_request_duration_seconds_count', { route: '/.well-known/jwks.json', method: 'GET', status: '200' }), 1)
  t.equal(v('grantd_http_request_duration_seconds_count', { route: '(unmatched)', method: 'GET', status: '404' }), 1)
  t.equal(v('grantd_http_request_duration_seconds_bucket', { route: '/connect/token', method: 'POST', status: '200', le: '+Inf' }), 6)
  t.notMatch(text, /no\/such\/path/, 'a raw path never becomes a label')
  t.ok((v('grantd_store_duration_seconds_count', { operation: 'consume' }) ?? 0) >= 1, 'store calls are timed (the code redemption\'s consume)')
  t.ok((v('grantd_store_duration_seconds_count', { operation: 'rotate' }) ?? 0) >= 1, 'and the refresh rotation\'s one rotate call')
  // Metrics must not hide the store's optional operations (mixed paths on one key across processes).
  t.ok((v('grantd_store_duration_seconds_count', { operation: 'indexUpdate' }) ?? 0) >= 1, 'and the session index\'s indexUpdate (the login form)')
  t.equal(v('grantd_store_errors_total', { operation: 'consume' }), 0)
  t.ok(samples.has('process_cpu_user_seconds_total'), 'process metrics')
  t.ok(samples.has('nodejs_eventloop_lag_seconds'), 'Node.js metrics')

  // Never on the public port.
  const pub = await fetch(`${srv.url}/metrics`)
  t.equal(pub.status, 404)
  t.notMatch(await pub.text(), /grantd_/)
  const other = await fetch(`http://127.0.0.1:${metricsPort}/`)
  t.equal(other.status, 404)
  t.equal((await fetch(M, { method: 'POST' })).status, 404)
})

t.test('store failures are counted', async (t) => {
  const metricsPort = await freePort()
  const srv = await startServer({
    store: { use: './test/fixtures/core/down-store.mjs' },
    metrics: { port: metricsPort, host: '127.0.0.1' },
    plugins: ['@grantd/grant-client-credentials'],
    clients: [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' }],
  })
  t.teardown(() => srv.close())
  for (let i = 0; i < 2; i++) t.equal((await fetch(`${srv.url}/readyz`)).status, 503)
  const { samples } = await scrape(`http://127.0.0.1:${metricsPort}/metrics`)
  t.equal(samples.get(sample('grantd_store_errors_total', { operation: 'ping' })), 2)
  t.equal(samples.get(sample('grantd_store_duration_seconds_count', { operation: 'ping' })), 2)
})

t.test('off by default: no listener, nothing on the public port', async (t) => {
  const srv = await startServer({
    plugins: ['@grantd/grant-client-credentials'],
    clients: [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' }],
  })
  t.teardown(() => srv.close())
  t.equal((await fetch(`${srv.url}/metrics`)).status, 404)
  t.notOk(srv.log.lines.some((l) => l.includes('metrics listening')))
})

t.test('a bad metrics config names the key; a port in use fails the start', async (t) => {
  await t.rejects(startServer({ metrics: { port: 'x' } }), /^metrics\.port: expected integer, got string$/)
  await t.rejects(startServer({ metrics: { prt: 1 } }), /^metrics\.prt: unknown key$/)
  const busy = await startServer({})
  t.teardown(() => busy.close())
  await t.rejects(startServer({ metrics: { port: busy.port } }), { code: 'EADDRINUSE' })
})

t.test('--workers 2: one scrape of the primary shows the sum over the workers', async (t) => {
  const redis = await findRedis()
  if (!redis) { t.skip('no Redis available (see notice above)', () => {}); return }
  t.teardown(() => redis.stop())
  const dir = mkdtempSync(join(tmpdir(), 'grantd-metrics-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const metricsPort = await freePort()
  const file = join(dir, 'grantd.json')
  writeFileSync(file, JSON.stringify({
    store: { use: '@grantd/store-redis', options: { url: redis.url, prefix: `grantd-ops-metrics-${process.pid}:` } },
    metrics: { port: metricsPort },
    plugins: ['@grantd/grant-client-credentials'],
    clients: [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' }],
  }))
  const child = await startCli(file, { args: ['--workers', '2'] })
  t.teardown(() => child.stop('SIGKILL'))
  const deadline = Date.now() + 15_000
  while (!child.output().includes('"grantd workers listening"') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  // A new connection per request: the primary hands connections to the workers in turn.
  for (let i = 0; i < 10; i++) {
    const res = await postForm(`${child.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc', 'svc-secret'), connection: 'close' })
    t.equal(res.status, 200)
  }
  // Logs are written asynchronously: wait for the ten request lines.
  const served = () => child.output().split('\n').filter((l) => l.includes('"path":"/connect/token"')).length
  for (const until = Date.now() + 5000; served() < 10 && Date.now() < until;) await new Promise((r) => setTimeout(r, 50))
  t.equal(served(), 10)
  const { status, samples } = await scrape(`http://127.0.0.1:${metricsPort}/metrics`)
  t.equal(status, 200)
  t.equal(samples.get(sample('grantd_tokens_issued_total', { grant_type: 'client_credentials', client_id: 'svc' })), 10, 'the sum of both workers')
  t.equal((await fetch(`${child.url}/metrics`)).status, 404, 'not on the public port')
  t.equal(await child.stop('SIGTERM'), 0)
})

