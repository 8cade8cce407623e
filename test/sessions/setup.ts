/** Shared config and helpers of the session, logout and consent tests (SPEC §10). */
import { baseConfig, CookieJar, get, loginForCode, redeem, WEB_REDIRECT, type LoginResult } from '../authorization-code/flow.js'
import type { RunningServer } from '../helpers/server.js'

export const LOGGED_OUT = 'http://127.0.0.1:5000/logged-out'
export const THIRD_REDIRECT = 'http://127.0.0.1:5000/third'

export function sessionConfig(extra: { web?: Record<string, unknown>; clients?: Array<Record<string, unknown>>; store?: unknown } = {}): Record<string, unknown> {
  const config = baseConfig({ plugins: ['@grantd/grant-authorization-code', '@grantd/grant-refresh-token', './test/sessions/session-plugin.ts'] })
  const clients = config.clients as Array<Record<string, unknown>>
  clients[0] = { ...clients[0], post_logout_redirect_uris: [LOGGED_OUT], grant_types: ['authorization_code', 'refresh_token', 'urn:test:session-grant'], ...(extra.web ?? {}) }
  clients.push({
    client_id: 'third', client_secret: 'third-secret', client_name: 'Third <Party>', require_consent: true,
    grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [THIRD_REDIRECT], scope: 'openid profile email api offline_access',
  })
  clients.push(...(extra.clients ?? []))
  return { ...config, ...(extra.store ? { store: extra.store } : {}) }
}

export function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>
}

/** Sign alice in for `web` and redeem the code. */
export async function signedInWeb(srv: RunningServer, scope = 'openid profile offline_access api', jar = new CookieJar()): Promise<{ jar: CookieJar; tokens: Record<string, string>; login: LoginResult }> {
  const login = await loginForCode(srv, { scope, jar })
  const res = await redeem(srv, login.code, login.verifier)
  if (res.status !== 200) throw new Error(`token request failed: ${res.text}`)
  return { jar, tokens: res.json as Record<string, string>, login }
}

export function endSessionUrl(srv: RunningServer, params: Record<string, string>): string {
  const url = new URL(`${srv.url}/connect/endsession`)
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v)
  return url.href
}

/** Whether the browser is still signed in: an authorize request answered without a login form. */
export async function silentlyAuthorized(srv: RunningServer, jar: CookieJar, client = 'nopkce'): Promise<boolean> {
  const url = new URL(`${srv.url}/connect/authorize`)
  for (const [k, v] of Object.entries({ response_type: 'code', client_id: client, redirect_uri: WEB_REDIRECT, scope: 'openid', state: 's', prompt: 'none' })) url.searchParams.set(k, v)
  const page = await get(url.href, jar)
  if (page.status !== 302 || !page.location) throw new Error(`unexpected ${page.status}`)
  return page.location.searchParams.has('code')
}
