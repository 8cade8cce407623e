/** Shared by the registration tests: a server with @grantd/client-registration and helpers to call it. */
import { ALICE, BOB } from '../authorization-code/flow.js'

export const INITIAL_TOKEN = 'initial-access-token-0123456789'
export const SECOND_TOKEN = 'second-initial-token-abcdefghij'

export function registrationConfig(options: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    issuer: 'http://127.0.0.1:1', // replaced by startFlowServer
    cookies: { keys: ['test-cookie-key-0123456789abcdef'] },
    users: { use: '@grantd/users-static', options: { users: [ALICE, BOB] } },
    plugins: [
      '@grantd/grant-authorization-code', '@grantd/grant-refresh-token', '@grantd/grant-client-credentials',
      { use: '@grantd/client-registration', options: {
        initialAccessToken: [INITIAL_TOKEN, SECOND_TOKEN], allowPrivateNetworkUris: true,
        grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
        scopes: ['openid', 'profile', 'email', 'offline_access', 'api'], maxRegistrationsPerAddress: 1000, ...options,
      } },
    ],
    clients: [
      { client_id: 'web', client_secret: 'web-secret', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: ['http://127.0.0.1:5000/callback'], scope: 'openid profile api' },
      { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' },
    ],
    ...extra,
  }
}

export interface JsonResponse {
  status: number
  headers: Headers
  json: Record<string, unknown>
  text: string
}

export async function call(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<JsonResponse> {
  const res = await fetch(url, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  })
  const text = await res.text()
  let json: Record<string, unknown> = {}
  try { json = JSON.parse(text) as Record<string, unknown> } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, json, text }
}

export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

/** Register with the first initial access token; throws unless 201. */
export async function register(base: string, metadata: Record<string, unknown>, token = INITIAL_TOKEN): Promise<Record<string, unknown>> {
  const res = await call('POST', `${base}/connect/register`, metadata, bearer(token))
  if (res.status !== 201) throw new Error(`registration failed: ${res.status} ${res.text}`)
  return res.json
}
