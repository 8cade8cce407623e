/**
 * SPEC §12 faults, against a PRIVATE PostgreSQL cluster this test starts, stops, hangs
 * and restarts itself (never the shared one): a database that is down or does not answer
 * gives 503 temporarily_unavailable at the token endpoint, a 503 page at the login form
 * and a 503 /readyz; never a 500; service comes back without a grantd restart, and the
 * log says "lost" and "back" exactly once each.
 */
import t, { type Test } from 'tap'
import { basic, postForm, type RunningServer } from '../helpers/server.js'
import { postgresBin, startPrivatePostgres, type PrivatePostgres } from '../helpers/postgres.js'
import { authorizeUrl, CookieJar, get, loginForm, pkcePair, post, startFlowServer, WEB_REDIRECT } from '../authorization-code/flow.js'
import { seed, serverConfig, type Seeded } from './setup.js'

if (!postgresBin()) {
  if (process.env.CI === 'true') throw new Error('NO POSTGRESQL binaries: the fault tests need initdb and pg_ctl')
  process.stderr.write('\n!!!!! NO POSTGRESQL binaries under /usr/lib/postgresql — fault tests SKIPPED !!!!!\n\n')
  t.pass('skipped')
} else {
  const cluster: PrivatePostgres = await startPrivatePostgres()
  t.teardown(() => cluster.destroy())
  const data: Seeded = await seed(cluster.url, 'faults', [{ username: 'bob', password: 'builder', claims: { name: 'Bob' } }])
  t.teardown(() => data.drop())
  const srv: RunningServer = await startFlowServer(serverConfig(cluster.url, data.schema, { queryTimeoutMs: 800, pool: { connectionTimeoutMs: 800 } }))
  t.teardown(() => srv.close())
  const RO = { authorization: basic('ro', 'ro-secret') }
  const password = () => postForm(`${srv.url}/connect/token`, { grant_type: 'password', username: 'bob', password: 'builder', scope: 'openid offline_access api' }, RO)
  const refresh = (token: string) => postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: token }, RO)
  const ready = async () => (await fetch(`${srv.url}/readyz`)).status

  /** A login form rendered while the database is up, to submit while it is not. */
  async function openLoginForm(): Promise<{ action: string; fields: Record<string, string>; jar: CookieJar }> {
    const jar = new CookieJar()
    const { challenge } = pkcePair()
    const page = await get(authorizeUrl(srv, {
      response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 's1',
      code_challenge: challenge, code_challenge_method: 'S256',
    }), jar)
    return { ...loginForm(page.body), jar }
  }

  async function expectUnavailable(t: Test, refreshToken: string, what: string, accessToken?: string): Promise<void> {
    const started = performance.now()
    const res = await password()
    const ms = performance.now() - started
    t.equal(res.status, 503, `${what}: password grant answers 503`)
    t.equal(res.json.error, 'temporarily_unavailable')
    t.ok(res.headers.get('retry-after'), 'with Retry-After')
    t.equal(res.headers.get('cache-control'), 'no-store')
    t.ok(ms < 5000, `${what}: within the timeouts (${Math.round(ms)} ms)`)
    const r = await refresh(refreshToken)
    t.equal(r.status, 503, `${what}: refresh answers 503 (isActive cannot be asked)`)
    t.equal(r.json.error, 'temporarily_unavailable')
    t.equal(await ready(), 503, `${what}: /readyz is 503`)
    if (accessToken) {
      const info = await fetch(`${srv.url}/connect/userinfo`, { headers: { authorization: `Bearer ${accessToken}` } })
      t.equal(info.status, 503, `${what}: userinfo (findById) answers 503`)
      t.equal(((await info.json()) as { error?: string }).error, 'temporarily_unavailable')
    }
  }

  async function expectRecovered(t: Test, what: string): Promise<void> {
    const deadline = Date.now() + 15_000
    let res = await password()
    while (res.status !== 200 && Date.now() < deadline) {
      t.not(res.status, 500, 'never a 500 while recovering')
      await new Promise((r) => setTimeout(r, 200))
      res = await password()
    }
    t.equal(res.status, 200, `${what}: sign-in works again without a restart`)
    t.equal(await ready(), 200, `${what}: /readyz is 200 again`)
  }

  t.test('database down: 503 everywhere, then recovery without restart', async (t) => {
    const first = await password()
    t.equal(first.status, 200, 'first sign-in')
    const refreshToken = first.json.refresh_token as string
    t.equal(await ready(), 200)
    const form = await openLoginForm()

    await cluster.stop()
    await expectUnavailable(t, refreshToken, 'down', first.json.access_token as string)
    const page = await post(form.action, { ...form.fields, username: 'bob', password: 'builder' }, form.jar)
    t.equal(page.status, 503, 'the login form answers with an error page')
    t.match(page.headers.get('content-type'), /text\/html/)
    t.match(page.body, /temporarily unavailable/i)
    t.equal(page.location, undefined, 'not a redirect to the client')

    await cluster.start()
    await expectRecovered(t, 'restarted')
    t.equal((await refresh(refreshToken)).status, 200, 'the refresh token survived the outage')
    const retry = await post(form.action, { ...form.fields, username: 'bob', password: 'builder' }, form.jar)
    t.equal(retry.status, 302, 'the same login form works once the database is back')
    t.ok(retry.location?.searchParams.get('code'), 'with a code')
  })

  t.test('database hung (SIGSTOP): 503 within the query timeout, then recovery', async (t) => {
    const first = await password()
    t.equal(first.status, 200)
    cluster.pause()
    try {
      await expectUnavailable(t, first.json.refresh_token as string, 'hung')
    } finally {
      cluster.resume()
    }
    await expectRecovered(t, 'resumed')
  })

  t.test('the log says lost and back once per outage, and never shows a 500', async (t) => {
    const lost = srv.log.lines.filter((l) => l.includes('users-postgres: lost the database connection'))
    const back = srv.log.lines.filter((l) => l.includes('users-postgres: database connection is back'))
    t.equal(lost.length, 2, 'one "lost" line per outage (two outages)')
    t.equal(back.length, 2, 'one "back" line per outage')
    const statuses = srv.log.lines.map((l) => JSON.parse(l) as { msg?: string; status?: number }).filter((l) => l.msg === 'request').map((l) => l.status)
    t.notOk(statuses.includes(500), 'no request answered 500')
    t.notOk(srv.log.lines.some((l) => l.includes('builder')), 'no password in the log')
  })
}
