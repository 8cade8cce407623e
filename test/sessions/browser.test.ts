import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { join } from 'node:path'
import { CHROMIUM, openPage } from '../helpers/chromium.js'
import { baseConfig, startFlowServer } from '../authorization-code/flow.js'
import { freePort, ROOT } from '../helpers/server.js'

/**
 * oidc-client-ts in headless Chromium (the issue: signoutRedirect() refused with "No end
 * session endpoint"): a SPA signs in (through the consent page, its client requires
 * consent), then signs out with signoutRedirect() and lands back with its state.
 */
const LIBRARY = join(ROOT, 'node_modules', 'oidc-client-ts', 'dist', 'browser', 'oidc-client-ts.min.js')

if (!existsSync(CHROMIUM)) {
  const message = `NO CHROMIUM at ${CHROMIUM}: apt-get install -y chromium`
  if (process.env.CI === 'true') throw new Error(message)
  process.stderr.write(`\n!!!!! ${message} — the browser logout test is SKIPPED !!!!!\n\n`)
  t.pass('skipped: no chromium')
} else {
  t.test('oidc-client-ts: sign in with consent, then signoutRedirect()', async (t) => {
    const spaPort = await freePort()
    const spa = `http://127.0.0.1:${spaPort}`
    const config = baseConfig()
    const clients = config.clients as Array<Record<string, unknown>>
    clients.push({
      client_id: 'spa-ts', client_name: 'Browser App', require_consent: true, grant_types: ['authorization_code'],
      redirect_uris: [`${spa}/callback.html`], post_logout_redirect_uris: [`${spa}/logged-out.html`], scope: 'openid profile',
    })
    const srv = await startFlowServer(config)
    t.teardown(srv.close)

    const settings = JSON.stringify({
      authority: srv.url, client_id: 'spa-ts', redirect_uri: `${spa}/callback.html`, post_logout_redirect_uri: `${spa}/logged-out.html`,
      response_type: 'code', scope: 'openid profile', loadUserInfo: false,
    })
    const pages: Record<string, string> = {
      '/index.html': `window.mgr = new oidc.UserManager(${settings});`,
      '/callback.html': `window.mgr = new oidc.UserManager(${settings}); mgr.signinRedirectCallback().then((u) => { document.getElementById('out').textContent = 'signed in as ' + u.profile.sub + ' sid ' + u.profile.sid; window.idToken = u.id_token }, (e) => { document.getElementById('out').textContent = 'error: ' + e.message })`,
      '/logged-out.html': `window.mgr = new oidc.UserManager(${settings}); mgr.signoutRedirectCallback().then((r) => { document.getElementById('out').textContent = 'signed out' + (r && r.userState !== undefined ? ' with state ' + JSON.stringify(r.userState) : '') }, (e) => { document.getElementById('out').textContent = 'error: ' + e.message })`,
    }
    const library = readFileSync(LIBRARY, 'utf8')
    const app = createServer((req, res) => {
      const path = new URL(req.url ?? '/', spa).pathname
      if (path === '/oidc-client-ts.min.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' })
        return res.end(library)
      }
      const script = pages[path]
      if (!script) {
        res.writeHead(404)
        return res.end()
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      res.end(`<!doctype html><title>spa</title><p id="out">loading</p><script src="/oidc-client-ts.min.js"></script><script>${script}</script>`)
    })
    app.listen(spaPort, '127.0.0.1')
    await once(app, 'listening')
    t.teardown(() => new Promise<void>((r) => { app.closeAllConnections(); app.close(() => r()) }))

    const { page, cspViolations } = await openPage(t, 'grantd-chromium-')

    await page.goto(`${spa}/index.html`)
    await Promise.all([page.waitForURL((u) => u.href.startsWith(srv.url), { waitUntil: 'load' }), page.evaluate('void mgr.signinRedirect()')])
    await page.getByLabel('Username').fill('alice')
    await page.getByLabel('Password').fill('wonderland')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForLoadState()
    t.equal(await page.title(), 'Allow access', 'the consent page')
    t.equal(await page.locator('#client-name').textContent(), 'Browser App')
    t.match(await page.locator('#scopes').textContent(), /Your basic profile/)
    await Promise.all([page.waitForURL((u) => u.href.startsWith(`${spa}/callback.html`), { waitUntil: 'load' }), page.getByRole('button', { name: 'Allow' }).click()])
    await page.waitForFunction("document.getElementById('out').textContent !== 'loading'")
    t.match(await page.locator('#out').textContent(), /^signed in as u-alice sid [A-Za-z0-9_-]{22}$/)

    await Promise.all([
      page.waitForURL((u) => u.href.startsWith(`${spa}/logged-out.html`), { waitUntil: 'load' }),
      page.evaluate("void mgr.signoutRedirect({ state: 'see you' })"),
    ])
    await page.waitForFunction("document.getElementById('out').textContent !== 'loading'")
    t.equal(await page.locator('#out').textContent(), 'signed out with state "see you"', 'signoutRedirectCallback matched its state')

    // The browser's SSO cookie no longer signs it in: the next sign-in shows the form.
    await Promise.all([page.waitForURL((u) => u.href.startsWith(srv.url), { waitUntil: 'load' }), page.evaluate('void mgr.signinRedirect()')])
    t.equal(await page.title(), 'Sign in')
    t.same(cspViolations, [], 'no CSP violations on grantd pages')
  })
}
