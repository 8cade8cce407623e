import t from 'tap'
import { existsSync } from 'node:fs'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { CHROMIUM, openPage } from '../helpers/chromium.js'
import { baseConfig, pkcePair, startFlowServer } from '../authorization-code/flow.js'

/**
 * POST /connect/authorize in a real browser (OIDC Core §3.1.2.1, SPEC §9). A page on the
 * same site posts the request: the session cookie goes along and a code comes back. A page
 * on another site (`localhost` is another site than `127.0.0.1`) posts it: Chromium does
 * not send the SameSite=Lax session cookie, so grantd shows the login form, and with
 * prompt=none answers login_required.
 */

const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')

if (!existsSync(CHROMIUM)) {
  const message = `NO CHROMIUM at ${CHROMIUM}: apt-get install -y chromium`
  if (process.env.CI === 'true') throw new Error(message)
  process.stderr.write(`\n!!!!! ${message} — the browser POST authorize test is SKIPPED !!!!!\n\n`)
  t.pass('skipped: no chromium')
} else {
  t.test('Chromium: same-site and cross-site POST to the authorization endpoint', async (t) => {
    const arrivals: URL[] = []
    let autoPost = ''
    // The client: its redirect_uri, and pages that auto-submit an authorization request.
    const client = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1')
      if (url.pathname === '/callback') arrivals.push(url)
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      res.end(url.pathname === '/post' ? autoPost : '<!doctype html><title>Client</title><p id="done">Back at the client</p>')
    })
    client.listen(0, '127.0.0.1')
    await once(client, 'listening')
    t.teardown(() => new Promise<void>((r) => { client.closeAllConnections(); client.close(() => r()) }))
    const port = (client.address() as AddressInfo).port
    const redirectUri = `http://127.0.0.1:${port}/callback`

    const config = baseConfig()
    const clients = config.clients as Array<Record<string, unknown>>
    clients[0] = { ...clients[0], redirect_uris: [redirectUri] }
    const srv = await startFlowServer(config)
    t.teardown(srv.close)

    const { page } = await openPage(t, 'grantd-chromium-post-')

    const { challenge } = pkcePair()
    const request = (state: string, extra: Record<string, string> = {}): Record<string, string> => ({
      response_type: 'code', client_id: 'web', redirect_uri: redirectUri, scope: 'openid', state, nonce: 'n', code_challenge: challenge, code_challenge_method: 'S256', ...extra,
    })
    const formPage = (params: Record<string, string>): string => `<!doctype html><title>Posting</title>
<form method="post" action="${escape(`${srv.url}/connect/authorize`)}">${Object.entries(params).map(([k, v]) => `<input type="hidden" name="${escape(k)}" value="${escape(v)}">`).join('')}</form>
<script>document.forms[0].submit()</script>`

    // 1. Signed in through the form POSTed from the client's own site (the login page shows first).
    autoPost = formPage(request('first'))
    await page.goto(`http://127.0.0.1:${port}/post`)
    await page.waitForURL((u) => u.href.startsWith(`${srv.url}/connect/authorize`))
    t.equal(await page.title(), 'Sign in', 'a POSTed request without a session: the login page')
    await page.getByLabel('Username').fill('alice')
    await page.getByLabel('Password').fill('wonderland')
    await Promise.all([page.waitForURL((u) => u.href.startsWith(redirectUri)), page.getByRole('button', { name: 'Sign in' }).click()])
    t.equal(arrivals.at(-1)?.searchParams.get('state'), 'first')
    t.ok(arrivals.at(-1)?.searchParams.get('code'), 'signed in: a code')

    // 2. Same site: the session cookie goes with the POST; prompt=none gets a code.
    autoPost = formPage(request('same-site', { prompt: 'none' }))
    await Promise.all([page.waitForURL((u) => u.href.startsWith(redirectUri)), page.goto(`http://127.0.0.1:${port}/post`)])
    t.equal(arrivals.at(-1)?.searchParams.get('state'), 'same-site')
    t.ok(arrivals.at(-1)?.searchParams.get('code'), 'same-site POST with the session: a code')

    // 3. Another site: no cookie (SameSite=Lax); prompt=none → login_required, else the login form.
    autoPost = formPage(request('cross-site', { prompt: 'none' }))
    await Promise.all([page.waitForURL((u) => u.href.startsWith(redirectUri)), page.goto(`http://localhost:${port}/post`)])
    t.equal(arrivals.at(-1)?.searchParams.get('state'), 'cross-site')
    t.equal(arrivals.at(-1)?.searchParams.get('error'), 'login_required', 'cross-site POST, prompt=none: login_required')
    t.notOk(arrivals.at(-1)?.searchParams.get('code'))
    autoPost = formPage(request('cross-site-form'))
    await page.goto(`http://localhost:${port}/post`)
    await page.waitForURL((u) => u.href.startsWith(`${srv.url}/connect/authorize`))
    t.equal(await page.title(), 'Sign in', 'cross-site POST: the login form, not a code')
    t.equal(arrivals.at(-1)?.searchParams.get('state'), 'cross-site', 'nothing arrived at the client')
  })
}
