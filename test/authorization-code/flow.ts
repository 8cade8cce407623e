/**
 * Drives the authorization code flow over HTTP like a browser would: cookies, the login
 * form (its CSRF field parsed from the HTML), one redirect hop at a time. Shared by the
 * tests of the code grant, refresh, introspection, revocation and userinfo.
 */
import { createHash, randomBytes } from 'node:crypto'
import { basic, postForm, startServer, type RunningServer } from '../helpers/server.js'

export const WEB_REDIRECT = 'http://127.0.0.1:5000/callback'
export const SPA_REDIRECT = 'http://127.0.0.1:5000/spa'
export const WEB_AUTH = { authorization: basic('web', 'web-secret') }
export const OTHER_AUTH = { authorization: basic('other', 'other-secret') }

export const ALICE = {
  sub: 'u-alice', username: 'alice', password: 'wonderland', tenant: 'acme',
  claims: { name: 'Alice', email: 'alice@example.com', email_verified: true },
}
export const BOB = { sub: 'u-bob', username: 'bob', password: 'builder', claims: { name: 'Bob' } }

/** SPEC §3's web and spa clients, a second confidential client, and users-static with alice. */
export function baseConfig(overrides: { tokens?: Record<string, unknown>; plugins?: unknown[]; clients?: unknown[]; users?: unknown[] } = {}): Record<string, unknown> {
  return {
    issuer: 'http://127.0.0.1:1', // replaced by startFlowServer with the bound address
    tokens: { codeTtl: 60, ...(overrides.tokens ?? {}) },
    cookies: { keys: ['test-cookie-key-0123456789abcdef'] },
    users: { use: '@grantd/users-static', options: { users: overrides.users ?? [ALICE, BOB] } },
    plugins: overrides.plugins ?? ['@grantd/grant-authorization-code', '@grantd/grant-refresh-token', '@grantd/acr-tenant'],
    clients: overrides.clients ?? [
      { client_id: 'web', client_secret: 'web-secret', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [WEB_REDIRECT, 'http://127.0.0.1:5000/other?x=1'], scope: 'openid profile email offline_access api', require_pkce: true, client_name: 'Web <App>' },
      { client_id: 'spa', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [SPA_REDIRECT], scope: 'openid api offline_access' },
      { client_id: 'other', client_secret: 'other-secret', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [WEB_REDIRECT], scope: 'openid profile api offline_access' },
      { client_id: 'plain', client_secret: 'plain-secret', grant_types: ['authorization_code'], redirect_uris: [WEB_REDIRECT], scope: 'openid', allow_plain_pkce: true },
      { client_id: 'nopkce', client_secret: 'nopkce-secret', grant_types: ['authorization_code'], redirect_uris: [WEB_REDIRECT], scope: 'openid api' },
      { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' },
    ],
  }
}

/**
 * Start grantd with a configured issuer equal to its own address (the port is only known
 * after binding, so bind to a free port chosen first).
 */
export async function startFlowServer(config: Record<string, unknown>): Promise<RunningServer> {
  const { freePort } = await import('../helpers/server.js')
  const port = await freePort()
  const plugins = (config.plugins as unknown[]).map((p) => p)
  if (!plugins.includes('@grantd/grant-client-credentials') && (config.clients as Array<{ grant_types: string[] }>).some((c) => c.grant_types.includes('client_credentials'))) plugins.push('@grantd/grant-client-credentials')
  return startServer({ ...config, plugins, issuer: `http://127.0.0.1:${port}` }, { port })
}

export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

export class CookieJar {
  readonly cookies = new Map<string, string>()
  /** Raw Set-Cookie lines seen, for attribute checks. */
  readonly lines: string[] = []

  take(headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      this.lines.push(line)
      const [pair, ...attrs] = line.split(';')
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq).trim()
      const value = pair!.slice(eq + 1).trim()
      if (value === '' || attrs.some((a) => /^\s*max-age=0\s*$/i.test(a))) this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }

  header(): Record<string, string> {
    return this.cookies.size === 0 ? {} : { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') }
  }
}

export interface Page {
  status: number
  headers: Headers
  body: string
  location?: URL
}

export async function get(url: string, jar?: CookieJar): Promise<Page> {
  const res = await fetch(url, { redirect: 'manual', headers: jar?.header() ?? {} })
  jar?.take(res.headers)
  const location = res.headers.get('location')
  return { status: res.status, headers: res.headers, body: await res.text(), ...(location ? { location: new URL(location, url) } : {}) }
}

export async function post(url: string, form: Record<string, string> | string, jar?: CookieJar): Promise<Page> {
  const body = typeof form === 'string' ? form : new URLSearchParams(form).toString()
  const res = await fetch(url, { method: 'POST', redirect: 'manual', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...(jar?.header() ?? {}) } })
  jar?.take(res.headers)
  const location = res.headers.get('location')
  return { status: res.status, headers: res.headers, body: await res.text(), ...(location ? { location: new URL(location, url) } : {}) }
}

const unescape = (s: string): string => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')

/** The login form of a page: its action and every input's value. */
export function loginForm(html: string): { action: string; fields: Record<string, string> } {
  const form = /<form\b[^>]*\baction="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i.exec(html)
  if (!form) throw new Error(`no form on the page: ${html.slice(0, 400)}`)
  const fields: Record<string, string> = {}
  for (const input of form[2]!.matchAll(/<input\b[^>]*>/gi)) {
    const name = /\bname="([^"]*)"/.exec(input[0])?.[1]
    if (name === undefined) continue
    fields[name] = unescape(/\bvalue="([^"]*)"/.exec(input[0])?.[1] ?? '')
  }
  return { action: unescape(form[1]!), fields }
}

export function authorizeUrl(srv: RunningServer, params: Record<string, string | undefined>): string {
  const url = new URL(`${srv.url}/connect/authorize`)
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v)
  return url.href
}

export interface LoginResult {
  code: string
  landing: URL
  jar: CookieJar
  verifier: string
  loginPage: Page
}

/** authorize → login form → POST credentials → the 302 to the client; returns the code. */
export async function loginForCode(srv: RunningServer, options: {
  client?: string; redirectUri?: string; scope?: string; state?: string; nonce?: string; username?: string; password?: string
  extra?: Record<string, string>; jar?: CookieJar; pkce?: false
} = {}): Promise<LoginResult> {
  const jar = options.jar ?? new CookieJar()
  const { verifier, challenge } = pkcePair()
  const page = await get(authorizeUrl(srv, {
    response_type: 'code',
    client_id: options.client ?? 'web',
    redirect_uri: options.redirectUri ?? (options.client === 'spa' ? SPA_REDIRECT : WEB_REDIRECT),
    scope: options.scope ?? 'openid profile email offline_access api',
    state: options.state ?? 'st-' + randomBytes(6).toString('hex'),
    nonce: options.nonce ?? 'n-' + randomBytes(6).toString('hex'),
    ...(options.pkce === false ? {} : { code_challenge: challenge, code_challenge_method: 'S256' }),
    ...(options.extra ?? {}),
  }), jar)
  if (page.status !== 200) throw new Error(`expected the login page, got ${page.status} ${page.location ?? ''} ${page.body.slice(0, 300)}`)
  const form = loginForm(page.body)
  const res = await post(form.action, { ...form.fields, username: options.username ?? 'alice', password: options.password ?? 'wonderland' }, jar)
  if (res.status !== 302 || !res.location) throw new Error(`expected a redirect to the client, got ${res.status}: ${res.body.slice(0, 300)}`)
  const code = res.location.searchParams.get('code')
  if (!code) throw new Error(`no code in ${res.location.href}`)
  return { code, landing: res.location, jar, verifier, loginPage: page }
}

export async function redeem(srv: RunningServer, code: string, verifier: string | undefined, options: { auth?: Record<string, string>; redirectUri?: string; clientId?: string } = {}) {
  return postForm(`${srv.url}/connect/token`, {
    grant_type: 'authorization_code', code, redirect_uri: options.redirectUri ?? WEB_REDIRECT,
    ...(verifier !== undefined ? { code_verifier: verifier } : {}),
    ...(options.clientId ? { client_id: options.clientId } : {}),
  }, options.auth ?? (options.clientId ? {} : WEB_AUTH))
}

/** A full login for `web` with offline_access: access, refresh and ID tokens. */
export async function webTokens(srv: RunningServer, scope = 'openid profile email offline_access api'): Promise<Record<string, string>> {
  const { code, verifier } = await loginForCode(srv, { scope })
  const res = await redeem(srv, code, verifier)
  if (res.status !== 200) throw new Error(`token request failed: ${res.text}`)
  return res.json as Record<string, string>
}

/** What a user does in a browser: open the authorization URL, sign in, land at the client. */
export async function signInAt(authorizationUrl: string | URL, username = 'alice', password = 'wonderland', jar = new CookieJar()): Promise<URL> {
  const page = await get(String(authorizationUrl), jar)
  if (page.status === 302 && page.location) return page.location
  if (page.status !== 200) throw new Error(`expected the login page, got ${page.status}: ${page.body.slice(0, 300)}`)
  const form = loginForm(page.body)
  const res = await post(form.action, { ...form.fields, username, password }, jar)
  if (res.status !== 302 || !res.location) throw new Error(`expected a redirect, got ${res.status}: ${res.body.slice(0, 300)}`)
  return res.location
}
