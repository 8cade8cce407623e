/**
 * SPEC §13 audit events and request ids, black-box: real traffic over HTTP against a
 * running server, then a scan of every log line it wrote.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { authorizeUrl, CookieJar, get, loginForCode, loginForm, post, redeem, startFlowServer, WEB_AUTH } from '../authorization-code/flow.js'
import { basic, postForm } from '../helpers/server.js'
import { endSessionUrl, sessionConfig, THIRD_REDIRECT } from '../sessions/setup.js'

type Line = Record<string, unknown>
const unique = (label: string) => `${label}-${randomBytes(9).toString('base64url')}`
const CAROL = { sub: 'u-carol', username: unique('carol'), password: unique('carolpw'), tenant: 'acme', claims: { name: 'Carol' } }
const DAVE = { sub: 'u-dave', username: unique('dave'), password: unique('davepw'), claims: { name: 'Dave' } }
const RO_SECRET = unique('rosecret')
const WRONG_PASSWORD = unique('wrongpw')
const WRONG_SECRET = unique('wrongsecret')

function auditConfig(trust: boolean): Record<string, unknown> {
  const config = sessionConfig()
  const clients = config.clients as Array<Record<string, unknown>>
  clients.push({ client_id: 'ro', client_secret: RO_SECRET, grant_types: ['password', 'refresh_token'], scope: 'openid profile api offline_access' })
  return {
    ...config,
    log: { level: 'debug' },
    plugins: [...(config.plugins as unknown[]), '@grantd/grant-password', '@grantd/acr-tenant'],
    users: { use: '@grantd/users-static', options: { users: [CAROL, DAVE] } },
    throttle: { maxFailuresPerUser: 3, maxFailuresPerAddress: 0 },
    ...(trust ? { proxy: { trust: ['127.0.0.1'] } } : {}),
  }
}

t.test('audit events, request ids and error codes after known traffic', async (t) => {
  const srv = await startFlowServer(auditConfig(true))
  t.teardown(srv.close)
  const token = `${srv.url}/connect/token`
  const RO = { authorization: basic('ro', RO_SECRET) }
  const secrets = new Set<string>([CAROL.password, DAVE.password, RO_SECRET, WRONG_PASSWORD, WRONG_SECRET, 'web-secret', 'third-secret'])
  const keep = (...values: unknown[]) => { for (const v of values) if (typeof v === 'string' && v.length >= 8) secrets.add(v) }
  /** request id → the response's status, for every response the test saw. */
  const seen = new Map<string, number>()
  const note = (status: number, headers: Headers) => {
    const id = headers.get('x-request-id')
    t.ok(id, 'every response has X-Request-Id')
    if (id) seen.set(id, status)
  }
  const tokenRequest = async (form: Record<string, string>, headers: Record<string, string> = RO) => {
    const res = await postForm(token, form, headers)
    note(res.status, res.headers)
    keep(res.json.access_token, res.json.refresh_token, res.json.id_token)
    return res
  }
  const lines = (): Line[] => srv.log.lines.map((l) => JSON.parse(l) as Line)
  const events = (name: string): Line[] => lines().filter((l) => l.event === name)
  const last = (name: string): Line | undefined => events(name).at(-1)

  t.test('password grant: succeeded, failed, locked', async (t) => {
    const good = await tokenRequest({ grant_type: 'password', username: CAROL.username, password: CAROL.password, scope: 'openid api offline_access', acr_values: 'tenant:acme' })
    t.equal(good.status, 200, good.text)
    const issued = last('token.issued')!
    t.match(issued, { client_id: 'ro', grant_type: 'password', sub: 'u-carol', tenant: 'acme', request_id: good.headers.get('x-request-id') })
    const ok = last('login.succeeded')!
    t.match(ok, { client_id: 'ro', sub: 'u-carol', tenant: 'acme', request_id: good.headers.get('x-request-id') })
    t.type(ok.user, 'string')
    t.not(ok.user, CAROL.username)

    const bad = await tokenRequest({ grant_type: 'password', username: CAROL.username.toUpperCase(), password: WRONG_PASSWORD, scope: 'api' })
    t.equal(bad.json.error, 'invalid_grant')
    const failed = last('login.failed')!
    t.match(failed, { client_id: 'ro', request_id: bad.headers.get('x-request-id') })
    t.notOk('sub' in failed, 'a failed sign-in names no account')
    t.equal(failed.user, ok.user, 'one keyed hash per (folded) username: lines of one user correlate')
    t.match(last('token.refused'), { client_id: 'ro', grant_type: 'password', error: 'invalid_grant', request_id: bad.headers.get('x-request-id') })

    for (let i = 0; i < 3; i++) await tokenRequest({ grant_type: 'password', username: DAVE.username, password: WRONG_PASSWORD, scope: 'api' })
    const locked = await tokenRequest({ grant_type: 'password', username: DAVE.username, password: DAVE.password, scope: 'api' })
    t.equal(locked.json.error, 'invalid_grant')
    const lock = last('login.locked')!
    t.match(lock, { client_id: 'ro', request_id: locked.headers.get('x-request-id') })
    t.not(lock.user, ok.user, 'another user, another hash')
    t.equal(events('login.failed').filter((l) => l.user === lock.user).length, 3)
  })

  t.test('login form: succeeded, failed, locked; the error page\'s line has an error code', async (t) => {
    const login = await loginForCode(srv, { username: CAROL.username, password: CAROL.password })
    keep(login.code, login.landing.searchParams.get('code'))
    t.match(last('login.succeeded'), { client_id: 'web', sub: 'u-carol' })
    const redeemed = await redeem(srv, login.code, login.verifier)
    keep(redeemed.json.access_token, redeemed.json.refresh_token, redeemed.json.id_token, login.verifier)
    t.match(last('token.issued'), { client_id: 'web', grant_type: 'authorization_code', sub: 'u-carol' })

    const jar = new CookieJar()
    const page = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'nopkce', redirect_uri: 'http://127.0.0.1:5000/callback', scope: 'openid', state: 's1' }), jar)
    const form = loginForm(page.body)
    const wrong = await post(form.action, { ...form.fields, username: CAROL.username, password: WRONG_PASSWORD }, jar)
    t.equal(wrong.status, 401)
    const failedId = wrong.headers.get('x-request-id')
    t.match(last('login.failed'), { client_id: 'nopkce', request_id: failedId })
    t.match(lines().find((l) => l.msg === 'request' && l.request_id === failedId), { status: 401, error: 'access_denied' })

    const lockedPage = await post(form.action, { ...form.fields, username: DAVE.username, password: DAVE.password }, jar)
    t.equal(lockedPage.status, 429)
    t.match(last('login.locked'), { client_id: 'nopkce', request_id: lockedPage.headers.get('x-request-id') })
  })

  t.test('client.auth_failed names a registered client only', async (t) => {
    const res = await tokenRequest({ grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('ro', WRONG_SECRET) })
    t.equal(res.status, 401)
    const id = res.headers.get('x-request-id')
    t.match(last('client.auth_failed'), { client_id: 'ro', error: 'invalid_client', request_id: id })
    t.match(last('token.refused'), { error: 'invalid_client', request_id: id })
    const unknownId = unique('notaclient')
    const unknown = await tokenRequest({ grant_type: 'client_credentials', scope: 'api', client_id: unknownId, client_secret: WRONG_SECRET }, {})
    t.equal(unknown.status, 401)
    const line = last('client.auth_failed')!
    t.equal(line.request_id, unknown.headers.get('x-request-id'))
    t.notOk('client_id' in line, 'an unregistered client_id is attacker text: not logged')
    secrets.add(unknownId)
  })

  t.test('refresh.reuse_detected', async (t) => {
    const first = await tokenRequest({ grant_type: 'password', username: CAROL.username, password: CAROL.password, scope: 'openid offline_access' })
    const rt = String(first.json.refresh_token)
    t.equal((await tokenRequest({ grant_type: 'refresh_token', refresh_token: rt })).status, 200)
    const replay = await tokenRequest({ grant_type: 'refresh_token', refresh_token: rt })
    t.equal(replay.json.error, 'invalid_grant')
    t.match(last('refresh.reuse_detected'), { client_id: 'ro', sub: 'u-carol', request_id: replay.headers.get('x-request-id') })
  })

  t.test('session.ended, consent.granted, consent.revoked', async (t) => {
    const login = await loginForCode(srv, { username: CAROL.username, password: CAROL.password, scope: 'openid' })
    const tokens = await redeem(srv, login.code, login.verifier)
    keep(login.code, tokens.json.id_token, tokens.json.access_token)
    const out = await get(endSessionUrl(srv, { id_token_hint: String(tokens.json.id_token) }), login.jar)
    t.equal(out.status, 200)
    t.match(last('session.ended'), { sub: 'u-carol', request_id: out.headers.get('x-request-id') })

    const jar = new CookieJar()
    const page = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'third', redirect_uri: THIRD_REDIRECT, scope: 'openid profile', state: 's2' }), jar)
    const form = loginForm(page.body)
    const consentPage = await post(form.action, { ...form.fields, username: CAROL.username, password: CAROL.password }, jar)
    const decision = loginForm(consentPage.body)
    const allowed = await post(decision.action, { ...decision.fields, decision: 'allow' }, jar)
    t.equal(allowed.status, 302)
    keep(allowed.location?.searchParams.get('code'))
    t.match(last('consent.granted'), { sub: 'u-carol', client_id: 'third', request_id: allowed.headers.get('x-request-id') })
    const revoke = await fetch(`${srv.url}/test/consent/revoke?sub=u-carol&client=third`, { method: 'POST' })
    t.equal(revoke.status, 200)
    t.match(last('consent.revoked'), { sub: 'u-carol', client_id: 'third', request_id: revoke.headers.get('x-request-id') })
  })

  t.test('X-Request-Id from a trusted proxy is kept when it is a bounded id', async (t) => {
    const kept = await fetch(`${srv.url}/healthz`, { headers: { 'x-request-id': 'trace-0af7651916cd43dd' } })
    t.equal(kept.headers.get('x-request-id'), 'trace-0af7651916cd43dd')
    t.ok(lines().some((l) => l.msg === 'request' && l.request_id === 'trace-0af7651916cd43dd'))
    for (const hostile of ['x'.repeat(129), 'a b', 'id","event":"forged', '']) {
      const res = await fetch(`${srv.url}/healthz`, { headers: { 'x-request-id': hostile } })
      t.match(res.headers.get('x-request-id'), /^[0-9a-f-]{36}$/, `replaced: ${JSON.stringify(hostile.slice(0, 20))}`)
    }
  })

  t.test('every line: request_id on request lines, error codes on error lines, no secret or username', async (t) => {
    await srv.close()
    const all = lines()
    const requests = all.filter((l) => l.msg === 'request')
    for (const l of requests) {
      t.type(l.request_id, 'string', `request line has request_id: ${String(l.path)}`)
      if (typeof l.status === 'number' && l.status >= 400) t.type(l.error, 'string', `error line has an error code: ${l.status} ${String(l.path)}`)
    }
    for (const [id, status] of seen) t.ok(requests.some((l) => l.request_id === id && l.status === status), `the response's X-Request-Id is on its line (${status})`)
    const requestIds = new Set(requests.map((l) => l.request_id))
    for (const l of all.filter((x) => typeof x.event === 'string')) t.ok(requestIds.has(l.request_id), `audit line ${String(l.event)} carries its request's id`)
    // Case-insensitive: a username must not show up folded (lower-cased) either.
    const text = srv.log.lines.join('\n').toLowerCase()
    for (const value of [...secrets, CAROL.username, DAVE.username].map((v) => v.toLowerCase())) {
      if (text.includes(value)) t.fail(`a log line holds ${value.slice(0, 12)}…`)
      for (const part of value.split('.').filter((p) => p.length >= 16)) if (text.includes(part)) t.fail(`a log line holds part of ${value.slice(0, 12)}…`)
    }
    t.pass(`${secrets.size} secrets and 2 usernames checked against ${all.length} lines`)
  })
})

t.test('X-Request-Id without a trusted proxy is never taken from the request', async (t) => {
  const srv = await startFlowServer(auditConfig(false))
  t.teardown(srv.close)
  const res = await postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc', 'svc-secret'), 'x-request-id': 'forged-id-1234' })
  t.equal(res.status, 200)
  const id = res.headers.get('x-request-id')
  t.not(id, 'forged-id-1234')
  t.match(id, /^[0-9a-f-]{36}$/)
  const lines = srv.log.lines.map((l) => JSON.parse(l) as Line)
  t.notOk(lines.some((l) => l.request_id === 'forged-id-1234'))
  t.match(lines.find((l) => l.event === 'token.issued'), { client_id: 'svc', grant_type: 'client_credentials', request_id: id })
  t.notOk('sub' in lines.find((l) => l.event === 'token.issued')!, 'client_credentials: no user')
  void WEB_AUTH
})
