import t from 'tap'
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose'
import { basic, postForm, type RunningServer } from '../helpers/server.js'
import { baseConfig, loginForCode, OTHER_AUTH, redeem, SPA_REDIRECT, startFlowServer, WEB_AUTH, webTokens } from '../authorization-code/flow.js'

/**
 * RFC 7009: a refresh token revokes its family; an access token is recorded as revoked
 * until it expires (still a valid JWT offline, inactive to introspection and userinfo);
 * unknown tokens and tokens of other clients answer 200 and change nothing.
 */

async function active(srv: RunningServer, token: string): Promise<boolean> {
  return (await postForm(`${srv.url}/connect/introspect`, { token }, WEB_AUTH)).json.active === true
}

t.test('revocation', async (t) => {
  const srv = await startFlowServer(baseConfig())
  t.teardown(srv.close)
  const url = `${srv.url}/connect/revocation`

  t.test('a refresh token revokes the family: refresh tokens and access tokens', async (t) => {
    for (const hint of [undefined, 'refresh_token', 'access_token']) {
      const tokens = await webTokens(srv)
      const res = await postForm(url, { token: tokens.refresh_token!, ...(hint ? { token_type_hint: hint } : {}) }, WEB_AUTH)
      t.equal(res.status, 200, `hint ${hint}`)
      t.equal(res.text, '')
      t.equal(res.headers.get('cache-control'), 'no-store')
      t.notOk(await active(srv, tokens.refresh_token!))
      t.notOk(await active(srv, tokens.access_token!))
      const refresh = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }, WEB_AUTH)
      t.equal(refresh.json.error, 'invalid_grant')
    }
  })

  t.test('a rotated-out refresh token of the client revokes the family too', async (t) => {
    const tokens = await webTokens(srv)
    const next = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }, WEB_AUTH)
    t.equal((await postForm(url, { token: tokens.refresh_token! }, WEB_AUTH)).status, 200)
    t.notOk(await active(srv, next.json.refresh_token as string))
  })

  t.test('an access token is revoked until it expires; the grant lives on', async (t) => {
    const tokens = await webTokens(srv)
    const jwks = createLocalJWKSet((await (await fetch(`${srv.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet)
    const res = await postForm(url, { token: tokens.access_token!, token_type_hint: 'access_token' }, WEB_AUTH)
    t.equal(res.status, 200)
    t.notOk(await active(srv, tokens.access_token!))
    const info = await fetch(`${srv.url}/connect/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } })
    t.equal(info.status, 401)
    await t.resolves(jwtVerify(tokens.access_token!, jwks, { issuer: srv.url }), 'still a valid JWT offline')
    t.ok(await active(srv, tokens.refresh_token!), 'revoking an access token leaves the refresh token')
    const dump = (srv.server.registry.store as unknown as { dump(): Array<[string, string]> }).dump()
    t.ok(dump.some(([k]) => k.startsWith('atr:')), 'recorded as revoked')
  })

  t.test('tokens of another client are not revoked, and the answer is still 200', async (t) => {
    const tokens = await webTokens(srv)
    for (const token of [tokens.refresh_token!, tokens.access_token!]) {
      const res = await postForm(url, { token }, OTHER_AUTH)
      t.equal(res.status, 200)
      t.ok(await active(srv, token), 'still active')
    }
  })

  t.test('unknown and garbage tokens: 200', async (t) => {
    for (const token of ['nope', 'A'.repeat(22) + '.' + 'B'.repeat(43), 'a.b.c']) {
      const res = await postForm(url, { token }, WEB_AUTH)
      t.equal(res.status, 200)
    }
  })

  t.test('public clients revoke their own tokens with client_id alone', async (t) => {
    const { code, verifier } = await loginForCode(srv, { client: 'spa', scope: 'openid api offline_access' })
    const tokens = await redeem(srv, code, verifier, { clientId: 'spa', redirectUri: SPA_REDIRECT })
    const res = await postForm(url, { token: tokens.json.refresh_token as string, client_id: 'spa' })
    t.equal(res.status, 200)
    const refresh = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: tokens.json.refresh_token as string, client_id: 'spa' })
    t.equal(refresh.json.error, 'invalid_grant')
  })

  t.test('errors: missing token, bad client, repeated parameters', async (t) => {
    const missing = await postForm(url, {}, WEB_AUTH)
    t.equal(missing.status, 400)
    t.equal(missing.json.error, 'invalid_request')
    const noAuth = await postForm(url, { token: 'x' })
    t.equal(noAuth.status, 401)
    t.equal(noAuth.json.error, 'invalid_client')
    const wrong = await postForm(url, { token: 'x' }, { authorization: basic('web', 'bad') })
    t.equal(wrong.status, 401)
    const unknownPublic = await postForm(url, { token: 'x', client_id: 'nobody' })
    t.equal(unknownPublic.status, 401)
    const dup = await postForm(url, 'token=a&token=b', WEB_AUTH)
    t.equal(dup.json.error, 'invalid_request')
  })
})
