import t from 'tap'
import { createHash } from 'node:crypto'
import { postForm, basic } from '../helpers/server.js'
import { baseConfig, loginForCode, redeem, SPA_REDIRECT, startFlowServer, WEB_AUTH, WEB_REDIRECT } from './flow.js'

/** SPEC §5 for `authorization_code`: every refusal, single use, replay revocation, concurrency. */

t.test('authorization_code at the token endpoint', async (t) => {
  const srv = await startFlowServer(baseConfig())
  t.teardown(srv.close)

  t.test('PKCE', async (t) => {
    const cases: Array<[string, (v: string) => string | undefined]> = [
      ['missing code_verifier', () => undefined],
      ['wrong code_verifier', () => 'w'.repeat(43)],
      ['too short', (v) => v.slice(0, 42)],
      ['too long', () => 'a'.repeat(129)],
      ['forbidden characters', (v) => v.slice(0, 42) + '!'],
      ['the challenge instead of the verifier', (v) => createHash('sha256').update(v).digest('base64url')],
    ]
    for (const [name, bad] of cases) {
      const { code, verifier } = await loginForCode(srv, { scope: 'openid' })
      const res = await redeem(srv, code, bad(verifier))
      t.equal(res.status, 400, name)
      t.equal(res.json.error, 'invalid_grant', name)
      t.equal(res.headers.get('cache-control'), 'no-store')
      // A failed check does not burn the code: the legitimate client can still redeem it.
      const ok = await redeem(srv, code, verifier)
      t.equal(ok.status, 200, `${name}: code still redeemable by its owner`)
    }
    const { code } = await loginForCode(srv, { client: 'nopkce', scope: 'openid', pkce: false })
    const downgrade = await redeem(srv, code, 'x'.repeat(43), { auth: { authorization: basic('nopkce', 'nopkce-secret') } })
    t.equal(downgrade.json.error, 'invalid_grant', 'a verifier for a code without challenge (RFC 9700 §2.1.1)')
  })

  t.test('redirect_uri, client binding, unknown codes, missing parameters', async (t) => {
    const { code, verifier } = await loginForCode(srv, { scope: 'openid' })
    const wrongUri = await redeem(srv, code, verifier, { redirectUri: 'http://127.0.0.1:5000/other?x=1' })
    t.equal(wrongUri.json.error, 'invalid_grant', 'another registered redirect_uri')
    const missingUri = await postForm(`${srv.url}/connect/token`, { grant_type: 'authorization_code', code, code_verifier: verifier }, WEB_AUTH)
    t.equal(missingUri.json.error, 'invalid_request')
    const otherClient = await redeem(srv, code, verifier, { auth: { authorization: basic('other', 'other-secret') } })
    t.equal(otherClient.json.error, 'invalid_grant', 'a code of another client')
    const missingCode = await postForm(`${srv.url}/connect/token`, { grant_type: 'authorization_code', redirect_uri: WEB_REDIRECT }, WEB_AUTH)
    t.equal(missingCode.json.error, 'invalid_request')
    for (const bogus of ['nope', 'A'.repeat(22) + '.' + 'B'.repeat(43), 'x'.repeat(5000), `${code}x`]) {
      const res = await redeem(srv, bogus, verifier)
      t.equal(res.status, 400)
      t.ok(['invalid_grant', 'invalid_request'].includes(res.json.error as string), String(res.json.error))
    }
    const dup = await postForm(`${srv.url}/connect/token`, `grant_type=authorization_code&code=${code}&code=${code}&redirect_uri=${encodeURIComponent(WEB_REDIRECT)}`, WEB_AUTH)
    t.equal(dup.json.error, 'invalid_request')
    const badSecret = await redeem(srv, code, verifier, { auth: { authorization: basic('web', 'nope') } })
    t.equal(badSecret.status, 401)
    t.equal(badSecret.json.error, 'invalid_client')
    t.equal(badSecret.headers.get('www-authenticate'), 'Basic realm="grantd"')
    const ok = await redeem(srv, code, verifier)
    t.equal(ok.status, 200, 'all of the above left the code usable')
  })

  t.test('public client: client_id alone plus PKCE', async (t) => {
    const { code, verifier } = await loginForCode(srv, { client: 'spa', scope: 'openid api offline_access' })
    const noVerifier = await redeem(srv, code, undefined, { clientId: 'spa', redirectUri: SPA_REDIRECT })
    t.equal(noVerifier.json.error, 'invalid_grant')
    const res = await redeem(srv, code, verifier, { clientId: 'spa', redirectUri: SPA_REDIRECT })
    t.equal(res.status, 200, res.text)
    t.type(res.json.refresh_token, 'string')
    t.type(res.json.id_token, 'string')
  })

  t.test('codes are stored only as hashes', async (t) => {
    const { code } = await loginForCode(srv, { scope: 'openid' })
    const dump = (srv.server.registry.store as unknown as { dump(): Array<[string, string]> }).dump()
    const secret = code.split('.')[1]!
    t.notOk(dump.some(([k, v]) => k.includes(secret) || v.includes(secret)), 'the code never appears in the store')
  })

  t.test('a second redemption fails and revokes every token issued from the code', async (t) => {
    const { code, verifier } = await loginForCode(srv)
    const first = await redeem(srv, code, verifier)
    t.equal(first.status, 200)
    const intro = await postForm(`${srv.url}/connect/introspect`, { token: first.json.access_token as string }, WEB_AUTH)
    t.equal(intro.json.active, true)
    const second = await redeem(srv, code, verifier)
    t.equal(second.status, 400)
    t.equal(second.json.error, 'invalid_grant')
    t.match(srv.log.lines.join('\n'), /authorization code used twice/)
    for (const token of [first.json.access_token, first.json.refresh_token] as string[]) {
      const res = await postForm(`${srv.url}/connect/introspect`, { token }, WEB_AUTH)
      t.same(res.json, { active: false }, 'introspection: inactive after the replay')
    }
    const refresh = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: first.json.refresh_token as string }, WEB_AUTH)
    t.equal(refresh.json.error, 'invalid_grant', 'the refresh token of the replayed code is dead')
    const userinfo = await fetch(`${srv.url}/connect/userinfo`, { headers: { authorization: `Bearer ${first.json.access_token}` } })
    t.equal(userinfo.status, 401)
    const third = await redeem(srv, code, verifier)
    t.equal(third.json.error, 'invalid_grant')
  })

  t.test('N=20 concurrent redemptions: exactly one succeeds', async (t) => {
    const { code, verifier } = await loginForCode(srv)
    const results = await Promise.all(Array.from({ length: 20 }, () => redeem(srv, code, verifier)))
    const winners = results.filter((r) => r.status === 200)
    t.equal(winners.length, 1, 'exactly one 200')
    t.ok(results.filter((r) => r.status === 400).every((r) => r.json.error === 'invalid_grant'), 'the rest invalid_grant')
    t.equal(results.filter((r) => r.status !== 200 && r.status !== 400).length, 0, 'no other status')
    // Every loser is a second use of the code: the winner's tokens are revoked as well.
    const intro = await postForm(`${srv.url}/connect/introspect`, { token: winners[0]!.json.access_token as string }, WEB_AUTH)
    t.same(intro.json, { active: false })
  })

  t.test('an expired code is refused', async (t) => {
    const short = await startFlowServer(baseConfig({ tokens: { codeTtl: 1 } }))
    t.teardown(short.close)
    const { code, verifier } = await loginForCode(short, { scope: 'openid' })
    await new Promise((r) => setTimeout(r, 1200))
    const res = await redeem(short, code, verifier)
    t.equal(res.status, 400)
    t.equal(res.json.error, 'invalid_grant')
  })

  t.test('no offline_access: no refresh token; no openid: no ID token', async (t) => {
    const a = await loginForCode(srv, { scope: 'openid api' })
    const withoutOffline = await redeem(srv, a.code, a.verifier)
    t.notOk('refresh_token' in withoutOffline.json)
    t.type(withoutOffline.json.id_token, 'string')
    const b = await loginForCode(srv, { scope: 'api offline_access' })
    const withoutOpenid = await redeem(srv, b.code, b.verifier)
    t.notOk('id_token' in withoutOpenid.json)
    t.type(withoutOpenid.json.refresh_token, 'string')
  })

  t.test('discovery advertises the endpoint, S256, and RFC 9207', async (t) => {
    const meta = (await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>
    t.equal(meta.authorization_endpoint, `${srv.url}/connect/authorize`)
    t.ok((meta.grant_types_supported as string[]).includes('authorization_code'))
    t.ok((meta.grant_types_supported as string[]).includes('refresh_token'))
    t.ok((meta.code_challenge_methods_supported as string[]).includes('S256'))
    t.equal(meta.authorization_response_iss_parameter_supported, true)
  })
})
