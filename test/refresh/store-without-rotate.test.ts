import t from 'tap'
import { postForm, type RunningServer } from '../helpers/server.js'
import { baseConfig, startFlowServer, WEB_AUTH, webTokens } from '../authorization-code/flow.js'

/**
 * Store.rotate is optional: with a store that lacks it (test/fixtures/core/store-without-rotate.mjs)
 * the core spends a refresh token with consume and stores its successor with put, and rotation,
 * reuse detection and the parallel-refresh race behave exactly as with the bundled stores.
 */

function refresh(srv: RunningServer, token: string) {
  return postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: token }, WEB_AUTH)
}

const withStore = (tokens: Record<string, unknown> = {}) => ({ ...baseConfig({ tokens }), store: { use: './test/fixtures/core/store-without-rotate.mjs' } })

t.test('rotation and reuse detection without Store.rotate', async (t) => {
  const srv = await startFlowServer(withStore())
  t.teardown(srv.close)
  t.notOk(srv.server.registry.store!.rotate, 'the store has no rotate')

  const first = await webTokens(srv)
  const second = await refresh(srv, first.refresh_token!)
  t.equal(second.status, 200, second.text)
  const third = await refresh(srv, second.json.refresh_token as string)
  t.equal(third.status, 200, third.text)
  t.equal((await refresh(srv, first.refresh_token!)).json.error, 'invalid_grant', 'a rotated-out token is refused')
  t.equal((await refresh(srv, third.json.refresh_token as string)).json.error, 'invalid_grant', 'and its family is revoked')

  const again = await webTokens(srv)
  const [a, b] = await Promise.all([refresh(srv, again.refresh_token!), refresh(srv, again.refresh_token!)])
  t.same([a.status, b.status].sort(), [200, 400], 'of two parallel refreshes with one token exactly one succeeds')
  const winner = a.status === 200 ? a : b
  t.equal((await refresh(srv, winner.json.refresh_token as string)).json.error, 'invalid_grant', 'the loser was a replay: the family is revoked')
})

t.test('the reuse interval without Store.rotate: two branches', async (t) => {
  const srv = await startFlowServer(withStore({ refreshTokenReuseInterval: 2 }))
  t.teardown(srv.close)
  const first = await webTokens(srv)
  const [a, b] = await Promise.all([refresh(srv, first.refresh_token!), refresh(srv, first.refresh_token!)])
  t.equal(a.status, 200, a.text)
  t.equal(b.status, 200, b.text)
  t.not(a.json.refresh_token, b.json.refresh_token)
  t.equal((await refresh(srv, a.json.refresh_token as string)).status, 200)
  t.equal((await refresh(srv, b.json.refresh_token as string)).status, 200)
})
