/**
 * RFC 9700 §4.14.2: refresh tokens of public clients must be sender-constrained or
 * rotated. grantd rotates them whatever `refreshTokenRotation` says (SPEC §9); with the
 * setting off, only confidential clients keep reusing their token.
 */
import t from 'tap'
import { postForm } from '../helpers/server.js'
import { baseConfig, loginForCode, redeem, SPA_REDIRECT, startFlowServer, WEB_AUTH, webTokens } from '../authorization-code/flow.js'

t.test('refreshTokenRotation: false still rotates a public client\'s refresh token', async (t) => {
  const srv = await startFlowServer(baseConfig({ tokens: { refreshTokenRotation: false } }))
  t.teardown(srv.close)
  const token = `${srv.url}/connect/token`
  const refresh = (rt: string) => postForm(token, { grant_type: 'refresh_token', refresh_token: rt, client_id: 'spa' })

  const { code, verifier } = await loginForCode(srv, { client: 'spa', scope: 'openid api offline_access' })
  const issued = await redeem(srv, code, verifier, { clientId: 'spa', redirectUri: SPA_REDIRECT })
  const first = issued.json.refresh_token as string
  t.type(first, 'string')

  const second = await refresh(first)
  t.equal(second.status, 200, second.text)
  t.type(second.json.refresh_token, 'string', 'a new refresh token is issued')
  t.not(second.json.refresh_token, first)
  t.equal((second.json.refresh_token as string).split('.')[0], first.split('.')[0], 'of the same family')

  // The stolen (rotated-out) token is replayed: refused, and the family is revoked.
  const replay = await refresh(first)
  t.equal(replay.status, 400)
  t.equal(replay.json.error, 'invalid_grant')
  const current = await refresh(second.json.refresh_token as string)
  t.equal(current.json.error, 'invalid_grant', 'the whole family is revoked')

  // A confidential client keeps the configured behaviour: no rotation.
  const web = await webTokens(srv)
  for (let i = 0; i < 2; i++) {
    const res = await postForm(token, { grant_type: 'refresh_token', refresh_token: web.refresh_token! }, WEB_AUTH)
    t.equal(res.status, 200, res.text)
    t.notOk('refresh_token' in res.json, 'confidential client: same token, none issued')
  }
})
