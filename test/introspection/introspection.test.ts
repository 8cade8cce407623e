import t from 'tap'
import { basic, postForm } from '../helpers/server.js'
import { baseConfig, loginForCode, OTHER_AUTH, redeem, SPA_REDIRECT, startFlowServer, WEB_AUTH, webTokens } from '../authorization-code/flow.js'

/**
 * RFC 7662: client-authenticated; access tokens (verified, with revocation) and refresh
 * tokens; a caller sees only its own tokens (or access tokens naming it in `aud`);
 * anything else is exactly `{"active": false}`.
 */

t.test('introspection', async (t) => {
  const srv = await startFlowServer(baseConfig())
  t.teardown(srv.close)
  const url = `${srv.url}/connect/introspect`
  const tokens = await webTokens(srv)

  t.test('active access and refresh tokens of the caller', async (t) => {
    const at = await postForm(url, { token: tokens.access_token! }, WEB_AUTH)
    t.equal(at.status, 200)
    t.equal(at.headers.get('cache-control'), 'no-store')
    t.match(at.headers.get('content-type'), /application\/json/)
    t.match(at.json, { active: true, token_type: 'Bearer', client_id: 'web', sub: 'u-alice', scope: 'openid profile email offline_access api', iss: srv.url, aud: 'web' })
    t.type(at.json.exp, 'number')
    t.type(at.json.iat, 'number')
    t.type(at.json.jti, 'string')
    const rt = await postForm(url, { token: tokens.refresh_token!, token_type_hint: 'refresh_token' }, WEB_AUTH)
    t.match(rt.json, { active: true, client_id: 'web', sub: 'u-alice', scope: 'openid profile email offline_access api' })
    t.type(rt.json.exp, 'number')
    // A wrong or unknown hint only changes the search order (§2.1).
    t.equal((await postForm(url, { token: tokens.refresh_token!, token_type_hint: 'access_token' }, WEB_AUTH)).json.active, true)
    t.equal((await postForm(url, { token: tokens.access_token!, token_type_hint: 'refresh_token' }, WEB_AUTH)).json.active, true)
    t.equal((await postForm(url, { token: tokens.access_token!, token_type_hint: 'nonsense' }, WEB_AUTH)).json.active, true)
    // client_secret_post works too where registered; introspecting does not use a refresh token up.
    t.equal((await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }, WEB_AUTH)).status, 200)
  })

  t.test('another client\'s tokens, unknown, garbage and expired: exactly {active:false}', async (t) => {
    const fresh = await webTokens(srv)
    for (const token of [fresh.access_token!, fresh.refresh_token!]) {
      const res = await postForm(url, { token }, OTHER_AUTH)
      t.equal(res.status, 200)
      t.same(res.json, { active: false }, 'not the caller\'s token')
    }
    for (const token of ['garbage', 'A'.repeat(22) + '.' + 'B'.repeat(43), fresh.id_token!, 'x'.repeat(4000)]) {
      const res = await postForm(url, { token }, WEB_AUTH)
      t.equal(res.status, 200)
      t.same(res.json, { active: false })
    }
    const short = await startFlowServer(baseConfig({ tokens: { accessTokenTtl: 1 } }))
    t.teardown(short.close)
    const shortTokens = await webTokens(short, 'openid api')
    await new Promise((r) => setTimeout(r, 2100))
    t.same((await postForm(`${short.url}/connect/introspect`, { token: shortTokens.access_token! }, WEB_AUTH)).json, { active: false }, 'expired')
  })

  t.test('a resource server sees access tokens whose aud names it', async (t) => {
    const svcToken = await postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc', 'svc-secret') })
    t.equal(svcToken.status, 200)
    t.equal((await postForm(url, { token: svcToken.json.access_token as string }, { authorization: basic('svc', 'svc-secret') })).json.active, true, 'own token')
    t.same((await postForm(url, { token: svcToken.json.access_token as string }, WEB_AUTH)).json, { active: false }, 'aud is svc, not web')
  })

  t.test('client authentication is required; public clients cannot introspect', async (t) => {
    const none = await postForm(url, { token: tokens.access_token! })
    t.equal(none.status, 401)
    t.equal(none.json.error, 'invalid_client')
    const wrong = await postForm(url, { token: tokens.access_token! }, { authorization: basic('web', 'nope') })
    t.equal(wrong.status, 401)
    t.equal(wrong.headers.get('www-authenticate'), 'Basic realm="grantd"')
    const { code, verifier } = await loginForCode(srv, { client: 'spa', scope: 'openid api' })
    const spa = await redeem(srv, code, verifier, { clientId: 'spa', redirectUri: SPA_REDIRECT })
    const pub = await postForm(url, { token: spa.json.access_token as string, client_id: 'spa' })
    t.equal(pub.status, 401)
    t.equal(pub.json.error, 'invalid_client')
  })

  t.test('malformed requests', async (t) => {
    const missing = await postForm(url, {}, WEB_AUTH)
    t.equal(missing.status, 400)
    t.equal(missing.json.error, 'invalid_request')
    const dup = await postForm(url, `token=a&token=b`, WEB_AUTH)
    t.equal(dup.json.error, 'invalid_request')
    const json = await fetch(url, { method: 'POST', body: '{"token":"x"}', headers: { 'content-type': 'application/json', ...WEB_AUTH } })
    t.equal(json.status, 400)
    t.equal(((await json.json()) as Record<string, unknown>).error, 'invalid_request')
    const get = await fetch(url, { headers: WEB_AUTH })
    t.equal(get.status, 405)
    const big = await postForm(url, { token: 'x'.repeat(17_000) }, WEB_AUTH)
    t.equal(big.status, 413)
    const twoMethods = await postForm(url, { token: 'x', client_id: 'web', client_secret: 'web-secret' }, WEB_AUTH)
    t.equal(twoMethods.json.error, 'invalid_request')
  })
})
