/**
 * Conformance checks for a claims hook plugin (SPEC §11), like the store contract: hand it the
 * plugin reference and it runs every built-in grant plus userinfo against a real server with
 * the plugin loaded, checking that each answer succeeds and that the claims the core owns are
 * exactly what the core would have said without the plugin.
 *
 *   claimsHookContract(t, { use: '/abs/path/my-hook.mjs', options: {} })
 */
import type { Test } from 'tap'
import { decodeJwt, type JWTPayload } from 'jose'
import { loginForCode, redeem, startFlowServer, WEB_REDIRECT } from '../authorization-code/flow.js'
import { basic, postForm } from './server.js'

const ALICE = { sub: 'u-alice', username: 'alice', password: 'wonderland', tenant: 'acme', claims: { name: 'Alice', roles: ['admin'] } }
const API = 'https://api.example.com/contract'

export function claimsHookContract(t: Test, plugin: string | { use: string; options?: unknown }): void {
  t.test('claims hook contract', async (t) => {
    const srv = await startFlowServer({
      cookies: { keys: ['contract-cookie-key-0123456789'] },
      users: { use: '@grantd/users-static', options: { users: [ALICE] } },
      plugins: ['@grantd/grant-authorization-code', '@grantd/grant-refresh-token', '@grantd/grant-client-credentials', '@grantd/grant-password', '@grantd/acr-tenant', plugin],
      resources: [{ id: API, scopes: ['contract:read'] }],
      clients: [
        { client_id: 'web', client_secret: 'web-secret', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [WEB_REDIRECT], scope: 'openid profile offline_access contract:read' },
        { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials', 'password', 'refresh_token'], scope: 'openid profile offline_access contract:read api' },
      ],
    })
    t.teardown(srv.close)
    const issuer = srv.server.config.issuer!
    const svc = { authorization: basic('svc', 'svc-secret') }
    const post = (form: Record<string, string>, auth = svc) => postForm(`${srv.url}/connect/token`, form, auth)
    const owned = (claims: JWTPayload, expected: Record<string, unknown>, where: string): void => {
      t.match(claims, expected, `${where}: the core's claims are the core's`)
      for (const name of ['iat', 'exp', 'jti']) if (where.startsWith('access')) t.type(claims[name], name === 'jti' ? 'string' : 'number', `${where}: ${name}`)
    }

    const cc = await post({ grant_type: 'client_credentials', scope: 'contract:read api' })
    t.equal(cc.status, 200, `client_credentials: ${cc.text.slice(0, 200)}`)
    owned(decodeJwt(cc.json.access_token as string), { iss: issuer, sub: 'svc', client_id: 'svc', aud: API, scope: 'contract:read api' }, 'access token (client_credentials)')

    const pw = await post({ grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'openid profile offline_access contract:read', resource: API, acr_values: 'tenant:acme' })
    t.equal(pw.status, 200, `password: ${pw.text.slice(0, 200)}`)
    owned(decodeJwt(pw.json.access_token as string), { iss: issuer, sub: 'u-alice', client_id: 'svc', aud: API, scope: 'openid profile offline_access contract:read' }, 'access token (password)')
    owned(decodeJwt(pw.json.id_token as string), { iss: issuer, sub: 'u-alice', aud: 'svc', azp: 'svc' }, 'id token (password)')

    const refreshed = await post({ grant_type: 'refresh_token', refresh_token: pw.json.refresh_token as string, scope: 'openid profile' })
    t.equal(refreshed.status, 200, `refresh_token: ${refreshed.text.slice(0, 200)}`)
    owned(decodeJwt(refreshed.json.access_token as string), { sub: 'u-alice', client_id: 'svc', aud: API, scope: 'openid profile' }, 'access token (refresh_token)')

    const { code, verifier } = await loginForCode(srv, { scope: 'openid profile contract:read' })
    const byCode = await redeem(srv, code, verifier, { auth: { authorization: basic('web', 'web-secret') } })
    t.equal(byCode.status, 200, `authorization_code: ${byCode.text.slice(0, 200)}`)
    owned(decodeJwt(byCode.json.access_token as string), { sub: 'u-alice', client_id: 'web', aud: API, scope: 'openid profile contract:read' }, 'access token (authorization_code)')
    const id = decodeJwt(byCode.json.id_token as string)
    owned(id, { sub: 'u-alice', aud: 'web', azp: 'web' }, 'id token (authorization_code)')
    t.type(id.nonce, 'string', 'id token: the nonce of the request stays')

    const userinfo = await fetch(`${srv.url}/connect/userinfo`, { headers: { authorization: `Bearer ${byCode.json.access_token as string}` } })
    t.equal(userinfo.status, 200, 'userinfo')
    t.equal((await userinfo.json() as { sub?: unknown }).sub, 'u-alice', 'userinfo: sub is the token\'s')
  })
}
