import t from 'tap'
import * as oauth from 'oauth4webapi'
import { authorizeUrl, CookieJar, get, loginForm, pkcePair, post, startFlowServer } from '../authorization-code/flow.js'
import { basic, postForm, startServer } from '../helpers/server.js'
import { bearer, call, INITIAL_TOKEN, register, registrationConfig, SECOND_TOKEN } from './setup.js'

/** RFC 7591 / RFC 7592 over HTTP, judged by oauth4webapi where it speaks the protocol. */
t.test('dynamic client registration', async (t) => {
  const srv = await startFlowServer(registrationConfig())
  t.teardown(srv.close)
  const endpoint = `${srv.url}/connect/register`
  const clientCredentials = (id: string, secret: string, scope = 'api') =>
    postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope }, { authorization: basic(id, secret) })

  t.test('discovery names the registration endpoint only when the plugin is loaded', async (t) => {
    const doc = await call('GET', `${srv.url}/.well-known/openid-configuration`)
    t.equal(doc.json.registration_endpoint, endpoint)
    const plain = await startServer({ clients: [] })
    t.teardown(plain.close)
    const other = await call('GET', `${plain.url}/.well-known/openid-configuration`)
    t.equal(other.status, 200)
    t.notOk('registration_endpoint' in other.json)
    t.equal((await call('POST', `${plain.url}/connect/register`, {})).status, 404)
  })

  t.test('oauth4webapi registers a client, then a real client_credentials grant with it', async (t) => {
    const issuer = new URL(srv.url)
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', [oauth.allowInsecureRequests]: true }))
    const res = await oauth.dynamicClientRegistrationRequest(as, { grant_types: ['client_credentials'], scope: 'api', client_name: 'Robot' } as Partial<oauth.Client>,
      { initialAccessToken: INITIAL_TOKEN, [oauth.allowInsecureRequests]: true })
    t.equal(res.status, 201)
    t.equal(res.headers.get('cache-control'), 'no-store')
    const registered = await oauth.processDynamicClientRegistrationResponse(res)
    const secret = registered.client_secret as string
    t.type(registered.client_id, 'string')
    t.ok(secret.length >= 43, 'a generated secret of 256 bits')
    t.equal(registered.client_secret_expires_at, 0)
    t.equal(registered.token_endpoint_auth_method, 'client_secret_basic', 'RFC 7591 §2 default')
    t.same(registered.response_types, [])
    t.type(registered.client_id_issued_at, 'number')
    t.equal(registered.registration_client_uri, `${endpoint}/${registered.client_id}`)
    t.type(registered.registration_access_token, 'string')
    const tokenRes = await oauth.clientCredentialsGrantRequest(as, registered, oauth.ClientSecretBasic(secret), { scope: 'api' }, { [oauth.allowInsecureRequests]: true })
    const tokens = await oauth.processClientCredentialsResponse(as, registered, tokenRes)
    t.equal(tokens.scope, 'api')
    t.equal((await clientCredentials(registered.client_id, 'wrong')).status, 401, 'a wrong secret is still refused')
    t.notOk(srv.log.lines.some((l) => l.includes(secret) || l.includes(registered.registration_access_token as string)), 'no credential in the log')
  })

  t.test('openid-client registers a client (client_secret_post) and uses it for client_credentials', async (t) => {
    const client = await import('openid-client')
    const config = await client.dynamicClientRegistration(new URL(srv.url), { grant_types: ['client_credentials'], scope: 'api', token_endpoint_auth_method: 'client_secret_post' },
      undefined, { initialAccessToken: SECOND_TOKEN, execute: [client.allowInsecureRequests] })
    const metadata = config.clientMetadata()
    t.equal(metadata.token_endpoint_auth_method, 'client_secret_post')
    t.type(metadata.client_secret, 'string')
    const tokens = await client.clientCredentialsGrant(config, { scope: 'api' })
    t.equal(tokens.token_type.toLowerCase(), 'bearer')
    t.equal(tokens.scope, 'api')
  })

  t.test('a registered public client runs the code flow (consent page, PKCE) and oauth4webapi accepts the tokens', async (t) => {
    const redirect = 'http://127.0.0.1:5000/registered'
    const reg = await register(srv.url, { redirect_uris: [redirect], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], scope: 'openid profile offline_access', client_name: 'Third <App>' })
    t.notOk('client_secret' in reg, 'no secret for a public client')
    t.same(reg.response_types, ['code'])
    const issuer = new URL(srv.url)
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', [oauth.allowInsecureRequests]: true }))
    const client: oauth.Client = { client_id: reg.client_id as string }
    const { verifier, challenge } = pkcePair()
    const jar = new CookieJar()
    const page = await get(authorizeUrl(srv, { response_type: 'code', client_id: client.client_id, redirect_uri: redirect, scope: 'openid profile offline_access', state: 'st-r', code_challenge: challenge, code_challenge_method: 'S256', nonce: 'n-r' }), jar)
    t.equal(page.status, 200, 'the login page')
    const form = loginForm(page.body)
    const consent = await post(form.action, { ...form.fields, username: 'alice', password: 'wonderland' }, jar)
    t.equal(consent.status, 200, 'a self-registered client is third-party: the consent page')
    t.match(consent.body, /Third &lt;App&gt;/)
    const decision = loginForm(consent.body)
    const landed = await post(decision.action, { ...decision.fields, decision: 'allow' }, jar)
    t.equal(landed.status, 302)
    const params = oauth.validateAuthResponse(as, client, landed.location!, 'st-r')
    const tokenRes = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirect, verifier, { [oauth.allowInsecureRequests]: true })
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, tokenRes, { expectedNonce: 'n-r', requireIdToken: true })
    t.equal(oauth.getValidatedIdTokenClaims(tokens)?.sub, 'u-alice')
    t.ok(tokens.refresh_token)
    const info = await call('GET', `${srv.url}/connect/userinfo`, undefined, bearer(tokens.access_token))
    t.equal(info.status, 200)

    // RFC 7592 §2.3: deleting the client takes its tokens with it.
    const del = await call('DELETE', reg.registration_client_uri as string, undefined, bearer(reg.registration_access_token as string))
    t.equal(del.status, 204)
    t.equal(del.text, '')
    const after = await call('GET', `${srv.url}/connect/userinfo`, undefined, bearer(tokens.access_token))
    t.equal(after.status, 401, 'its access token is refused at userinfo')
    const refresh = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, client_id: client.client_id })
    t.equal(refresh.status, 401, 'its refresh token cannot be used')
    t.equal(refresh.json.error, 'invalid_client')
    const again = await get(authorizeUrl(srv, { response_type: 'code', client_id: client.client_id, redirect_uri: redirect, scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' }), jar)
    t.equal(again.status, 400, 'authorize no longer knows it (an error page, no redirect)')
    t.notOk(again.location)
  })

  t.test('the initial access token: missing or wrong → 401; any of the configured ones works', async (t) => {
    const none = await call('POST', endpoint, { grant_types: ['client_credentials'], scope: 'api' })
    t.equal(none.status, 401)
    t.equal(none.json.error, 'invalid_token')
    t.equal(none.headers.get('www-authenticate'), 'Bearer realm="grantd"')
    const wrong = await call('POST', endpoint, { grant_types: ['client_credentials'], scope: 'api' }, bearer(INITIAL_TOKEN + 'x'))
    t.equal(wrong.status, 401)
    t.match(wrong.headers.get('www-authenticate'), /error="invalid_token"/)
    const basicAuth = await call('POST', endpoint, { grant_types: ['client_credentials'], scope: 'api' }, { authorization: basic('svc', 'svc-secret') })
    t.equal(basicAuth.status, 401, 'client credentials are not an initial access token')
    const second = await call('POST', endpoint, { grant_types: ['client_credentials'], scope: 'api' }, bearer(SECOND_TOKEN))
    t.equal(second.status, 201)
  })

  t.test('invalid metadata: RFC 7591 §3.2.2 errors, never a 500', async (t) => {
    const cases: Array<[string, unknown, string]> = [
      ['fragment in redirect_uri', { redirect_uris: ['http://127.0.0.1:5000/cb#x'] }, 'invalid_redirect_uri'],
      ['relative redirect_uri', { redirect_uris: ['/cb'] }, 'invalid_redirect_uri'],
      ['javascript: redirect_uri', { redirect_uris: ['javascript:alert(1)'] }, 'invalid_redirect_uri'],
      ['private-use scheme for a confidential client', { redirect_uris: ['com.example.app:/cb'] }, 'invalid_redirect_uri'],
      ['code grant without redirect_uris', { grant_types: ['authorization_code'] }, 'invalid_redirect_uri'],
      ['redirect_uris not an array', { redirect_uris: 'http://127.0.0.1:5000/cb' }, 'invalid_redirect_uri'],
      ['unknown auth method', { grant_types: ['client_credentials'], scope: 'api', token_endpoint_auth_method: 'tls_client_auth' }, 'invalid_client_metadata'],
      ['grant type not allowed for registered clients', { grant_types: ['password'], scope: 'api' }, 'invalid_client_metadata'],
      ['grant_types not an array', { grant_types: 'client_credentials', scope: 'api' }, 'invalid_client_metadata'],
      ['scope outside the allowed ones', { grant_types: ['client_credentials'], scope: 'api admin' }, 'invalid_client_metadata'],
      ['scope not a string', { grant_types: ['client_credentials'], scope: ['api'] }, 'invalid_client_metadata'],
      ['response_types token', { redirect_uris: ['http://127.0.0.1:5000/cb'], response_types: ['token'] }, 'invalid_client_metadata'],
      ['response_types disagree with grant_types', { grant_types: ['client_credentials'], scope: 'api', response_types: ['code'] }, 'invalid_client_metadata'],
      ['an alg grantd does not sign with', { grant_types: ['client_credentials'], scope: 'api', access_token_signed_response_alg: 'HS256' }, 'invalid_client_metadata'],
      ['private_key_jwt without jwks', { grant_types: ['client_credentials'], scope: 'api', token_endpoint_auth_method: 'private_key_jwt' }, 'invalid_client_metadata'],
      ['jwks_uri', { grant_types: ['client_credentials'], scope: 'api', token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://example.com/jwks' }, 'invalid_client_metadata'],
      ['a private key in jwks', { grant_types: ['client_credentials'], scope: 'api', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }, 'invalid_client_metadata'],
      ['client_name not a string', { grant_types: ['client_credentials'], scope: 'api', client_name: 42 }, 'invalid_client_metadata'],
      ['backchannel_logout_uri not a URL', { grant_types: ['client_credentials'], scope: 'api', backchannel_logout_uri: 'not a url' }, 'invalid_client_metadata'],
      ['a client_id of its own', { client_id: 'mine', grant_types: ['client_credentials'], scope: 'api' }, 'invalid_client_metadata'],
      ['a config client\'s client_id', { client_id: 'svc', grant_types: ['client_credentials'], scope: 'api' }, 'invalid_client_metadata'],
      ['a client_secret of its own', { client_secret: 'mine-mine-mine', grant_types: ['client_credentials'], scope: 'api' }, 'invalid_client_metadata'],
    ]
    for (const [name, body, error] of cases) {
      const res = await call('POST', endpoint, body, bearer(INITIAL_TOKEN))
      t.equal(res.status, 400, `${name}: 400`)
      t.equal(res.json.error, error, `${name}: ${error}`)
      t.type(res.json.error_description, 'string')
      t.equal(res.headers.get('cache-control'), 'no-store')
    }
    for (const [name, body, type] of [['not JSON', '{"redirect_uris":', 'application/json'], ['a JSON array', '[]', 'application/json'], ['a form', 'grant_types=client_credentials', 'application/x-www-form-urlencoded']] as const) {
      const sent = await fetch(endpoint, { method: 'POST', body, headers: { ...bearer(INITIAL_TOKEN), 'content-type': type } })
      const json = await sent.json() as Record<string, unknown>
      t.equal(sent.status, 400, `${name}: 400`)
      t.equal(json.error, 'invalid_request', `${name}: invalid_request`)
    }
    const unknownFields = await register(srv.url, { grant_types: ['client_credentials'], scope: 'api', logo_uri: 'https://example.com/logo.png', identity_providers: ['upstream'], allow_plain_pkce: true, access_token_ttl: 86400 })
    t.notOk('logo_uri' in unknownFields || 'identity_providers' in unknownFields || 'allow_plain_pkce' in unknownFields || 'access_token_ttl' in unknownFields,
      'unknown and privileged metadata is dropped (RFC 7591 §2), not granted')
  })

  t.test('read, update, delete with the registration access token (RFC 7592); wrong tokens get 401', async (t) => {
    const reg = await register(srv.url, { grant_types: ['client_credentials'], scope: 'api', client_name: 'Before' })
    const id = reg.client_id as string
    const secret = reg.client_secret as string
    const uri = reg.registration_client_uri as string
    const rat = reg.registration_access_token as string

    const read = await call('GET', uri, undefined, bearer(rat))
    t.equal(read.status, 200)
    t.equal(read.json.client_id, id)
    t.equal(read.json.client_name, 'Before')
    t.notOk('client_secret' in read.json, 'the secret is kept only as a hash: never read back')
    t.equal(read.json.registration_access_token, rat)
    t.equal(read.headers.get('cache-control'), 'no-store')

    for (const [name, headers] of [['no token', {}], ['a wrong token', bearer(rat + 'x')], ['an initial access token', bearer(INITIAL_TOKEN)]] as const) {
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const res = await call(method, uri, method === 'PUT' ? { client_id: id, grant_types: ['client_credentials'], scope: 'api' } : undefined, headers)
        t.equal(res.status, 401, `${method} with ${name}: 401`)
      }
    }
    const other = await register(srv.url, { grant_types: ['client_credentials'], scope: 'api' })
    t.equal((await call('GET', uri, undefined, bearer(other.registration_access_token as string))).status, 401, 'another client\'s registration token')
    t.equal((await call('GET', `${endpoint}/svc`, undefined, bearer(rat))).status, 401, 'a config client is not managed here')
    t.equal((await call('GET', `${endpoint}/%E0%A4%A`, undefined, bearer(rat))).status, 401, 'a malformed id')

    const moved = await call('PUT', uri, { client_id: 'svc', grant_types: ['client_credentials'], scope: 'api' }, bearer(rat))
    t.equal(moved.status, 400, 'a PUT cannot change client_id (to a config client\'s or any)')
    t.equal(moved.json.error, 'invalid_client_metadata')
    const missing = await call('PUT', uri, { grant_types: ['client_credentials'], scope: 'api' }, bearer(rat))
    t.equal(missing.json.error, 'invalid_client_metadata', 'client_id is required in a PUT')
    const chosen = await call('PUT', uri, { client_id: id, client_secret: 'my-own-secret', grant_types: ['client_credentials'], scope: 'api' }, bearer(rat))
    t.equal(chosen.json.error, 'invalid_client_metadata', 'a client never chooses its own secret')
    const bad = await call('PUT', uri, { client_id: id, grant_types: ['client_credentials'], scope: 'api admin' }, bearer(rat))
    t.equal(bad.json.error, 'invalid_client_metadata', 'an update is validated like a registration')

    const updated = await call('PUT', uri, { client_id: id, client_secret: secret, grant_types: ['client_credentials'], scope: 'openid api', client_name: 'After', registration_access_token: 'ignored' }, bearer(rat))
    t.equal(updated.status, 200)
    t.equal(updated.json.client_name, 'After')
    t.equal(updated.json.client_id, id)
    t.equal(updated.json.scope, 'openid api')
    t.notOk('client_secret' in updated.json, 'the secret is kept')
    t.equal((await call('GET', uri, undefined, bearer(rat))).json.client_name, 'After', 'the update is stored')
    t.equal((await clientCredentials(id, secret)).status, 200, 'the kept secret still works')
    t.equal((await clientCredentials('svc', 'svc-secret')).status, 200, 'the config client is untouched')

    const del = await call('DELETE', uri, undefined, bearer(rat))
    t.equal(del.status, 204)
    t.equal((await clientCredentials(id, secret)).status, 401, 'deleted: refused at once in this process')
    t.equal((await call('GET', uri, undefined, bearer(rat))).status, 401, 'deleted: the registration token is revoked with it')
    t.equal((await call('DELETE', uri, undefined, bearer(rat))).status, 401)
  })

  t.test('CORS: a registered browser-based client\'s origin may call the token endpoint, until it is deleted', async (t) => {
    const origin = 'http://127.0.0.1:5999'
    const preflight = () => fetch(`${srv.url}/connect/token`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST' } })
    t.equal((await preflight()).headers.get('access-control-allow-origin'), null, 'unknown origin: no CORS')
    const reg = await register(srv.url, { redirect_uris: [`${origin}/app`], token_endpoint_auth_method: 'none', scope: 'openid' })
    const allowed = await preflight()
    t.equal(allowed.status, 204)
    t.equal(allowed.headers.get('access-control-allow-origin'), origin, 'the registered origin is allowed at once')
    const other = await fetch(`${srv.url}/connect/token`, { method: 'OPTIONS', headers: { origin: 'http://127.0.0.1:6000', 'access-control-request-method': 'POST' } })
    t.equal(other.headers.get('access-control-allow-origin'), null, 'another origin is not')
    const moved = await call('PUT', reg.registration_client_uri as string, { client_id: reg.client_id, redirect_uris: ['http://127.0.0.1:6001/app'], token_endpoint_auth_method: 'none', scope: 'openid' }, bearer(reg.registration_access_token as string))
    t.equal(moved.status, 200)
    t.equal((await preflight()).headers.get('access-control-allow-origin'), null, 'an origin the update dropped is no longer allowed')
    t.equal((await fetch(`${srv.url}/connect/token`, { method: 'OPTIONS', headers: { origin: 'http://127.0.0.1:6001', 'access-control-request-method': 'POST' } })).headers.get('access-control-allow-origin'), 'http://127.0.0.1:6001')
    t.equal((await call('DELETE', reg.registration_client_uri as string, undefined, bearer(reg.registration_access_token as string))).status, 204)
    t.equal((await fetch(`${srv.url}/connect/token`, { method: 'OPTIONS', headers: { origin: 'http://127.0.0.1:6001', 'access-control-request-method': 'POST' } })).headers.get('access-control-allow-origin'), null, 'deleted: no CORS')
  })

  t.test('a PUT from a public to a confidential method issues a secret', async (t) => {
    const reg = await register(srv.url, { redirect_uris: ['http://127.0.0.1:5000/pub'], token_endpoint_auth_method: 'none', scope: 'openid' })
    const res = await call('PUT', reg.registration_client_uri as string, { client_id: reg.client_id, redirect_uris: ['http://127.0.0.1:5000/pub'], grant_types: ['authorization_code', 'client_credentials'], scope: 'openid api' },
      bearer(reg.registration_access_token as string))
    t.equal(res.status, 200)
    t.equal(res.json.token_endpoint_auth_method, 'client_secret_basic')
    t.type(res.json.client_secret, 'string')
    t.equal(res.json.client_secret_expires_at, 0)
    t.equal((await clientCredentials(reg.client_id as string, res.json.client_secret as string)).status, 200)
  })

  t.test('a back-channel URI on a private or loopback address is refused unless allowed', async (t) => {
    const strict = await startFlowServer(registrationConfig({ allowPrivateNetworkUris: false }))
    t.teardown(strict.close)
    for (const target of ['http://127.0.0.1:9/bc', 'http://localhost:9/bc', 'http://[::1]:9/bc', 'http://10.1.2.3/bc', 'http://169.254.169.254/latest', 'http://[::ffff:127.0.0.1]/bc', 'http://0x7f.1/bc', 'http://192.168.0.1/bc', 'http://app.localhost/bc']) {
      const res = await call('POST', `${strict.url}/connect/register`, { grant_types: ['client_credentials'], scope: 'api', backchannel_logout_uri: target }, bearer(INITIAL_TOKEN))
      t.equal(res.status, 400, `${target}: refused`)
      t.equal(res.json.error, 'invalid_client_metadata')
    }
    const ok = await call('POST', `${strict.url}/connect/register`, { grant_types: ['client_credentials'], scope: 'api', backchannel_logout_uri: 'https://203.0.114.7/bc' }, bearer(INITIAL_TOKEN))
    t.equal(ok.status, 201, 'a public address is accepted')
    const allowed = await register(srv.url, { grant_types: ['client_credentials'], scope: 'api', backchannel_logout_uri: 'http://127.0.0.1:9/bc' })
    t.equal(allowed.backchannel_logout_uri, 'http://127.0.0.1:9/bc', 'allowPrivateNetworkUris: true lets a test use loopback')
  })

  t.test('open registration needs no token; registrations per address are bounded', async (t) => {
    const open = await startFlowServer(registrationConfig({ open: true, initialAccessToken: undefined, maxRegistrationsPerAddress: 2 }))
    t.teardown(open.close)
    const url = `${open.url}/connect/register`
    t.equal((await call('POST', url, { grant_types: ['client_credentials'], scope: 'api' })).status, 201)
    t.equal((await call('POST', url, { grant_types: ['client_credentials'], scope: 'api' })).status, 201)
    const third = await call('POST', url, { grant_types: ['client_credentials'], scope: 'api' })
    t.equal(third.status, 429)
    t.equal(third.json.error, 'invalid_request')
    t.ok(third.headers.get('retry-after'))
  })
})

t.test('registered clients\' secrets are throttled like config clients\' (SPEC §9)', async (t) => {
  const srv = await startFlowServer(registrationConfig({}, { throttle: { maxFailuresPerClient: 3, maxFailuresPerAddress: 1000 } }))
  t.teardown(srv.close)
  const reg = await register(srv.url, { grant_types: ['client_credentials'], scope: 'api' })
  const attempt = (secret: string) => postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic(reg.client_id as string, secret) })
  for (let i = 0; i < 3; i++) t.equal((await attempt(`guess-${i}`)).status, 401)
  const locked = await attempt(reg.client_secret as string)
  t.equal(locked.status, 401, 'over the limit even the right secret is refused')
  t.ok(locked.headers.get('retry-after'))
  t.equal((await attempt('another-guess')).json.error, 'invalid_client')
})

t.test('a deleted client\'s access token is inactive at introspection, also for the API it was issued to', async (t) => {
  const api = 'https://api.example.com'
  const srv = await startFlowServer(registrationConfig({}, {
    resources: [{ id: api, scopes: ['api'] }],
    clients: [{ client_id: api, client_secret: 'rs-secret', grant_types: ['client_credentials'], scope: 'api' }],
  }))
  t.teardown(srv.close)
  const reg = await register(srv.url, { grant_types: ['client_credentials'], scope: 'api' })
  const token = await postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic(reg.client_id as string, reg.client_secret as string) })
  t.equal(token.status, 200)
  const introspect = () => postForm(`${srv.url}/connect/introspect`, { token: token.json.access_token as string }, { authorization: basic(api, 'rs-secret') })
  const before = await introspect()
  t.equal(before.json.active, true, 'the API (its aud) sees the token active')
  t.equal(before.json.client_id, reg.client_id)
  t.equal((await call('DELETE', reg.registration_client_uri as string, undefined, bearer(reg.registration_access_token as string))).status, 204)
  const after = await introspect()
  t.same(after.json, { active: false }, 'deleted client: its token is inactive (RFC 7592 §2.3)')
})

t.test('bad plugin options are a start error naming the key', async (t) => {
  const { validateConfig, createServer } = await import('@grantd/core')
  const boot = (options: Record<string, unknown>) => createServer(validateConfig({ plugins: [{ use: '@grantd/client-registration', options }] }, process.cwd()))
  await t.rejects(boot({}), /initialAccessToken: required unless open: true/)
  await t.rejects(boot({ initialAccessToken: 'short' }), /initialAccessToken: at least 16 characters/)
  await t.rejects(boot({ open: true, initialAccessToken: 'initial-access-token-0123456789' }), /open: true takes no initialAccessToken/)
  await t.rejects(boot({ open: 'yes' }), /open: expected boolean/)
  await t.rejects(boot({ opne: true }), /opne: unknown key/)
})
