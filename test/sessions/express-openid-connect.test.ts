import t from 'tap'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import express from 'express'
import { auth } from 'express-openid-connect'
import { baseConfig, CookieJar, get, loginForm, post, startFlowServer } from '../authorization-code/flow.js'
import { CLI, freePort } from '../helpers/server.js'

/**
 * The first symptom: express-openid-connect with idpLogout: true answered 500 on
 * /logout (no end_session_endpoint). Here a real express app signs in at grantd, logs out
 * through grantd's end_session_endpoint, and the next login shows the form again.
 */
t.test('express-openid-connect logs in and out end to end (idpLogout: true)', async (t) => {
  const appPort = await freePort()
  const appUrl = `http://127.0.0.1:${appPort}`
  const config = baseConfig()
  const clients = config.clients as Array<Record<string, unknown>>
  clients.push({
    client_id: 'express', client_secret: 'express-secret-0123456789', grant_types: ['authorization_code'], redirect_uris: [`${appUrl}/callback`],
    post_logout_redirect_uris: [appUrl, `${appUrl}/`], scope: 'openid profile email',
  })
  // An ES256-only key file: ID tokens are ES256 whatever the default for ephemeral keys (SPEC §9 makes it RS256 there).
  const dir = mkdtempSync(join(tmpdir(), 'grantd-eoc-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const keyFile = join(dir, 'signing.json')
  const gen = spawnSync(process.execPath, [CLI, 'keys', 'generate', '--alg', 'ES256', '--out', keyFile], { encoding: 'utf8' })
  t.equal(gen.status, 0, gen.stderr)
  const srv = await startFlowServer({ ...config, keys: { file: keyFile } })
  t.teardown(srv.close)

  const app = express()
  app.use(auth({
    issuerBaseURL: srv.url,
    baseURL: appUrl,
    clientID: 'express',
    clientSecret: 'express-secret-0123456789',
    secret: randomBytes(32).toString('hex'),
    idpLogout: true,
    authRequired: false,
    // The server's only key is ES256 (above).
    idTokenSigningAlg: 'ES256',
    authorizationParams: { response_type: 'code', response_mode: 'query', scope: 'openid profile email' },
  }))
  app.get('/', (req, res) => { res.json({ authenticated: req.oidc.isAuthenticated(), sub: req.oidc.user?.sub ?? null }) })
  const server = app.listen(appPort, '127.0.0.1')
  await once(server, 'listening')
  t.equal((server.address() as AddressInfo).port, appPort)
  t.teardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()) }))

  const jar = new CookieJar()
  const status = async () => JSON.parse((await get(`${appUrl}/`, jar)).body) as { authenticated: boolean; sub: string | null }

  async function login(): Promise<void> {
    const start = await get(`${appUrl}/login`, jar)
    t.equal(start.status, 302, 'the app sends the browser to grantd')
    const page = await get(start.location!.href, jar)
    t.equal(page.status, 200, 'grantd shows the login form')
    const form = loginForm(page.body)
    const back = await post(form.action, { ...form.fields, username: 'alice', password: 'wonderland' }, jar)
    t.equal(back.status, 302)
    const callback = await get(back.location!.href, jar)
    t.equal(callback.status, 302, `the app accepted the code and ID token: ${callback.body.slice(0, 200)}`)
  }

  await login()
  t.same(await status(), { authenticated: true, sub: 'u-alice' })

  const logout = await get(`${appUrl}/logout`, jar)
  t.equal(logout.status, 302, `the app's /logout answers (it was a 500 without end_session_endpoint): ${logout.body.slice(0, 200)}`)
  t.equal(logout.location!.origin + logout.location!.pathname, `${srv.url}/connect/endsession`)
  t.ok(logout.location!.searchParams.get('id_token_hint'))
  const ended = await get(logout.location!.href, jar)
  t.equal(ended.status, 302, 'the hint names the signed-in user: no confirmation, straight back')
  t.match(ended.location!.href, new RegExp(`^${appUrl}/?`))
  t.same(await status(), { authenticated: false, sub: null })

  // The next login shows grantd's form again (the SSO session ended, not only the app's).
  await login()
  t.same(await status(), { authenticated: true, sub: 'u-alice' })
})
