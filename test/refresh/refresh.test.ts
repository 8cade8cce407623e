import t from 'tap'
import { decodeJwt } from 'jose'
import { postForm, type RunningServer } from '../helpers/server.js'
import { baseConfig, OTHER_AUTH, startFlowServer, WEB_AUTH, webTokens, loginForCode, redeem, SPA_REDIRECT } from '../authorization-code/flow.js'
import type { SwitchableUsers } from './switchable-users.js'

/**
 * SPEC §5 refresh_token: rotation, reuse detection with family revocation, narrowing,
 * the user service asked again, and the parallel-refresh decision (IdentityServer4#3015):
 * with `refreshTokenReuseInterval: 0` (default) two refreshes with one token revoke the
 * family; with an interval, both succeed inside it.
 */

function refresh(srv: RunningServer, token: string, extra: Record<string, string> = {}, auth: Record<string, string> = WEB_AUTH) {
  return postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: token, ...extra }, auth)
}

async function active(srv: RunningServer, token: string): Promise<boolean> {
  const res = await postForm(`${srv.url}/connect/introspect`, { token }, WEB_AUTH)
  return res.json.active === true
}

t.test('rotation and reuse detection', async (t) => {
  const srv = await startFlowServer(baseConfig())
  t.teardown(srv.close)

  t.test('each refresh returns a new token of the same family; the old one is spent', async (t) => {
    const first = await webTokens(srv)
    const gid = decodeJwt(first.access_token!).gid
    const second = await refresh(srv, first.refresh_token!)
    t.equal(second.status, 200, second.text)
    t.equal(second.headers.get('cache-control'), 'no-store')
    t.not(second.json.refresh_token, first.refresh_token)
    t.equal((second.json.refresh_token as string).split('.')[0], gid, 'new token joins the family')
    t.equal(decodeJwt(second.json.access_token as string).gid, gid)
    t.equal(second.json.scope, 'openid profile email offline_access api')
    const id = decodeJwt(second.json.id_token as string)
    t.equal(id.sub, 'u-alice')
    t.notOk('nonce' in id, 'no nonce on a refreshed ID token')
    t.same(id.amr, ['pwd'], 'amr of the original authentication')
    const third = await refresh(srv, second.json.refresh_token as string)
    t.equal(third.status, 200)
  })

  t.test('presenting a rotated-out token revokes the whole family', async (t) => {
    const first = await webTokens(srv)
    const second = await refresh(srv, first.refresh_token!)
    const third = await refresh(srv, second.json.refresh_token as string)
    t.equal(third.status, 200)
    t.ok(await active(srv, third.json.access_token as string))
    // An attacker replays the first (rotated-out) token.
    const replay = await refresh(srv, first.refresh_token!)
    t.equal(replay.status, 400)
    t.equal(replay.json.error, 'invalid_grant')
    // Every descendant and every access token of the family is dead.
    const current = await refresh(srv, third.json.refresh_token as string)
    t.equal(current.json.error, 'invalid_grant', 'the newest refresh token is revoked too')
    for (const at of [first.access_token!, second.json.access_token as string, third.json.access_token as string]) t.notOk(await active(srv, at), 'access token inactive')
    t.notOk(await active(srv, third.json.refresh_token as string))
    // Another grant of the same user is untouched.
    const other = await webTokens(srv)
    t.equal((await refresh(srv, other.refresh_token!)).status, 200)
  })

  t.test('a token presented by another client revokes the family', async (t) => {
    const first = await webTokens(srv)
    const stolen = await refresh(srv, first.refresh_token!, {}, OTHER_AUTH)
    t.equal(stolen.json.error, 'invalid_grant')
    t.equal((await refresh(srv, first.refresh_token!)).json.error, 'invalid_grant')
    t.notOk(await active(srv, first.access_token!))
  })

  t.test('scope narrows, never widens; the refresh token keeps its scope (RFC 6749 §6)', async (t) => {
    const first = await webTokens(srv, 'openid profile offline_access api')
    const narrowed = await refresh(srv, first.refresh_token!, { scope: 'api' })
    t.equal(narrowed.status, 200, narrowed.text)
    t.equal(narrowed.json.scope, 'api')
    t.equal(decodeJwt(narrowed.json.access_token as string).scope, 'api')
    t.notOk('id_token' in narrowed.json, 'no openid, no ID token')
    const back = await refresh(srv, narrowed.json.refresh_token as string, { scope: 'openid profile api' })
    t.equal(back.status, 200, 'the original scope is still available from the new refresh token')
    const widened = await refresh(srv, back.json.refresh_token as string, { scope: 'openid email' })
    t.equal(widened.status, 400)
    t.equal(widened.json.error, 'invalid_scope')
    const notClients = await refresh(srv, back.json.refresh_token as string, { scope: 'admin' })
    t.equal(notClients.json.error, 'invalid_scope')
    const still = await refresh(srv, back.json.refresh_token as string)
    t.equal(still.status, 200, 'a refused widening does not use up the token')
  })

  t.test('malformed, unknown and missing tokens; clients that may not refresh', async (t) => {
    for (const bad of ['x', 'A'.repeat(22) + '.' + 'B'.repeat(43), '.'.repeat(300), 'eyJhbGciOiJFUzI1NiJ9.e30.sig']) {
      const res = await refresh(srv, bad)
      t.equal(res.status, 400)
      t.equal(res.json.error, 'invalid_grant')
    }
    const missing = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token' }, WEB_AUTH)
    t.equal(missing.json.error, 'invalid_request')
    const noGrant = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: 'x' }, { authorization: 'Basic ' + Buffer.from('nopkce:nopkce-secret').toString('base64') })
    t.equal(noGrant.json.error, 'unauthorized_client')
  })

  t.test('public clients refresh with client_id alone', async (t) => {
    const { code, verifier } = await loginForCode(srv, { client: 'spa', scope: 'openid api offline_access' })
    const tokens = await redeem(srv, code, verifier, { clientId: 'spa', redirectUri: SPA_REDIRECT })
    const res = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: tokens.json.refresh_token as string, client_id: 'spa' })
    t.equal(res.status, 200, res.text)
  })

  t.test('refresh tokens are stored only as hashes', async (t) => {
    const tokens = await webTokens(srv)
    const secret = tokens.refresh_token!.split('.')[1]!
    const dump = (srv.server.registry.store as unknown as { dump(): Array<[string, string]> }).dump()
    t.notOk(dump.some(([k, v]) => k.includes(secret) || v.includes(secret)))
  })
})

t.test('parallel refresh with one token (IdentityServer4#3015)', async (t) => {
  t.test('reuse interval 0 (default): one wins, the family is revoked', async (t) => {
    const srv = await startFlowServer(baseConfig())
    t.teardown(srv.close)
    const first = await webTokens(srv)
    const [a, b] = await Promise.all([refresh(srv, first.refresh_token!), refresh(srv, first.refresh_token!)])
    t.same([a.status, b.status].sort(), [200, 400], 'exactly one succeeds')
    const winner = a.status === 200 ? a : b
    t.equal((a.status === 200 ? b : a).json.error, 'invalid_grant')
    const next = await refresh(srv, winner.json.refresh_token as string)
    t.equal(next.json.error, 'invalid_grant', 'strict one-time use: the second use counts as a replay')
  })

  t.test('reuse interval 2s: both succeed inside it; a reuse after it revokes the family', async (t) => {
    const srv = await startFlowServer(baseConfig({ tokens: { refreshTokenReuseInterval: 2 } }))
    t.teardown(srv.close)
    const first = await webTokens(srv)
    const [a, b] = await Promise.all([refresh(srv, first.refresh_token!), refresh(srv, first.refresh_token!)])
    t.equal(a.status, 200, a.text)
    t.equal(b.status, 200, b.text)
    t.not(a.json.refresh_token, b.json.refresh_token)
    // Both tabs continue independently.
    const a2 = await refresh(srv, a.json.refresh_token as string)
    const b2 = await refresh(srv, b.json.refresh_token as string)
    t.equal(a2.status, 200)
    t.equal(b2.status, 200)
    // Another client never benefits from the interval.
    const stolen = await refresh(srv, a.json.refresh_token as string, {}, OTHER_AUTH)
    t.equal(stolen.json.error, 'invalid_grant')
    t.equal((await refresh(srv, a2.json.refresh_token as string)).json.error, 'invalid_grant', 'and a foreign use revokes the family')

    const again = await webTokens(srv)
    const rotated = await refresh(srv, again.refresh_token!)
    t.equal(rotated.status, 200)
    await new Promise((r) => setTimeout(r, 2300))
    const late = await refresh(srv, again.refresh_token!)
    t.equal(late.json.error, 'invalid_grant', 'outside the interval a reuse is a replay')
    t.equal((await refresh(srv, rotated.json.refresh_token as string)).json.error, 'invalid_grant', 'family revoked')
  })
})

t.test('rotation off: the same token is reused and no new one is issued', async (t) => {
  const srv = await startFlowServer(baseConfig({ tokens: { refreshTokenRotation: false } }))
  t.teardown(srv.close)
  const first = await webTokens(srv)
  for (let i = 0; i < 3; i++) {
    const res = await refresh(srv, first.refresh_token!)
    t.equal(res.status, 200, res.text)
    t.notOk('refresh_token' in res.json, 'no new refresh token')
    t.equal(decodeJwt(res.json.access_token as string).gid, first.refresh_token!.split('.')[0])
  }
  const stolen = await refresh(srv, first.refresh_token!, {}, OTHER_AUTH)
  t.equal(stolen.json.error, 'invalid_grant')
  t.equal((await refresh(srv, first.refresh_token!)).json.error, 'invalid_grant', 'another client presenting it revokes the family')
  const next = await webTokens(srv)
  const revoke = await postForm(`${srv.url}/connect/revocation`, { token: next.refresh_token! }, WEB_AUTH)
  t.equal(revoke.status, 200)
  t.equal((await refresh(srv, next.refresh_token!)).json.error, 'invalid_grant', 'revocation still works without rotation')
})

t.test('expired refresh tokens are refused', async (t) => {
  const srv = await startFlowServer(baseConfig({ tokens: { refreshTokenTtl: 1 } }))
  t.teardown(srv.close)
  const first = await webTokens(srv)
  await new Promise((r) => setTimeout(r, 1200))
  t.equal((await refresh(srv, first.refresh_token!)).json.error, 'invalid_grant')
})

t.test('the user service is asked again on every refresh', async (t) => {
  const config = baseConfig()
  const srv = await startFlowServer({ ...config, users: './test/refresh/switchable-users.ts' })
  t.teardown(srv.close)
  const users = srv.server.registry.users as unknown as SwitchableUsers
  const first = await webTokens(srv, 'openid offline_access api')
  const ok = await refresh(srv, first.refresh_token!)
  t.equal(ok.status, 200, ok.text)
  t.ok(users.activeChecks.some((c) => c.sub === 'u-alice'), 'isActive asked')
  users.active = false
  const refused = await refresh(srv, ok.json.refresh_token as string)
  t.equal(refused.status, 400)
  t.equal(refused.json.error, 'invalid_grant')
  users.active = true
  const back = await refresh(srv, ok.json.refresh_token as string)
  t.equal(back.status, 200, 'a refusal for an inactive user did not burn the token')
})
