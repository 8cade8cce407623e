/**
 * Shared config for the claims, scopes and resources tests (SPEC §11): three API
 * resources, a user with custom claims, and clients for every built-in grant.
 */
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose'
import { ALICE, baseConfig, WEB_REDIRECT } from '../authorization-code/flow.js'
import { basic, postForm, type RunningServer } from '../helpers/server.js'

export const ORDERS = 'https://api.example.com/orders'
export const BILLING = 'https://billing.example.com/'
export const REPORTS = 'urn:example:reports'

export const ALICE_CLAIMS = { ...ALICE, claims: { ...ALICE.claims, roles: ['admin'], department: 'research' } }

export const SECRETS: Record<string, string> = { web: 'web-secret', svc: 'svc-secret', ro: 'ro-secret', limited: 'limited-secret', web2: 'web2-secret' }

export function resourcesConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const base = baseConfig({
    users: [ALICE_CLAIMS],
    plugins: ['@grantd/grant-authorization-code', '@grantd/grant-refresh-token', '@grantd/grant-client-credentials', '@grantd/grant-password', '@grantd/acr-tenant'],
    clients: [
      { client_id: 'web', client_secret: 'web-secret', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [WEB_REDIRECT], scope: 'openid profile email offline_access orders:read orders:write billing:read reports:read' },
      { client_id: 'web2', client_secret: 'web2-secret', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [WEB_REDIRECT], scope: 'openid profile offline_access orders:read', resources: [ORDERS] },
      { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'orders:read billing:read reports:read api' },
      { client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password', 'refresh_token'], scope: 'openid profile email offline_access orders:read orders:write billing:read api' },
      { client_id: 'limited', client_secret: 'limited-secret', grant_types: ['client_credentials', 'password'], scope: 'orders:read api', resources: [ORDERS] },
      // The orders API itself, as a client that may introspect the tokens meant for it (aud = its client_id).
      { client_id: ORDERS, client_secret: 'orders-api-secret' },
    ],
  })
  return {
    ...base,
    resources: [
      { id: ORDERS, scopes: ['orders:read', 'orders:write'], accessTokenTtl: 120, claims: ['roles'] },
      { id: BILLING, scopes: ['billing:read'], accessTokenTtl: 900 },
      { id: REPORTS, scopes: ['reports:read'] },
    ],
    ...extra,
  }
}

export function token(srv: RunningServer, clientId: string, form: Record<string, string>) {
  return postForm(`${srv.url}/connect/token`, form, { authorization: basic(clientId, SECRETS[clientId]!) })
}

export function password(srv: RunningServer, scope: string, extra: Record<string, string> = {}, clientId = 'ro') {
  return token(srv, clientId, { grant_type: 'password', username: 'alice', password: 'wonderland', scope, ...extra })
}

/** Verify an access token like a resource server: keys from the published JWKS, RFC 9068 typ. */
export async function verifyAccess(srv: RunningServer, accessToken: string): Promise<JWTPayload> {
  const issuer = (srv.server.config.issuer ?? srv.url)
  const { payload } = await jwtVerify(accessToken, createRemoteJWKSet(new URL(`${srv.url}/.well-known/jwks.json`)), { issuer, typ: 'at+jwt' })
  return payload
}

/** The status check's message: the body only when it failed (bodies hold tokens). */
export function said(res: { status: number; text: string }): string {
  return res.status === 200 ? 'status 200' : res.text
}
