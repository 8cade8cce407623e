/**
 * RFC 9126 end to end, judged by oauth4webapi: its own pushedAuthorizationRequest and
 * processPushedAuthorizationResponse, the browser at /connect/authorize with only client_id and
 * request_uri, the login form, then its code exchange and ID token checks.
 */
import t from 'tap'
import * as oauth from 'oauth4webapi'
import * as client from 'openid-client'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose'
import { createServer, loadConfigFile } from '@grantd/core'
import { CookieJar, get, loginForm, post, SPA_REDIRECT, signInAt, startFlowServer, WEB_REDIRECT } from '../authorization-code/flow.js'
import { basic, memoryLogger, postForm, ROOT, startServer } from '../helpers/server.js'
import { insecure, ORDERS, parAuthorizeUrl, parConfig, push, webRequest } from './fixtures.js'

const srv = await startFlowServer(parConfig())
t.teardown(srv.close)
const issuer = new URL(srv.url)
const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }))

interface Pushed { state: string; nonce: string; verifier: string; requestUri: string; expiresIn: number }

async function pushWith(client: oauth.Client, auth: oauth.ClientAuth, params: Record<string, string>): Promise<Pushed> {
  const verifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  const nonce = oauth.generateRandomNonce()
  const response = await oauth.pushedAuthorizationRequest(as, client, auth, {
    response_type: 'code', state, nonce, code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...params,
  }, insecure)
  const result = await oauth.processPushedAuthorizationResponse(as, client, response)
  return { state, nonce, verifier, requestUri: result.request_uri, expiresIn: result.expires_in }
}

t.test('discovery announces the PAR endpoint when the plugin is loaded, and only then', async (t) => {
  t.equal(as.pushed_authorization_request_endpoint, `${srv.url}/connect/par`)
  t.notOk('require_pushed_authorization_requests' in as, 'not required by default')
  const plain = await startServer({
    plugins: ['@grantd/grant-authorization-code'],
    clients: [{ client_id: 'web', client_secret: 'web-secret', grant_types: ['authorization_code'], redirect_uris: [WEB_REDIRECT], scope: 'openid' }],
  })
  t.teardown(plain.close)
  const meta = (await (await fetch(`${plain.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>
  t.notOk('pushed_authorization_request_endpoint' in meta)
  const refused = await postForm(`${plain.url}/connect/par`, {})
  t.equal(refused.status, 404, 'no PAR endpoint without the plugin')
  // Without @grantd/par, request_uri stays unsupported, answered at the client's redirect_uri.
  const page = await get(`${plain.url}/connect/authorize?${new URLSearchParams({ ...webRequest(), client_id: 'web', request_uri: 'urn:ietf:params:oauth:request_uri:x' })}`)
  t.equal(page.status, 302)
  t.equal(page.location?.searchParams.get('error'), 'request_uri_not_supported')
})

t.test('oauth4webapi: PAR (client_secret_basic) → authorize with request_uri → login → code exchange', async (t) => {
  const web: oauth.Client = { client_id: 'web' }
  const auth = oauth.ClientSecretBasic('web-secret')
  const p = await pushWith(web, auth, { redirect_uri: WEB_REDIRECT, scope: 'openid profile email offline_access api' })
  t.match(p.requestUri, /^urn:ietf:params:oauth:request_uri:[A-Za-z0-9_-]{43}$/)
  t.equal(p.expiresIn, 60)

  const url = new URL(as.authorization_endpoint!)
  url.searchParams.set('client_id', 'web')
  url.searchParams.set('request_uri', p.requestUri)
  const callback = await signInAt(url)
  t.equal(`${callback.origin}${callback.pathname}`, WEB_REDIRECT)
  const params = oauth.validateAuthResponse(as, web, callback, p.state)
  const response = await oauth.authorizationCodeGrantRequest(as, web, auth, params, WEB_REDIRECT, p.verifier, insecure)
  const result = await oauth.processAuthorizationCodeResponse(as, web, response, { expectedNonce: p.nonce, requireIdToken: true })
  const claims = oauth.getValidatedIdTokenClaims(result)!
  t.equal(claims.sub, 'u-alice')
  t.equal(claims.nonce, p.nonce, 'the pushed nonce reached the ID token')
  t.equal(result.scope, 'openid profile email offline_access api')
  t.ok(result.refresh_token)
})

t.test('oauth4webapi: client_secret_post and a public client (None) push too', async (t) => {
  const post: oauth.Client = { client_id: 'post' }
  const p1 = await pushWith(post, oauth.ClientSecretPost('post-secret'), { redirect_uri: WEB_REDIRECT, scope: 'openid profile' })
  const cb1 = await signInAt(parAuthorizeUrl(srv, 'post', p1.requestUri))
  const r1 = await oauth.processAuthorizationCodeResponse(as, post, await oauth.authorizationCodeGrantRequest(as, post, oauth.ClientSecretPost('post-secret'),
    oauth.validateAuthResponse(as, post, cb1, p1.state), WEB_REDIRECT, p1.verifier, insecure), { expectedNonce: p1.nonce })
  t.equal(oauth.getValidatedIdTokenClaims(r1)!.aud, 'post')

  const spa: oauth.Client = { client_id: 'spa', token_endpoint_auth_method: 'none' }
  const p2 = await pushWith(spa, oauth.None(), { redirect_uri: SPA_REDIRECT, scope: 'openid api' })
  const cb2 = await signInAt(parAuthorizeUrl(srv, 'spa', p2.requestUri))
  const r2 = await oauth.processAuthorizationCodeResponse(as, spa, await oauth.authorizationCodeGrantRequest(as, spa, oauth.None(),
    oauth.validateAuthResponse(as, spa, cb2, p2.state), SPA_REDIRECT, p2.verifier, insecure), { expectedNonce: p2.nonce })
  t.equal(oauth.getValidatedIdTokenClaims(r2)!.aud, 'spa')
})

t.test('front-channel parameters other than client_id are ignored (RFC 9126 §4)', async (t) => {
  const res = await push(srv, 'web', webRequest({ scope: 'openid', state: 'pushed-state', redirect_uri: WEB_REDIRECT }))
  t.equal(res.status, 201, res.text)
  const jar = new CookieJar()
  const page = await get(parAuthorizeUrl(srv, 'web', res.json.request_uri as string, {
    redirect_uri: 'http://127.0.0.1:5000/other', scope: 'openid profile email api', state: 'front-state', response_type: 'token', prompt: 'none',
  }), jar)
  t.equal(page.status, 200, 'the front channel prompt=none and response_type are not the request: the login form shows')
  const form = loginForm(page.body)
  const done = await post(form.action, { ...form.fields, username: 'alice', password: 'wonderland' }, jar)
  t.equal(done.status, 302)
  t.equal(`${done.location!.origin}${done.location!.pathname}`, WEB_REDIRECT, 'the pushed redirect_uri, not the front-channel one')
  t.equal(done.location!.searchParams.get('state'), 'pushed-state')
  t.equal(done.location!.searchParams.get('iss'), srv.url)
  t.ok(done.location!.searchParams.get('code'))

  // With the session now open, a pushed request is answered at once, still with the pushed values.
  const again = await push(srv, 'web', webRequest({ state: 'second' }))
  const silent = await get(parAuthorizeUrl(srv, 'web', again.json.request_uri as string, { state: 'front' }), jar)
  t.equal(silent.status, 302)
  t.equal(silent.location!.searchParams.get('state'), 'second')
  t.ok(silent.location!.searchParams.get('code'))
})

t.test('POST /connect/authorize accepts client_id + request_uri as well', async (t) => {
  const res = await push(srv, 'web', webRequest({ state: 'via-post' }))
  const jar = new CookieJar()
  const page = await post(`${srv.url}/connect/authorize`, { client_id: 'web', request_uri: res.json.request_uri as string }, jar)
  t.equal(page.status, 200)
  const form = loginForm(page.body)
  const done = await post(form.action, { ...form.fields, username: 'alice', password: 'wonderland' }, jar)
  t.equal(done.location!.searchParams.get('state'), 'via-post')
})

t.test('RFC 8707 resource passes through PAR into the access token', async (t) => {
  const web: oauth.Client = { client_id: 'web' }
  const auth = oauth.ClientSecretBasic('web-secret')
  const p = await pushWith(web, auth, { redirect_uri: WEB_REDIRECT, scope: 'openid orders:read', resource: ORDERS })
  const callback = await signInAt(parAuthorizeUrl(srv, 'web', p.requestUri))
  const response = await oauth.authorizationCodeGrantRequest(as, web, auth, oauth.validateAuthResponse(as, web, callback, p.state), WEB_REDIRECT, p.verifier, insecure)
  const result = await oauth.processAuthorizationCodeResponse(as, web, response, { expectedNonce: p.nonce })
  const at = decodeJwt(result.access_token)
  t.equal(at.aud, ORDERS, 'aud is the pushed resource')
  t.equal(at.scope, 'openid orders:read')

  // A resource that is not configured is refused at the push, as JSON (RFC 8707 §2 invalid_target).
  const bad = await push(srv, 'web', webRequest({ scope: 'openid orders:read', resource: 'https://evil.example/' }))
  t.equal(bad.status, 400)
  t.equal(bad.json.error, 'invalid_target')
})

t.test('resource may be repeated in a push (RFC 8707 §2); other parameters may not', async (t) => {
  const form = new URLSearchParams(webRequest({ scope: 'openid orders:read' }))
  form.append('resource', ORDERS)
  form.append('resource', ORDERS)
  const ok = await push(srv, 'web', form.toString())
  t.equal(ok.status, 201, ok.text)
  const twice = new URLSearchParams(webRequest())
  twice.append('scope', 'openid')
  const refused = await push(srv, 'web', twice.toString())
  t.equal(refused.status, 400)
  t.equal(refused.json.error, 'invalid_request')
})

t.test('private_key_jwt pushes: aud may be the issuer (oauth4webapi) or the PAR endpoint URL (RFC 9126 §2)', async (t) => {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }
  const jwtSrv = await startFlowServer(parConfig({ clients: [
    { client_id: 'jwt', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] }, grant_types: ['authorization_code'], redirect_uris: [WEB_REDIRECT], scope: 'openid' },
  ] }))
  t.teardown(jwtSrv.close)
  const jwtIssuer = new URL(jwtSrv.url)
  const jwtAs = await oauth.processDiscoveryResponse(jwtIssuer, await oauth.discoveryRequest(jwtIssuer, { algorithm: 'oidc', ...insecure }))
  const client: oauth.Client = { client_id: 'jwt' }
  const verifier = oauth.generateRandomCodeVerifier()
  const response = await oauth.pushedAuthorizationRequest(jwtAs, client, oauth.PrivateKeyJwt({ key: privateKey, kid: 'k1' }), {
    response_type: 'code', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 's', code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  }, insecure)
  const pushed = await oauth.processPushedAuthorizationResponse(jwtAs, client, response)
  t.equal((await get(parAuthorizeUrl(jwtSrv, 'jwt', pushed.request_uri))).status, 200)

  const assertion = async (aud: string) => new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer('jwt').setSubject('jwt').setAudience(aud).setJti(randomUUID()).setIssuedAt().setExpirationTime('1m').sign(privateKey)
  const form = (clientAssertion: string) => ({
    response_type: 'code', redirect_uri: WEB_REDIRECT, scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGrSeRW6cM', code_challenge_method: 'S256',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: clientAssertion,
  })
  const atPar = await postForm(`${jwtSrv.url}/connect/par`, form(await assertion(`${jwtSrv.url}/connect/par`)))
  t.equal(atPar.status, 201, atPar.text)
  const elsewhere = await postForm(`${jwtSrv.url}/connect/par`, form(await assertion('https://other.example/')))
  t.equal(elsewhere.status, 401, 'an assertion for another audience is refused')
  t.equal(elsewhere.json.error, 'invalid_client')
})

t.test('examples/par.json starts and serves PAR', async (t) => {
  const config = await loadConfigFile(join(ROOT, 'examples', 'par.json'))
  const running = await createServer({ ...config, port: 0 }, { log: memoryLogger() })
  const bound = await running.listen(0, '127.0.0.1')
  t.teardown(() => running.close({ timeoutMs: 2000 }))
  const res = await postForm(`${bound.url}/connect/par`, { ...webRequest({ scope: 'openid orders:read', resource: 'https://api.example.com/orders' }) }, { authorization: basic('web', 'web-secret') })
  t.equal(res.status, 201, res.text)
  const plain = await get(`${bound.url}/connect/authorize?${new URLSearchParams({ ...webRequest(), client_id: 'web' })}`)
  t.equal(plain.location?.searchParams.get('error'), 'invalid_request', 'web is registered with require_pushed_authorization_requests')
})

t.test('openid-client v6: buildAuthorizationUrlWithPAR → login → authorizationCodeGrant', async (t) => {
  const config = await client.discovery(new URL(srv.url), 'web', undefined, client.ClientSecretBasic('web-secret'), { execute: [client.allowInsecureRequests] })
  const codeVerifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  const url = await client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: WEB_REDIRECT, scope: 'openid profile', state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256',
  })
  t.same([...url.searchParams.keys()].sort(), ['client_id', 'request_uri'], 'only client_id and request_uri travel through the browser')
  const callback = await signInAt(url)
  const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true })
  t.equal(tokens.claims()!.sub, 'u-alice')
})

t.test('a pushed request of a client with require_consent goes through the consent page with the pushed values', async (t) => {
  const third = 'http://127.0.0.1:5000/third'
  const consentSrv = await startFlowServer(parConfig({ clients: [
    { client_id: 'third', client_secret: 'third-secret', client_name: 'Third', grant_types: ['authorization_code'], redirect_uris: [third], scope: 'openid profile', require_consent: true },
  ] }))
  t.teardown(consentSrv.close)
  const pushed = await postForm(`${consentSrv.url}/connect/par`, { response_type: 'code', redirect_uri: third, scope: 'openid profile', state: 'consent-st' }, { authorization: basic('third', 'third-secret') })
  t.equal(pushed.status, 201, pushed.text)
  const jar = new CookieJar()
  const page = await get(parAuthorizeUrl(consentSrv, 'third', pushed.json.request_uri as string, { scope: 'openid' }), jar)
  const login = loginForm(page.body)
  const consent = await post(login.action, { ...login.fields, username: 'alice', password: 'wonderland' }, jar)
  t.equal(consent.status, 200, 'the consent page')
  t.match(consent.body, /Your basic profile/, 'lists the pushed scope, not the front channel one')
  const form = loginForm(consent.body)
  const allowed = await post(form.action, { ...form.fields, decision: 'allow' }, jar)
  t.equal(allowed.status, 302)
  t.equal(allowed.location!.searchParams.get('state'), 'consent-st')
  t.ok(allowed.location!.searchParams.get('code'))
})
