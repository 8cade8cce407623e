/**
 * Resources survive a shared Redis (SPEC §8, §11): a code naming two resources, issued by one
 * process, is redeemed at another for one of them; its refresh token, used at the first,
 * switches to the other and is refused a third.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { decodeJwt } from 'jose'
import { CookieJar, get, authorizeUrl, loginForCode, pkcePair, startFlowServer, WEB_REDIRECT } from '../authorization-code/flow.js'
import { basic, postForm, startServer } from '../helpers/server.js'
import { findRedis } from '../helpers/redis.js'
import { BILLING, ORDERS, REPORTS, resourcesConfig, said } from './fixtures.js'

const redis = await findRedis()
if (!redis) {
  t.skip('no Redis available (see notice above)', () => {})
} else {
  t.teardown(() => redis.stop())

  t.test('a code and its refresh tokens keep their resources across processes sharing Redis', async (t) => {
    const prefix = `grantd-claims-test:${randomBytes(4).toString('hex')}:`
    const config = resourcesConfig({ store: { use: '@grantd/store-redis', options: { url: redis.url, prefix } } })
    config.tokens = { ...(config.tokens as Record<string, unknown>), refreshTokenTtl: 300 }
    const a = await startFlowServer(config)
    t.teardown(a.close)
    // Same issuer, its own key: B only has to read the records A stored.
    const b = await startServer({ ...config, issuer: a.server.config.issuer })
    t.teardown(b.close)

    const jar = new CookieJar()
    await loginForCode(a, { scope: 'openid', jar })
    const { verifier, challenge } = pkcePair()
    const url = new URL(authorizeUrl(a, {
      response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid offline_access orders:read billing:read reports:read',
      state: 's', code_challenge: challenge, code_challenge_method: 'S256',
    }))
    url.searchParams.append('resource', ORDERS)
    url.searchParams.append('resource', BILLING)
    const code = (await get(url.href, jar)).location!.searchParams.get('code')!
    t.ok(code)

    const auth = { authorization: basic('web', 'web-secret') }
    const atB = await postForm(`${b.url}/connect/token`, { grant_type: 'authorization_code', code, redirect_uri: WEB_REDIRECT, code_verifier: verifier, resource: BILLING }, auth)
    t.equal(atB.status, 200, said(atB))
    t.equal(decodeJwt(atB.json.access_token as string).aud, BILLING)
    t.equal(atB.json.scope, 'openid offline_access billing:read')

    const atA = await postForm(`${a.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: atB.json.refresh_token as string, resource: ORDERS }, auth)
    t.equal(atA.status, 200, said(atA))
    t.equal(decodeJwt(atA.json.access_token as string).aud, ORDERS)
    t.equal(atA.json.expires_in, 120)

    const third = await postForm(`${b.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: atA.json.refresh_token as string, resource: REPORTS }, auth)
    t.equal(third.status, 400)
    t.equal(third.json.error, 'invalid_target')
    const still = await postForm(`${b.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: atA.json.refresh_token as string }, auth)
    t.equal(still.status, 200, 'not spent by the refusal: ' + said(still))
  })
}
