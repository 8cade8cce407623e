/**
 * Shared setup for the PAR tests (RFC 9126): the code-flow clients of test/authorization-code
 * plus an API resource, with @grantd/par loaded after @grantd/grant-authorization-code.
 */
import * as oauth from 'oauth4webapi'
import { baseConfig, SPA_REDIRECT, WEB_REDIRECT } from '../authorization-code/flow.js'
import { basic, postForm, type RunningServer } from '../helpers/server.js'

export const ORDERS = 'https://api.example.com/orders'
export const insecure = { [oauth.allowInsecureRequests]: true } as const

export function parConfig(options: { par?: Record<string, unknown>; clients?: unknown[]; extra?: Record<string, unknown> } = {}): Record<string, unknown> {
  const base = baseConfig({
    plugins: ['@grantd/grant-authorization-code', '@grantd/grant-refresh-token', '@grantd/grant-client-credentials', '@grantd/acr-tenant', { use: '@grantd/par', options: options.par ?? {} }],
    clients: options.clients ?? [
      { client_id: 'web', client_secret: 'web-secret', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [WEB_REDIRECT, 'http://127.0.0.1:5000/other'], scope: 'openid profile email offline_access api orders:read', require_pkce: true },
      { client_id: 'post', client_secret: 'post-secret', token_endpoint_auth_method: 'client_secret_post', grant_types: ['authorization_code'], redirect_uris: [WEB_REDIRECT], scope: 'openid profile' },
      { client_id: 'spa', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [SPA_REDIRECT], scope: 'openid api offline_access' },
      { client_id: 'other', client_secret: 'other-secret', grant_types: ['authorization_code'], redirect_uris: [WEB_REDIRECT], scope: 'openid profile api' },
      { client_id: 'strict', client_secret: 'strict-secret', grant_types: ['authorization_code'], redirect_uris: [WEB_REDIRECT], scope: 'openid', require_pushed_authorization_requests: true },
      { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' },
    ],
  })
  return { ...base, resources: [{ id: ORDERS, scopes: ['orders:read'] }], ...(options.extra ?? {}) }
}

export const SECRETS: Record<string, string> = { web: 'web-secret', post: 'post-secret', other: 'other-secret', strict: 'strict-secret', svc: 'svc-secret' }

/** A raw push, Basic-authenticated as `clientId` (or with the headers given). */
export function push(srv: RunningServer, clientId: string, form: Record<string, string> | string, headers?: Record<string, string>) {
  return postForm(`${srv.url}/connect/par`, form, headers ?? { authorization: basic(clientId, SECRETS[clientId]!) })
}

/** A valid authorization request of `web`. */
export function webRequest(extra: Record<string, string> = {}): Record<string, string> {
  return {
    response_type: 'code', redirect_uri: WEB_REDIRECT, scope: 'openid profile', state: 'st-1', nonce: 'n-1',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGrSeRW6cM', code_challenge_method: 'S256', ...extra,
  }
}

/** The authorization URL of RFC 9126 §4: client_id and request_uri, plus whatever `extra` sneaks in. */
export function parAuthorizeUrl(srv: RunningServer, clientId: string, requestUri: string, extra: Record<string, string> = {}): string {
  const url = new URL(`${srv.url}/connect/authorize`)
  url.searchParams.set('client_id', clientId)
  url.searchParams.set('request_uri', requestUri)
  for (const [k, v] of Object.entries(extra)) url.searchParams.set(k, v)
  return url.href
}
