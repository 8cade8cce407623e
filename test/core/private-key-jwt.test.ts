/**
 * private_key_jwt (RFC 7523 §2.2/§3, OIDC Core §9): `aud` may be the issuer or the token
 * endpoint URL, `jti` is single-use, and every bad assertion is 401 invalid_client
 * without a Basic challenge.
 */
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose'
import { basic, postForm, startServer } from '../helpers/server.js'

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
const ISSUER = 'http://issuer.test'

const es = await generateKeyPair('ES256', { extractable: true })
const rsa = await generateKeyPair('RS256', { extractable: true })
const other = await generateKeyPair('ES256', { extractable: true })
type Key = Awaited<ReturnType<typeof generateKeyPair>>['privateKey']
const publicJwk = async (key: Key, kid: string) => ({ ...(await exportJWK(key)), kid })

const srv = await startServer({
  issuer: ISSUER,
  plugins: ['@grantd/grant-client-credentials'],
  clients: [
    { client_id: 'jwt', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [await publicJwk(es.publicKey, 'es'), await publicJwk(rsa.publicKey, 'rsa')] }, grant_types: ['client_credentials'], scope: 'api' },
    { client_id: 'jwt2', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [await publicJwk(other.publicKey, 'other')] }, grant_types: ['client_credentials'], scope: 'api' },
    { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' },
  ],
})
t.teardown(srv.close)
const TOKEN = `${srv.url}/connect/token`

interface AssertionOptions {
  key?: Key
  alg?: string
  kid?: string
  iss?: string
  sub?: string
  aud?: string | string[]
  jti?: string | null
  exp?: number | null
  claims?: JWTPayload
}

async function assertion(o: AssertionOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const payload: JWTPayload = { iss: o.iss ?? 'jwt', sub: o.sub ?? o.iss ?? 'jwt', aud: o.aud ?? ISSUER, iat: now, ...o.claims }
  if (o.jti !== null) payload.jti = o.jti ?? randomUUID()
  if (o.exp !== null) payload.exp = o.exp ?? now + 60
  return new SignJWT(payload).setProtectedHeader({ alg: o.alg ?? 'ES256', ...(o.kid ? { kid: o.kid } : {}) }).sign(o.key ?? es.privateKey)
}

const request = (jwt: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}, url = TOKEN) =>
  postForm(url, { grant_type: 'client_credentials', scope: 'api', client_assertion_type: ASSERTION_TYPE, client_assertion: jwt, ...extra }, headers)

function refused(t: Test, res: Awaited<ReturnType<typeof postForm>>, what: string, error = 'invalid_client', status = 401): void {
  t.equal(res.status, status, `${what}: status (${res.text})`)
  t.equal(res.json.error, error, `${what}: error`)
  t.equal(res.headers.get('www-authenticate'), null, `${what}: no Basic challenge`)
  t.equal(res.headers.get('cache-control'), 'no-store', `${what}: no-store`)
}

t.test('good assertions: aud = issuer, aud = token endpoint URL, either key of the set', async (t) => {
  const cases: Array<[string, AssertionOptions, Record<string, string>, string?]> = [
    ['aud = issuer', { aud: ISSUER }, {}],
    ['aud = token endpoint', { aud: `${ISSUER}/connect/token` }, {}],
    ['aud = [issuer, other]', { aud: ['https://elsewhere.example', ISSUER] }, {}],
    ['aud = the alias endpoint it was posted to', { aud: `${ISSUER}/oauth2/token` }, {}, `${srv.url}/oauth2/token`],
    ['RSA key with kid', { key: rsa.privateKey, alg: 'RS256', kid: 'rsa' }, {}],
    ['client_id in the body too', {}, { client_id: 'jwt' }],
  ]
  for (const [what, options, extra, url] of cases) {
    const res = await request(await assertion(options), extra, {}, url)
    t.equal(res.status, 200, `${what}: ${res.text}`)
    t.equal(JSON.parse(Buffer.from(String(res.json.access_token).split('.')[1]!, 'base64url').toString()).client_id, 'jwt', what)
  }
})

t.test('bad assertions → 401 invalid_client', async (t) => {
  const now = Math.floor(Date.now() / 1000)
  const cases: Array<[string, AssertionOptions, Record<string, string>?]> = [
    ['signed by a key the client did not register', { key: other.privateKey }],
    ['signed by another client\'s key, claiming to be jwt', { key: other.privateKey, kid: 'other' }],
    ['expired', { exp: now - 120 }],
    ['no exp', { exp: null }],
    ['lives longer than an hour', { exp: now + 7200 }],
    ['not yet valid', { claims: { nbf: now + 600 } }],
    ['wrong aud', { aud: 'https://elsewhere.example' }],
    ['aud = the issuer with a trailing path', { aud: `${ISSUER}/connect/introspect/x` }],
    ['aud = the server\'s own listening URL, not the issuer', { aud: srv.url }],
    ['missing jti', { jti: null }],
    ['sub ≠ iss', { sub: 'svc' }],
    ['iss of an unknown client', { iss: 'ghost' }],
    ['iss of a secret client', { iss: 'svc' }],
    ['iss of another jwt client, signed with jwt\'s key', { iss: 'jwt2' }],
    ['client_id in the body names another client', {}, { client_id: 'jwt2' }],
  ]
  for (const [what, options, extra] of cases) refused(t, await request(await assertion(options), extra), what)

  // Unsigned and HMAC-signed assertions are refused (RFC 7523 §3 requires a signature the client's keys verify).
  const header = (h: object) => Buffer.from(JSON.stringify(h)).toString('base64url')
  const body = Buffer.from(JSON.stringify({ iss: 'jwt', sub: 'jwt', aud: ISSUER, jti: randomUUID(), exp: now + 60 })).toString('base64url')
  refused(t, await request(`${header({ alg: 'none' })}.${body}.`), 'alg none')
  const hmac = await new SignJWT({ iss: 'jwt', sub: 'jwt', aud: ISSUER, jti: randomUUID(), exp: now + 60 }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('x'.repeat(32)))
  refused(t, await request(hmac), 'HS256')
  refused(t, await request('not-a-jwt'), 'not a JWT')
  refused(t, await request(`${(await assertion()).slice(0, -3)}AAA`), 'tampered signature')
})

t.test('a jti is single-use within the assertion lifetime', async (t) => {
  const jwt = await assertion()
  t.equal((await request(jwt)).status, 200, 'first use')
  refused(t, await request(jwt), 'the same assertion again')
  const jti = randomUUID()
  t.equal((await request(await assertion({ jti }))).status, 200, 'fresh assertion')
  refused(t, await request(await assertion({ jti, aud: `${ISSUER}/connect/token` })), 'a new assertion reusing a jti')
  // Concurrent replays: exactly one of them wins.
  const racing = await assertion()
  const statuses = (await Promise.all(Array.from({ length: 6 }, () => request(racing)))).map((r) => r.status).sort()
  t.same(statuses, [200, 401, 401, 401, 401, 401])
})

t.test('an assertion together with another method → 400 invalid_request', async (t) => {
  refused(t, await request(await assertion(), { client_id: 'jwt', client_secret: 'whatever' }), 'assertion + client_secret', 'invalid_request', 400)
  refused(t, await request(await assertion(), {}, { authorization: basic('svc', 'svc-secret') }), 'assertion + Basic', 'invalid_request', 400)
  // The type without an assertion, or an assertion without its type.
  refused(t, await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'api', client_assertion_type: ASSERTION_TYPE }), 'type without assertion', 'invalid_request', 400)
  refused(t, await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'api', client_assertion: await assertion() }), 'assertion without type', 'invalid_request', 400)
})

t.test('a private_key_jwt client cannot fall back to other methods', async (t) => {
  refused(t, await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'api', client_id: 'jwt' }), 'client_id alone')
  const res = await postForm(TOKEN, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('jwt', 'anything') })
  t.equal(res.status, 401)
  t.equal(res.json.error, 'invalid_client')
  t.equal(res.headers.get('www-authenticate'), 'Basic realm="grantd"')
})

t.test('without a configured issuer, aud is the issuer derived from the request', async (t) => {
  const derived = await startServer({
    plugins: ['@grantd/grant-client-credentials'],
    clients: [{ client_id: 'jwt', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [await publicJwk(es.publicKey, 'es')] }, grant_types: ['client_credentials'], scope: 'api' }],
  })
  t.teardown(derived.close)
  const url = `${derived.url}/connect/token`
  t.equal((await request(await assertion({ aud: derived.url }), {}, {}, url)).status, 200, 'aud = derived issuer')
  t.equal((await request(await assertion({ aud: url }), {}, {}, url)).status, 200, 'aud = derived token endpoint')
  refused(t, (await request(await assertion({ aud: ISSUER }), {}, {}, url)), 'aud = some other issuer')
})
