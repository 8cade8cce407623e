/**
 * RFC 6749 §3.2: "The authorization server MUST ignore unrecognized request parameters."
 * Length limits and the no-repeat rule apply to the parameters grantd reads (the core's and
 * those the grant declares); anything else is ignored, whatever its size (SPEC §9), within
 * the 16 KiB body limit.
 */
import t from 'tap'
import { basic, postForm, startServer } from '../helpers/server.js'

const config = {
  issuer: 'http://issuer.test',
  users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-alice', username: 'alice', password: 'wonderland' }] } },
  plugins: ['@grantd/grant-client-credentials', '@grantd/grant-password', '@grantd/grant-authorization-code', '@grantd/grant-refresh-token'],
  cookies: { keys: ['plumbing-parameters-cookie-key-0123'] },
  clients: [
    { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' },
    { client_id: 'web', client_secret: 'web-secret', grant_types: ['authorization_code', 'refresh_token', 'password'], redirect_uris: ['http://127.0.0.1:5000/cb'], scope: 'openid api offline_access' },
  ],
}
const SVC = { authorization: basic('svc', 'svc-secret') }
const WEB = { authorization: basic('web', 'web-secret') }
const KIB = 1024

t.test('unrecognised parameters', async (t) => {
  const srv = await startServer(config)
  t.teardown(srv.close)
  const token = `${srv.url}/connect/token`

  await t.test('a 15 KiB unknown parameter is ignored at the token endpoint', async (t) => {
    const res = await postForm(token, { grant_type: 'client_credentials', scope: 'api', x_pad: 'a'.repeat(15 * KIB) }, SVC)
    t.equal(res.status, 200, res.text)
    t.type(res.json.access_token, 'string')
  })

  await t.test('an unknown parameter with a long name is ignored', async (t) => {
    const res = await postForm(token, { grant_type: 'client_credentials', scope: 'api', ['n'.repeat(4 * KIB)]: 'x' }, SVC)
    t.equal(res.status, 200, res.text)
  })

  await t.test('hundreds of unknown parameters are ignored', async (t) => {
    const many = Array.from({ length: 500 }, (_, i) => `p${i}=x`).join('&')
    const res = await postForm(token, `grant_type=client_credentials&scope=api&${many}`, SVC)
    t.equal(res.status, 200, res.text)
  })

  await t.test('unknown parameters with NUL are ignored; a read one with NUL is refused', async (t) => {
    t.equal((await postForm(token, 'grant_type=client_credentials&scope=api&junk=%00', SVC)).status, 200)
    const bad = await postForm(token, 'grant_type=client_credentials&scope=api%00', SVC)
    t.equal(bad.status, 400)
    t.equal(bad.json.error, 'invalid_request')
  })

  await t.test('a parameter of another grant is unknown to this one', async (t) => {
    // `code` is read by authorization_code, not by client_credentials.
    const res = await postForm(token, { grant_type: 'client_credentials', scope: 'api', code: 'c'.repeat(15 * KIB) }, SVC)
    t.equal(res.status, 200, res.text)
  })

  await t.test('too-long parameters that grantd reads are still refused', async (t) => {
    const scope = await postForm(token, { grant_type: 'client_credentials', scope: `api ${'s'.repeat(15 * KIB)}` }, SVC)
    t.equal(scope.status, 400)
    t.equal(scope.json.error, 'invalid_request')
    t.match(scope.json.error_description, /scope/)
    const code = await postForm(token, { grant_type: 'authorization_code', code: 'c'.repeat(15 * KIB), redirect_uri: 'http://127.0.0.1:5000/cb' }, WEB)
    t.equal(code.status, 400)
    t.equal(code.json.error, 'invalid_request')
    t.match(code.json.error_description, /code is too long/)
    const password = await postForm(token, { grant_type: 'password', username: 'alice', password: 'p'.repeat(5 * KIB), scope: 'api' }, WEB)
    t.equal(password.json.error, 'invalid_request', 'a declared parameter of the grant')
    t.match(password.json.error_description, /password is too long/)
    const clientId = await postForm(token, { grant_type: 'client_credentials', scope: 'api', client_id: 'i'.repeat(5 * KIB), client_secret: 'x' })
    t.equal(clientId.json.error, 'invalid_request', 'a core (client authentication) parameter')
  })

  await t.test('introspection and revocation ignore unknown parameters too', async (t) => {
    const issued = await postForm(token, { grant_type: 'client_credentials', scope: 'api' }, SVC)
    const at = issued.json.access_token as string
    const intro = await postForm(`${srv.url}/connect/introspect`, { token: at, x_pad: 'a'.repeat(15 * KIB) }, SVC)
    t.equal(intro.status, 200, intro.text)
    t.equal(intro.json.active, true)
    const revoke = await postForm(`${srv.url}/connect/revocation`, { token: at, x_pad: 'a'.repeat(15 * KIB) }, SVC)
    t.equal(revoke.status, 200, revoke.text)
    t.equal((await postForm(`${srv.url}/connect/introspect`, { token: at }, SVC)).json.active, false, 'the revocation happened')
  })
})

t.test('repeated parameters', async (t) => {
  const srv = await startServer(config)
  t.teardown(srv.close)
  const token = `${srv.url}/connect/token`

  await t.test('a repeated parameter that grantd reads is invalid_request', async (t) => {
    for (const [what, body, headers] of [
      ['grant_type', 'grant_type=client_credentials&grant_type=client_credentials&scope=api', SVC],
      ['scope', 'grant_type=client_credentials&scope=api&scope=api', SVC],
      ['client_id', 'grant_type=client_credentials&scope=api&client_id=svc&client_id=svc&client_secret=svc-secret', {}],
      ['declared by the grant', 'grant_type=password&username=alice&username=alice&password=wonderland&scope=api', WEB],
      ['read though empty', 'grant_type=client_credentials&scope=api&scope=', SVC],
    ] as const) {
      const res = await postForm(token, body, headers)
      t.equal(res.status, 400, what)
      t.equal(res.json.error, 'invalid_request', what)
      t.match(res.json.error_description, /repeated/, what)
    }
  })

  await t.test('a repeated unknown parameter is ignored', async (t) => {
    const res = await postForm(token, 'grant_type=client_credentials&scope=api&foo=1&foo=2&foo=3', SVC)
    t.equal(res.status, 200, res.text)
    const other = await postForm(token, 'grant_type=client_credentials&scope=api&code=1&code=2', SVC)
    t.equal(other.status, 200, `a parameter of another grant, repeated: ${other.text}`)
  })

  await t.test('introspection: token repeated is refused, an unknown repeat is ignored', async (t) => {
    const twice = await postForm(`${srv.url}/connect/introspect`, 'token=a&token=b', SVC)
    t.equal(twice.json.error, 'invalid_request')
    const unknown = await postForm(`${srv.url}/connect/introspect`, 'token=a&x=1&x=2', SVC)
    t.equal(unknown.status, 200, unknown.text)
    t.equal(unknown.json.active, false)
    const revoke = await postForm(`${srv.url}/connect/revocation`, 'token=a&x=1&x=2', SVC)
    t.equal(revoke.status, 200, revoke.text)
    t.equal((await postForm(`${srv.url}/connect/revocation`, 'token=a&token_type_hint=x&token_type_hint=y', SVC)).json.error, 'invalid_request')
  })
})
