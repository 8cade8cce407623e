/**
 * RFC 8628 error paths: deny, slow_down, expiry, one redemption under a race, user-code
 * guessing, clients and scopes at the device endpoint, CSRF on every page.
 */
import t from 'tap'
import { basic, postForm, type RunningServer } from '../helpers/server.js'
import { approveInBrowser, CookieJar, deviceConfig, DEVICE_GRANT, get, loginForm, post, startDeviceServer, submitCode } from './flow.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function startDevice(srv: RunningServer, form: Record<string, string> = { client_id: 'tv', scope: 'openid api' }, headers: Record<string, string> = {}): Promise<Record<string, string | number>> {
  const res = await postForm(`${srv.url}/connect/deviceauthorization`, form, headers)
  if (res.status !== 200) throw new Error(`device authorization failed: ${res.text}`)
  return res.json as Record<string, string | number>
}

function poll(srv: RunningServer, deviceCode: string, client: Record<string, string> = { client_id: 'tv' }, headers: Record<string, string> = {}) {
  return postForm(`${srv.url}/connect/token`, { grant_type: DEVICE_GRANT, device_code: deviceCode, ...client }, headers)
}

t.test('device authorization endpoint', async (t) => {
  const srv = await startDeviceServer(deviceConfig())
  t.teardown(() => srv.close())
  const url = `${srv.url}/connect/deviceauthorization`

  const web = await postForm(url, { scope: 'openid' }, { authorization: basic('web', 'web-secret') })
  t.equal(web.status, 400)
  t.equal(web.json.error, 'unauthorized_client', 'a client without the device grant')

  const box = await postForm(url, { scope: 'openid api' }, { authorization: basic('box', 'box-secret') })
  t.equal(box.status, 200, 'a confidential client authenticates with Basic')
  const wrong = await postForm(url, { scope: 'openid' }, { authorization: basic('box', 'nope') })
  t.equal(wrong.status, 401)
  t.equal(wrong.json.error, 'invalid_client')
  const boxAlone = await postForm(url, { client_id: 'box', scope: 'openid' })
  t.equal(boxAlone.json.error, 'invalid_client', 'a confidential client may not use client_id alone')
  const unknown = await postForm(url, { client_id: 'nobody', scope: 'openid' })
  t.equal(unknown.json.error, 'invalid_client')
  const none = await postForm(url, { scope: 'openid' })
  t.equal(none.json.error, 'invalid_client')

  const wide = await postForm(url, { client_id: 'tv', scope: 'openid email' })
  t.equal(wide.json.error, 'invalid_scope', 'scope outside the registration')
  const missing = await postForm(url, { client_id: 'tv' })
  t.equal(missing.json.error, 'invalid_scope', 'scope is required')
  const bad = await postForm(url, { client_id: 'tv', scope: 'openid "x' })
  t.equal(bad.json.error, 'invalid_scope')

  const twice = await postForm(url, 'client_id=tv&scope=openid&scope=api')
  t.equal(twice.json.error, 'invalid_request', 'a repeated parameter')
  const json = await fetch(url, { method: 'POST', body: '{"client_id":"tv"}', headers: { 'content-type': 'application/json' } })
  t.equal(json.status, 400)
  t.equal(((await json.json()) as { error: string }).error, 'invalid_request', 'JSON body')
  const big = await postForm(url, { client_id: 'tv', scope: 'openid', pad: 'x'.repeat(20_000) })
  t.equal(big.status, 413)
  const getIt = await fetch(url)
  t.equal(getIt.status, 405)

  for (const res of [web, wrong, wide, missing, twice]) t.equal(res.headers.get('cache-control'), 'no-store')

  const discovery = (await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>
  t.equal(discovery.device_authorization_endpoint, url)
})

t.test('discovery has no device endpoint when the plugin is not loaded', async (t) => {
  const config = deviceConfig()
  config.plugins = (config.plugins as unknown[]).filter((p) => typeof p === 'string')
  config.clients = (config.clients as Array<{ grant_types: string[] }>).filter((c) => !c.grant_types.includes(DEVICE_GRANT))
  const srv = await startDeviceServer(config)
  t.teardown(() => srv.close())
  const discovery = (await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>
  t.equal(discovery.device_authorization_endpoint, undefined)
  t.notOk((discovery.grant_types_supported as string[]).includes(DEVICE_GRANT))
  t.equal((await postForm(`${srv.url}/connect/deviceauthorization`, { client_id: 'tv' })).status, 404)
})

t.test('polling: pending, slow_down (the interval grows by 5 s), deny → access_denied', async (t) => {
  const srv = await startDeviceServer(deviceConfig({ device: { interval: 1 } }))
  t.teardown(() => srv.close())
  const d = await startDevice(srv)
  const first = await poll(srv, d.device_code as string)
  t.equal(first.json.error, 'authorization_pending')
  t.equal(first.status, 400)
  const fast = await poll(srv, d.device_code as string)
  t.equal(fast.json.error, 'slow_down', 'a poll sooner than interval')
  t.match(fast.json.error_description, /6 seconds/, 'the interval is now 1 + 5 seconds')
  await sleep(1500)
  const stillFast = await poll(srv, d.device_code as string)
  t.equal(stillFast.json.error, 'slow_down', 'the grown interval holds: 1.5 s is too soon now')
  t.match(stillFast.json.error_description, /11 seconds/)

  // Another client cannot poll with the code.
  const other = await poll(srv, d.device_code as string, {}, { authorization: basic('box', 'box-secret') })
  t.equal(other.json.error, 'invalid_grant')
  const unknown = await poll(srv, 'not-a-device-code')
  t.equal(unknown.json.error, 'invalid_grant')
  const missing = await postForm(`${srv.url}/connect/token`, { grant_type: DEVICE_GRANT, client_id: 'tv' })
  t.equal(missing.json.error, 'invalid_request')
  const web = await postForm(`${srv.url}/connect/token`, { grant_type: DEVICE_GRANT, device_code: d.device_code as string }, { authorization: basic('web', 'web-secret') })
  t.equal(web.json.error, 'unauthorized_client')

  const denied = await approveInBrowser({ verificationUri: d.verification_uri as string, userCode: d.user_code as string, decision: 'deny' })
  t.match(denied.done.body, /data-outcome="denied"/)
  const answer = await poll(srv, d.device_code as string)
  t.equal(answer.status, 400)
  t.equal(answer.json.error, 'access_denied', 'denied: access_denied, even when polling fast')
})

t.test('polling at the interval is not slow_down', async (t) => {
  const srv = await startDeviceServer(deviceConfig({ device: { interval: 2 } }))
  t.teardown(() => srv.close())
  const d = await startDevice(srv)
  t.equal((await poll(srv, d.device_code as string)).json.error, 'authorization_pending')
  await sleep(2100)
  t.equal((await poll(srv, d.device_code as string)).json.error, 'authorization_pending', 'polling at the interval is fine')
})

t.test('expiry: expired_token; the page refuses the code', async (t) => {
  const srv = await startDeviceServer(deviceConfig({ device: { expiresIn: 1, interval: 1 } }))
  t.teardown(() => srv.close())
  const d = await startDevice(srv)
  t.equal(d.expires_in, 1)
  await sleep(1600)
  const res = await poll(srv, d.device_code as string)
  t.equal(res.status, 400)
  t.equal(res.json.error, 'expired_token')
  const page = await submitCode(d.verification_uri as string, d.user_code as string, new CookieJar())
  t.equal(page.status, 400, 'an expired code is not accepted on the page')
})

t.test('approval after the code expired on the page is refused', async (t) => {
  const srv = await startDeviceServer(deviceConfig({ device: { expiresIn: 2, interval: 1 } }))
  t.teardown(() => srv.close())
  const d = await startDevice(srv)
  const jar = new CookieJar()
  const code = await submitCode(d.verification_uri as string, d.user_code as string, jar)
  const login = loginForm((await get(code.location!.href, jar)).body)
  const signedIn = await post(login.action, { ...login.fields, username: 'alice', password: 'wonderland' }, jar)
  const confirm = loginForm((await get(signedIn.location!.href, jar)).body)
  await sleep(2200)
  const done = await post(confirm.action, { ...confirm.fields, decision: 'allow' }, jar)
  t.equal(done.status, 400)
  t.equal((await poll(srv, d.device_code as string)).json.error, 'expired_token')
})

t.test('exactly one redemption under a concurrent race', async (t) => {
  const srv = await startDeviceServer(deviceConfig({ device: { interval: 1 } }))
  t.teardown(() => srv.close())
  const d = await startDevice(srv, { client_id: 'tv', scope: 'openid offline_access' })
  await approveInBrowser({ verificationUri: d.verification_uri as string, userCode: d.user_code as string })
  const results = await Promise.all(Array.from({ length: 20 }, () => poll(srv, d.device_code as string)))
  const ok = results.filter((r) => r.status === 200)
  t.equal(ok.length, 1, 'one poll gets tokens')
  t.ok(results.filter((r) => r.status !== 200).every((r) => r.json.error === 'invalid_grant'), 'every other poll: invalid_grant')
})

t.test('user-code guessing: 429 after 10 wrong codes per address, even for the right code', async (t) => {
  const srv = await startDeviceServer(deviceConfig())
  t.teardown(() => srv.close())
  const d = await startDevice(srv)
  const jar = new CookieJar()
  const form = loginForm((await get(d.verification_uri as string, jar)).body)
  const statuses: number[] = []
  for (let i = 0; i < 10; i++) statuses.push((await post(form.action, { ...form.fields, user_code: 'BCDF-GHJK' }, jar)).status)
  t.same(statuses, Array(10).fill(400), 'ten wrong codes are checked and refused')
  const right = await post(form.action, { ...form.fields, user_code: d.user_code as string }, jar)
  t.equal(right.status, 429, 'the eleventh attempt is refused unchecked, even the right code')
  t.match(right.body, /Too many wrong codes/)
  t.ok(right.headers.get('retry-after'))
})

t.test('user-code guessing: concurrent wrong codes never get more than 10 checked', async (t) => {
  const srv = await startDeviceServer(deviceConfig())
  t.teardown(() => srv.close())
  const jar = new CookieJar()
  const form = loginForm((await get(`${srv.url}/device`, jar)).body)
  const results = await Promise.all(Array.from({ length: 30 }, () => post(form.action, { ...form.fields, user_code: 'BCDFGHJK' }, jar)))
  t.equal(results.filter((r) => r.status === 400).length, 10)
  t.equal(results.filter((r) => r.status === 429).length, 20)
})

t.test('the pages: CSRF, tickets bound to the browser, strict CSP, form-encoding', async (t) => {
  const srv = await startDeviceServer(deviceConfig({ device: { interval: 1 } }))
  t.teardown(() => srv.close())
  const d = await startDevice(srv)

  const page = await get(d.verification_uri_complete as string, new CookieJar())
  t.equal(page.status, 200)
  t.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'.*frame-ancestors 'none'/)
  t.match(page.body, new RegExp(`value="${d.user_code}"`), 'verification_uri_complete fills the code in')
  t.notMatch(page.body, /<script/i)
  const xss = await get(`${srv.url}/device?user_code=${encodeURIComponent('"><script>alert(1)</script>')}`, new CookieJar())
  t.notMatch(xss.body, /<script>/, 'the prefilled code is escaped')

  // No cookie, or a CSRF value from another browser: refused before any code is looked at.
  const attacker = new CookieJar()
  const attackerForm = loginForm((await get(`${srv.url}/device`, attacker)).body)
  const victim = new CookieJar()
  await get(`${srv.url}/device`, victim)
  const forged = await post(attackerForm.action, { ...attackerForm.fields, user_code: d.user_code as string }, victim)
  t.equal(forged.status, 403, 'CSRF: a form from another browser')
  const noCookie = await post(attackerForm.action, { ...attackerForm.fields, user_code: d.user_code as string })
  t.equal(noCookie.status, 403)

  // A ticket (the URL after a right code) is useless in another browser.
  const mine = new CookieJar()
  const code = await submitCode(d.verification_uri as string, d.user_code as string, mine)
  t.equal(code.status, 303)
  const stolen = await get(code.location!.href, victim)
  t.equal(stolen.status, 403, 'the ticket is bound to the browser that typed the code')
  const tampered = await get(code.location!.href.replace(/ticket=.{10}/, 'ticket=AAAAAAAAAA'), mine)
  t.equal(tampered.status, 403)
  const noTicket = await get(`${srv.url}/connect/device`, mine)
  t.equal(noTicket.status, 403)

  // The login form: CSRF, wrong password.
  const login = loginForm((await get(code.location!.href, mine)).body)
  const badCsrf = await post(login.action, { ...login.fields, csrf: 'x', username: 'alice', password: 'wonderland' }, mine)
  t.equal(badCsrf.status, 403)
  const wrongPassword = await post(login.action, { ...login.fields, username: 'alice', password: 'nope' }, mine)
  t.equal(wrongPassword.status, 401)
  t.match(wrongPassword.body, /incorrect/)
  const noPassword = await post(login.action, { ...login.fields, username: 'alice' }, mine)
  t.equal(noPassword.status, 400)
  const repeated = await post(login.action, `${new URLSearchParams(login.fields).toString()}&username=a&username=b&password=x`, mine)
  t.equal(repeated.status, 400)
  t.match(repeated.headers.get('content-type') ?? '', /text\/html/, 'page errors are pages, not JSON')
  const signedIn = await post(login.action, { ...login.fields, username: 'alice', password: 'wonderland' }, mine)
  t.equal(signedIn.status, 303)

  // The confirmation: the decision must carry the xsrf of this session's page.
  const confirmPage = await get(signedIn.location!.href, mine)
  const confirm = loginForm(confirmPage.body)
  const forgedDecision = await post(confirm.action, { ...confirm.fields, xsrf: 'x', decision: 'allow' }, mine)
  t.equal(forgedDecision.status, 403)
  const otherBrowser = await post(confirm.action, { ...confirm.fields, decision: 'allow' }, victim)
  t.equal(otherBrowser.status, 403, 'a decision from another browser')
  t.equal((await poll(srv, d.device_code as string)).json.error, 'authorization_pending', 'nothing was decided yet')
  const allowed = await post(confirm.action, { ...confirm.fields, decision: 'allow' }, mine)
  t.equal(allowed.status, 200)
  const twice = await post(confirm.action, { ...confirm.fields, decision: 'deny' }, mine)
  t.equal(twice.status, 400, 'the decision is taken once')
  const tokens = await poll(srv, d.device_code as string)
  t.equal(tokens.status, 200, 'the first decision (allow) stands')
  const consent = srv.server.registry.container.resolve('consent') as { covers(sub: string, client: string, scope: string[]): Promise<boolean> }
  t.ok(await consent.covers('u-alice', 'tv', ['openid', 'api']), 'Allow recorded consent')

  // Malformed requests to the pages get pages, never 500.
  for (const res of [
    await fetch(`${srv.url}/device`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }),
    await fetch(`${srv.url}/connect/device/login`, { method: 'POST', body: 'pending=%zz', headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
    await fetch(`${srv.url}/connect/device/confirm`, { method: 'POST', body: 'x'.repeat(20_000), headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
    await fetch(`${srv.url}/connect/device?ticket=${'a'.repeat(5000)}`),
  ]) {
    t.ok(res.status >= 400 && res.status < 500, `malformed: ${res.status}`)
  }
})

t.test('device authorizations per address are capped (SPEC §9: bounded anonymous state)', async (t) => {
  const srv = await startDeviceServer(deviceConfig({ device: { maxPendingPerAddress: 3 } }))
  t.teardown(() => srv.close())
  const url = `${srv.url}/connect/deviceauthorization`
  const results = await Promise.all(Array.from({ length: 6 }, () => postForm(url, { client_id: 'tv', scope: 'openid' })))
  t.equal(results.filter((r) => r.status === 200).length, 3)
  const refused = results.filter((r) => r.status === 429)
  t.equal(refused.length, 3)
  t.equal(refused[0]!.json.error, 'slow_down')
  t.ok(refused[0]!.headers.get('retry-after'))
  const bad = await postForm(url, { client_id: 'tv', scope: 'email' })
  t.equal(bad.json.error, 'invalid_scope', 'a refused request is checked before it counts')
})
