import t from 'tap'
import { existsSync } from 'node:fs'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { CHROMIUM, openPage } from '../helpers/chromium.js'
import { postForm } from '../helpers/server.js'
import { baseConfig, pkcePair, startFlowServer, WEB_AUTH } from '../authorization-code/flow.js'

/**
 * A real browser signs in through the real login page (SPEC §6): headless Chromium from
 * the Debian package (never a downloaded browser), driven by playwright-core, ends at a
 * tiny local callback server with a code that the token endpoint accepts.
 */

const SCREENSHOT = join(tmpdir(), 'grantd-login-page.png')

if (!existsSync(CHROMIUM)) {
  const message = `NO CHROMIUM at ${CHROMIUM}: apt-get install -y chromium`
  if (process.env.CI === 'true') throw new Error(message)
  process.stderr.write(`\n!!!!! ${message} — the browser login test is SKIPPED !!!!!\n\n`)
  t.pass('skipped: no chromium')
} else {
  t.test('headless Chromium signs in through the login page', async (t) => {
    // The client's redirect_uri: a local server that records what arrives.
    const arrivals: URL[] = []
    const callback = createServer((req, res) => {
      const arrived = new URL(req.url ?? '/', 'http://127.0.0.1')
      // Chromium also asks for /favicon.ico; only the redirect_uri counts.
      if (arrived.pathname === '/callback') arrivals.push(arrived)
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      res.end('<!doctype html><title>Signed in</title><p id="done">Back at the client</p>')
    })
    callback.listen(0, '127.0.0.1')
    await once(callback, 'listening')
    t.teardown(() => new Promise<void>((r) => callback.close(() => r())))
    const redirectUri = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/callback`

    const config = baseConfig()
    const clients = config.clients as Array<Record<string, unknown>>
    clients[0] = { ...clients[0], redirect_uris: [redirectUri] }
    const srv = await startFlowServer(config)
    t.teardown(srv.close)

    const { page, context, cspViolations } = await openPage(t, 'grantd-chromium-')

    const { verifier, challenge } = pkcePair()
    const url = new URL(`${srv.url}/connect/authorize`)
    for (const [k, v] of Object.entries({ response_type: 'code', client_id: 'web', redirect_uri: redirectUri, scope: 'openid profile email offline_access', state: 'browser-state', nonce: 'browser-nonce', code_challenge: challenge, code_challenge_method: 'S256' })) url.searchParams.set(k, v)
    await page.goto(url.href)
    t.equal(await page.title(), 'Sign in')
    // Accessible names: the fields are found by their labels, the button by its role.
    await page.getByLabel('Username').fill('alice')
    await page.getByLabel('Password').fill('not-the-password')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForLoadState()
    t.equal(await page.getByRole('alert').textContent(), 'The username or password is incorrect.')
    t.equal(await page.getByLabel('Username').inputValue(), 'alice', 'username kept after a failed attempt')

    await page.getByLabel('Password').fill('wonderland')
    await page.screenshot({ path: SCREENSHOT, fullPage: true })
    await Promise.all([page.waitForURL((u) => u.href.startsWith(redirectUri), { waitUntil: 'load' }), page.getByRole('button', { name: 'Sign in' }).click()])
    t.equal(await page.locator('#done').textContent(), 'Back at the client')

    t.equal(arrivals.length, 1)
    const landing = arrivals[0]!
    t.equal(landing.searchParams.get('state'), 'browser-state')
    t.equal(landing.searchParams.get('iss'), srv.url)
    const code = landing.searchParams.get('code')
    t.ok(code, 'a code arrived at the callback')
    t.same(cspViolations, [], 'the page runs under its CSP without violations (form-action covers the redirect)')

    const cookies = await context.cookies(`${srv.url}/connect/authorize`)
    const session = cookies.find((c) => c.name === 'grantd_session')
    t.ok(session, 'session cookie set')
    t.equal(session?.httpOnly, true)
    t.equal(session?.sameSite, 'Lax')

    const token = await postForm(`${srv.url}/connect/token`, { grant_type: 'authorization_code', code: code!, redirect_uri: redirectUri, code_verifier: verifier }, WEB_AUTH)
    t.equal(token.status, 200, token.text)
    t.type(token.json.id_token, 'string')

    // Second visit: the session signs the user in without the form.
    url.searchParams.set('state', 'second')
    await page.goto(url.href)
    await page.waitForURL((u) => u.href.startsWith(redirectUri) && u.searchParams.get('state') === 'second', { waitUntil: 'load' })
    t.equal(arrivals.length, 2)
    t.equal(arrivals[1]!.searchParams.get('state'), 'second')
  })
}
