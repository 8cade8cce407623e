import t from 'tap'
import { basic, postForm } from '../helpers/server.js'
import { baseConfig, startFlowServer, WEB_AUTH, webTokens } from '../authorization-code/flow.js'

/** OIDC Core §5.3 userinfo with RFC 6750 Bearer semantics and WWW-Authenticate errors. */

t.test('userinfo', async (t) => {
  const srv = await startFlowServer(baseConfig())
  t.teardown(srv.close)
  const url = `${srv.url}/connect/userinfo`

  t.test('GET with the header, POST with the header or the form body', async (t) => {
    const tokens = await webTokens(srv)
    const expected = { sub: 'u-alice', name: 'Alice', preferred_username: 'alice', email: 'alice@example.com', email_verified: true }
    const get = await fetch(url, { headers: { authorization: `Bearer ${tokens.access_token}` } })
    t.equal(get.status, 200)
    t.equal(get.headers.get('cache-control'), 'no-store')
    t.same(await get.json(), expected)
    const lower = await fetch(url, { headers: { authorization: `bearer ${tokens.access_token}` } })
    t.equal(lower.status, 200, 'the scheme is case-insensitive')
    const postHeader = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${tokens.access_token}` } })
    t.same(await postHeader.json(), expected)
    const postBody = await postForm(url, { access_token: tokens.access_token! })
    t.equal(postBody.status, 200)
    t.same(postBody.json, expected)
  })

  t.test('claims follow the token\'s scope; sub is always there', async (t) => {
    const openidOnly = await webTokens(srv, 'openid api')
    const res = await fetch(url, { headers: { authorization: `Bearer ${openidOnly.access_token}` } })
    t.same(await res.json(), { sub: 'u-alice' })
    const emailOnly = await webTokens(srv, 'openid email')
    t.same(await (await fetch(url, { headers: { authorization: `Bearer ${emailOnly.access_token}` } })).json(), { sub: 'u-alice', email: 'alice@example.com', email_verified: true })
  })

  t.test('RFC 6750 errors', async (t) => {
    const none = await fetch(url)
    t.equal(none.status, 401)
    t.equal(none.headers.get('www-authenticate'), 'Bearer realm="grantd"', 'no error code when no token was sent (§3.1)')
    const bad = await fetch(url, { headers: { authorization: 'Bearer not-a-token' } })
    t.equal(bad.status, 401)
    t.match(bad.headers.get('www-authenticate'), /^Bearer realm="grantd", error="invalid_token", error_description="[^"]+"$/)
    t.equal(((await bad.json()) as Record<string, unknown>).error, 'invalid_token')
    const malformed = await fetch(url, { headers: { authorization: 'Bearer a b' } })
    t.equal(malformed.status, 400)
    t.match(malformed.headers.get('www-authenticate'), /error="invalid_request"/)
    const basicAuth = await fetch(url, { headers: { authorization: basic('web', 'web-secret') } })
    t.equal(basicAuth.status, 401, 'Basic is not a bearer token')

    const tokens = await webTokens(srv)
    const both = await postForm(url, { access_token: tokens.access_token! }, { authorization: `Bearer ${tokens.access_token}` })
    t.equal(both.status, 400, 'two ways at once (§2)')
    t.equal(both.json.error, 'invalid_request')
    const query = await fetch(`${url}?access_token=${tokens.access_token}`)
    t.equal(query.status, 401, 'the query string is not accepted')

    const noOpenid = await webTokens(srv, 'api offline_access')
    const insufficient = await fetch(url, { headers: { authorization: `Bearer ${noOpenid.access_token}` } })
    t.equal(insufficient.status, 403)
    t.match(insufficient.headers.get('www-authenticate'), /error="insufficient_scope".*scope="openid"/)

    const svc = await postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc', 'svc-secret') })
    const clientToken = await fetch(url, { headers: { authorization: `Bearer ${svc.json.access_token}` } })
    t.equal(clientToken.status, 403, 'a client token has no openid scope')

    const revoked = await webTokens(srv)
    await postForm(`${srv.url}/connect/revocation`, { token: revoked.refresh_token! }, WEB_AUTH)
    const afterRevocation = await fetch(url, { headers: { authorization: `Bearer ${revoked.access_token}` } })
    t.equal(afterRevocation.status, 401)
    t.match(afterRevocation.headers.get('www-authenticate'), /invalid_token/)

    const tampered = tokens.access_token!.slice(0, -4) + 'AAAA'
    t.equal((await fetch(url, { headers: { authorization: `Bearer ${tampered}` } })).status, 401)
    const idToken = await fetch(url, { headers: { authorization: `Bearer ${tokens.id_token}` } })
    t.equal(idToken.status, 401, 'an ID token is not an access token (typ at+jwt)')
    const put = await fetch(url, { method: 'PUT', headers: { authorization: `Bearer ${tokens.access_token}` } })
    t.equal(put.status, 405)
  })
})
