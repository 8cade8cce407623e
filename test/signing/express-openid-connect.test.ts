/**
 * Audit finding 13 (SPEC §9, OIDC Core §15.1): express-openid-connect with its defaults
 * (idTokenSigningAlg RS256) signs in against grantd's default keys. The only settings
 * given are the ones any code-flow app must give: where it lives, its client id and
 * secret, a cookie secret, and `response_type: code` (its default, `id_token`, is the
 * implicit flow grantd does not offer). The browser is played over HTTP: every redirect
 * followed by hand, the login form parsed and submitted, cookies kept per origin.
 *
 * The same app against an ES256-only key set (grantd's old default) fails the callback
 * (openid-client's check of the ID token's "alg" header; express-openid-connect keeps only
 * "invalid response encountered"), and signs in again once told idTokenSigningAlg ES256:
 * the alg is what decides, and this test can fail.
 */
import t from 'tap'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import express, { type NextFunction, type Request, type Response } from 'express'
import { auth } from 'express-openid-connect'
import { generatePrivateJwk } from '@grantd/core'
import { ALICE, CookieJar, get, loginForm, post, startFlowServer, type Page } from '../authorization-code/flow.js'
import { freePort } from '../helpers/server.js'

const dir = mkdtempSync(join(tmpdir(), 'grantd-eoc-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

async function startApp(issuer: string, port: number, idTokenSigningAlg?: string): Promise<{ url: string; close(): Promise<void> }> {
  const app = express()
  app.use(auth({
    issuerBaseURL: issuer,
    baseURL: `http://127.0.0.1:${port}`,
    clientID: 'eoc',
    clientSecret: 'eoc-secret',
    secret: 'a-cookie-secret-for-the-test-app-0123456789',
    authorizationParams: { response_type: 'code' },
    ...(idTokenSigningAlg ? { idTokenSigningAlg } : {}),
  }))
  app.get('/', (req: Request, res: Response) => { res.json({ user: req.oidc.user ?? null, idTokenAlg: req.oidc.idToken ? JSON.parse(Buffer.from(req.oidc.idToken.split('.')[0]!, 'base64url').toString()).alg as string : null }) })
  app.use((err: Error & { error?: string }, _req: Request, res: Response, _next: NextFunction) => { res.status(400).json({ error: err.error, message: err.message }) })
  const server = app.listen(port, '127.0.0.1')
  await once(server, 'listening')
  const { port: bound } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${bound}`, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()) }) }
}

function grantdConfig(appPorts: number[], keysFile?: string): Record<string, unknown> {
  return {
    issuer: 'http://127.0.0.1:1',
    ...(keysFile ? { keys: { file: keysFile } } : {}),
    cookies: { keys: ['test-cookie-key-0123456789abcdef'] },
    users: { use: '@grantd/users-static', options: { users: [ALICE] } },
    plugins: ['@grantd/grant-authorization-code'],
    clients: [{ client_id: 'eoc', client_secret: 'eoc-secret', grant_types: ['authorization_code'], redirect_uris: appPorts.map((p) => `http://127.0.0.1:${p}/callback`), scope: 'openid profile email' }],
  }
}

/** A browser: one cookie jar per origin, every redirect followed, the login form filled in once. */
async function browse(start: string): Promise<{ final: Page; loginForms: number }> {
  const jars = new Map<string, CookieJar>()
  const jar = (url: string): CookieJar => {
    const origin = new URL(url).origin
    if (!jars.has(origin)) jars.set(origin, new CookieJar())
    return jars.get(origin)!
  }
  let page = await get(start, jar(start))
  let url = start
  let loginForms = 0
  for (let hops = 0; hops < 12; hops++) {
    if (page.location) {
      url = page.location.href
      page = await get(url, jar(url))
    } else if (page.status === 200 && /<form\b/i.test(page.body) && loginForms === 0) {
      loginForms++
      const form = loginForm(page.body)
      const action = new URL(form.action, url).href
      page = await post(action, { ...form.fields, username: ALICE.username, password: ALICE.password }, jar(action))
      url = action
    } else {
      return { final: page, loginForms }
    }
  }
  throw new Error('too many redirects')
}

t.test('express-openid-connect with its defaults signs in (RS256 ID token by default)', async (t) => {
  const appPort = await freePort()
  const srv = await startFlowServer(grantdConfig([appPort]))
  t.teardown(srv.close)
  const app = await startApp(srv.url, appPort)
  t.teardown(app.close)

  const { final, loginForms } = await browse(`${app.url}/`)
  t.equal(loginForms, 1, 'the user saw and submitted grantd\'s login form')
  t.equal(final.status, 200, final.body)
  const body = JSON.parse(final.body) as { user: Record<string, unknown> | null; idTokenAlg: string | null }
  t.equal(body.idTokenAlg, 'RS256')
  t.match(body.user, { sub: ALICE.sub, name: 'Alice', email: 'alice@example.com' })
})

t.test('against an ES256-only key set (the old default) the same app refuses the ID token', async (t) => {
  const keysFile = join(dir, 'es256-only.json')
  writeFileSync(keysFile, JSON.stringify({ keys: [await generatePrivateJwk('ES256')] }), { mode: 0o600 })
  const [appPort, es256Port] = [await freePort(), await freePort()]
  const srv = await startFlowServer(grantdConfig([appPort, es256Port], keysFile))
  t.teardown(srv.close)
  t.ok(srv.log.lines.some((l) => /"level":"warn".*no RS256 key.*grantd keys generate --alg RS256/.test(l)), 'the boot warning says how to add an RS256 key')
  const app = await startApp(srv.url, appPort)
  t.teardown(app.close)

  const { final, loginForms } = await browse(`${app.url}/`)
  t.equal(loginForms, 1)
  t.equal(final.status, 400, 'the callback fails')
  t.match(JSON.parse(final.body), { error: 'OAUTH_INVALID_RESPONSE', message: 'invalid response encountered' })

  const es256App = await startApp(srv.url, es256Port, 'ES256')
  t.teardown(es256App.close)
  const control = await browse(`${es256App.url}/`)
  t.equal(control.final.status, 200, `told to expect ES256, the same app signs in: ${control.final.body}`)
  t.match(JSON.parse(control.final.body), { idTokenAlg: 'ES256', user: { sub: ALICE.sub } })
})
