/** Shared by the registration tests: a server with @grantd/client-registration and helpers to call it. */
import { ALICE, BOB, CookieJar, get, loginForm, pkcePair, post } from '../authorization-code/flow.js'
import { postForm } from '../helpers/server.js'

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

/** A browser signs alice in for a registered client (login, then the consent page unless remembered), and the client redeems the code. */
export async function signInRegistered(base: string, clientId: string, redirect: string, scope = 'openid'): Promise<{ jar: CookieJar; tokens: Record<string, string> }> {
  const jar = new CookieJar()
  const { verifier, challenge } = pkcePair()
  const url = new URL(`${base}/connect/authorize`)
  for (const [k, v] of Object.entries({ response_type: 'code', client_id: clientId, redirect_uri: redirect, scope, state: 'st', code_challenge: challenge, code_challenge_method: 'S256' })) url.searchParams.set(k, v)
  const page = await get(url.href, jar)
  if (page.status !== 200) throw new Error(`expected the login page, got ${page.status} ${page.body.slice(0, 200)}`)
  const form = loginForm(page.body)
  const consent = await post(form.action, { ...form.fields, username: 'alice', password: 'wonderland' }, jar)
  // The consent page, unless alice already allowed this client these scopes.
  const landed = consent.status === 200 ? await post(loginForm(consent.body).action, { ...loginForm(consent.body).fields, decision: 'allow' }, jar) : consent
  const code = landed.location?.searchParams.get('code')
  if (!code) throw new Error(`no code: ${landed.status} ${landed.location?.href ?? landed.body.slice(0, 200)}`)
  const res = await postForm(`${base}/connect/token`, { grant_type: 'authorization_code', code, redirect_uri: redirect, code_verifier: verifier, client_id: clientId })
  if (res.status !== 200) throw new Error(`token request failed: ${res.text}`)
  return { jar, tokens: res.json as Record<string, string> }
}
