import t from 'tap'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import * as oauth from 'oauth4webapi'
import { postForm, startServer } from '../helpers/server.js'
import { authorizeUrl, baseConfig, CookieJar, get, loginForm, pkcePair, post, startFlowServer } from '../authorization-code/flow.js'

/**
 * Native apps (RFC 8252, SPEC §9): a loopback redirect URI registered without a port by a
 * public client matches it with any port (§7.3, §8.4); every other registration matches
 * exactly, ports included; `localhost` gets no exemption (§8.3). Private-use URI schemes
 * with a "." (§7.1) are for public clients only, checked at config load.
 */

const NATIVE = { client_id: 'native', token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], scope: 'openid profile',
  redirect_uris: ['http://127.0.0.1/cb', 'http://[::1]/cb', 'http://localhost/cb', 'http://127.0.0.1:8400/fixed', 'com.example.app:/oauth2redirect'] }
const CONFIDENTIAL_LOOPBACK = { client_id: 'desktop', client_secret: 'desktop-secret', grant_types: ['authorization_code'], scope: 'openid', redirect_uris: ['http://127.0.0.1/cb'] }

function withClients(...extra: unknown[]): Record<string, unknown> {
  const config = baseConfig()
  return { ...config, clients: [...(config.clients as unknown[]), ...extra] }
}

t.test('config load: private-use schemes for public clients only', async (t) => {
  const base = { ...withClients(), issuer: 'http://127.0.0.1:4000', port: 0 }
  const srv = await startServer({ ...base, clients: [NATIVE] })
  await srv.close()
  const refused: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...CONFIDENTIAL_LOOPBACK, redirect_uris: ['com.example.app:/cb'] }, /^clients\[0\]\.redirect_uris\[0\]: a private-use URI scheme is for public \(native\) clients only/],
    [{ ...NATIVE, token_endpoint_auth_method: 'client_secret_post', client_secret: 's', redirect_uris: ['http://127.0.0.1/cb', 'com.example.app:/cb'] }, /^clients\[0\]\.redirect_uris\[1\]: a private-use URI scheme is for public/],
    [{ ...NATIVE, redirect_uris: ['myapp:/cb'] }, /^clients\[0\]\.redirect_uris\[0\]: expected an http or https URL, or a private-use URI scheme with a "\."/],
    [{ ...NATIVE, redirect_uris: ['javascript:alert(1)'] }, /redirect_uris\[0\]: expected an http or https URL, or a private-use/],
    [{ ...NATIVE, redirect_uris: ['com.example.app:/cb#frag'] }, /redirect_uris\[0\]: must not have a fragment/],
    [{ ...NATIVE, redirect_uris: ['not a uri'] }, /redirect_uris\[0\]: expected an absolute URL/],
  ]
  for (const [client, message] of refused) {
    await t.rejects(startServer({ ...base, clients: [client] }), { name: 'ConfigError', message }, JSON.stringify(client.redirect_uris))
  }
})

t.test('redirect_uri matching at the authorization endpoint', async (t) => {
  const srv = await startFlowServer(withClients(NATIVE, CONFIDENTIAL_LOOPBACK))
  t.teardown(srv.close)
  const { challenge } = pkcePair()
  const ask = (client: string, redirectUri: string) => get(authorizeUrl(srv, { response_type: 'code', client_id: client, redirect_uri: redirectUri, scope: 'openid', state: 's', code_challenge: challenge, code_challenge_method: 'S256' }))
  const accepted = [
    'http://127.0.0.1/cb', 'http://127.0.0.1:51234/cb', 'http://127.0.0.1:1/cb', 'http://127.0.0.1:65535/cb',
    'http://[::1]:51234/cb', 'http://[::1]/cb', 'http://localhost/cb', 'http://127.0.0.1:8400/fixed', 'com.example.app:/oauth2redirect',
  ]
  for (const uri of accepted) t.equal((await ask('native', uri)).status, 200, `public client: ${uri} accepted`)
  const refused = [
    'http://localhost:51234/cb', // localhost: no exemption
    'http://127.0.0.1:8401/fixed', 'http://127.0.0.1/fixed', // registered with a port: exact
    'http://127.0.0.1:51234/cb/', 'http://127.0.0.1:51234/cb?x=1', 'http://127.0.0.1:51234/CB', 'http://127.0.0.1:51234',
    'http://127.0.0.1:0/cb', 'http://127.0.0.1:65536/cb', 'http://127.0.0.1:051234/cb', 'http://127.0.0.1:/cb',
    'http://127.0.0.1:51234@evil.example/cb', 'http://127.0.0.1.evil.example:51234/cb', 'https://127.0.0.1:51234/cb',
    'http://127.0.0.2:51234/cb', 'http://[::1]:51234/other', 'com.example.app:/other', 'com.example.evil:/oauth2redirect',
  ]
  for (const uri of refused) {
    const res = await ask('native', uri)
    t.equal(res.status, 400, `public client: ${uri} refused`)
    t.notOk(res.location, 'never a redirect')
  }
  t.equal((await ask('desktop', 'http://127.0.0.1/cb')).status, 200, 'confidential: the exact URI')
  t.equal((await ask('desktop', 'http://127.0.0.1:51234/cb')).status, 400, 'confidential: no port exemption')
})

/** A native app's loopback listener (RFC 8252 §7.3): an ephemeral port, one request. */
async function loopbackListener(): Promise<{ port: number; callback: Promise<URL>; close: () => void }> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const callback = new Promise<URL>((resolve) => {
    server.once('request', (req: IncomingMessage, res: ServerResponse) => {
      res.end('You can close this window.')
      resolve(new URL(req.url!, `http://127.0.0.1:${port}`))
    })
  })
  return { port, callback, close: () => { server.closeAllConnections(); server.close() } }
}

t.test('a native app (oauth4webapi) on a random loopback port, end to end', async (t) => {
  const srv = await startFlowServer(withClients(NATIVE))
  t.teardown(srv.close)
  const issuer = new URL(srv.url)
  const insecure = { [oauth.allowInsecureRequests]: true }
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }))
  const app: oauth.Client = { client_id: 'native' }
  const listener = await loopbackListener()
  t.teardown(listener.close)
  const redirectUri = `http://127.0.0.1:${listener.port}/cb`

  const codeVerifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  const nonce = oauth.generateRandomNonce()
  const url = new URL(as.authorization_endpoint!)
  for (const [k, v] of Object.entries({ response_type: 'code', client_id: 'native', redirect_uri: redirectUri, scope: 'openid profile', state, nonce, code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256' })) url.searchParams.set(k, v)

  // The system browser: the login page, then the redirect to the app's loopback port.
  const jar = new CookieJar()
  const page = await get(url.href, jar)
  t.equal(page.status, 200)
  t.match(page.headers.get('content-security-policy'), new RegExp(`form-action ${srv.url} http://127.0.0.1:${listener.port}`))
  const form = loginForm(page.body)
  const res = await post(form.action, { ...form.fields, username: 'alice', password: 'wonderland' }, jar)
  t.equal(res.status, 302)
  t.equal(`${res.location!.origin}${res.location!.pathname}`, redirectUri, 'back to the app on its own port')
  await fetch(res.location!)
  const callback = await listener.callback

  const params = oauth.validateAuthResponse(as, app, callback, state)
  // RFC 6749 §4.1.3: the token request's redirect_uri must be the one sent to authorize.
  for (const other of [`http://127.0.0.1:${listener.port === 65535 ? 1 : listener.port + 1}/cb`, 'http://127.0.0.1/cb']) {
    const wrong = await postForm(`${srv.url}/connect/token`, { grant_type: 'authorization_code', client_id: 'native', code: params.get('code')!, redirect_uri: other, code_verifier: codeVerifier })
    t.equal(wrong.json.error, 'invalid_grant', `token request with ${other}: invalid_grant`)
  }
  const response = await oauth.authorizationCodeGrantRequest(as, app, oauth.None(), params, redirectUri, codeVerifier, insecure)
  const result = await oauth.processAuthorizationCodeResponse(as, app, response, { expectedNonce: nonce, requireIdToken: true })
  t.equal(oauth.getValidatedIdTokenClaims(result)!.sub, 'u-alice')
  t.ok(result.access_token)
})

t.test('a private-use scheme redirect, end to end', async (t) => {
  const srv = await startFlowServer(withClients(NATIVE))
  t.teardown(srv.close)
  const { verifier, challenge } = pkcePair()
  const redirectUri = 'com.example.app:/oauth2redirect'
  const jar = new CookieJar()
  const page = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'native', redirect_uri: redirectUri, scope: 'openid', state: 'app-state', code_challenge: challenge, code_challenge_method: 'S256' }), jar)
  t.equal(page.status, 200)
  const csp = page.headers.get('content-security-policy') ?? ''
  t.match(csp, /form-action [^;]*com\.example\.app:/, 'the login form may redirect to the app scheme')
  t.notMatch(csp, /\bnull\b/, 'no "null" origin in the CSP')
  const form = loginForm(page.body)
  const res = await post(form.action, { ...form.fields, username: 'alice', password: 'wonderland' }, jar)
  t.equal(res.status, 302)
  const location = res.headers.get('location')!
  t.match(location, /^com\.example\.app:\/oauth2redirect\?code=/)
  const landing = new URL(location)
  t.equal(landing.searchParams.get('state'), 'app-state')
  t.equal(landing.searchParams.get('iss'), srv.url)
  const tokens = await postForm(`${srv.url}/connect/token`, { grant_type: 'authorization_code', client_id: 'native', code: landing.searchParams.get('code')!, redirect_uri: redirectUri, code_verifier: verifier })
  t.equal(tokens.status, 200, 'the code redeems with the same redirect_uri')
  const error = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'native', redirect_uri: redirectUri, scope: 'openid admin', state: 'x', code_challenge: challenge, code_challenge_method: 'S256' }))
  t.match(error.headers.get('location'), /^com\.example\.app:\/oauth2redirect\?error=invalid_scope/, 'errors go back to the app too')
})
