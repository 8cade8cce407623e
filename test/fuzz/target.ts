/**
 * The server under fuzz: a quickstart-like config with every plugin the repo ships
 * (and the RFC 8693 example), its endpoints discovered at test time from the discovery
 * document and the plugin registry, and real credentials to mix into hostile requests.
 */
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose'
import { basic, freePort, postForm, startServer, type RunningServer } from '../helpers/server.js'
import { authorizeUrl, CookieJar, get, loginForm, pkcePair, post } from '../authorization-code/flow.js'

export type EndpointKind = 'token' | 'oauth' | 'userinfo' | 'authorize' | 'login' | 'browser' | 'public'

export interface Endpoint {
  path: string
  methods: readonly string[]
  kind: EndpointKind
}

export const WEB_REDIRECT = 'http://127.0.0.1:5000/callback'
export const SPA_REDIRECT = 'http://127.0.0.1:5000/spa'
/** An upstream IdP nobody listens on: federation must fail politely, never with a 5xx. */
export const UPSTREAM = 'http://127.0.0.1:9'
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

/** Users the fuzz hammers (alice) and the one the after-fuzz checks sign in as (bob), so throttling one never blocks the other. */
const USERS = [
  { sub: 'u-alice', username: 'alice', password: 'wonderland', tenant: 'acme', claims: { name: 'Alice <b>', email: 'alice@example.com' } },
  { sub: 'u-bob', username: 'bob', password: 'builder', claims: { name: 'Bob' } },
]

export const SECRETS: Readonly<Record<string, string>> = { web: 'web-secret', svc: 'svc-secret', ro: 'ro-secret', app: 'app-secret' }

export function fuzzConfig(options: { issuer?: string; jwks: Record<string, unknown> }): Record<string, unknown> {
  return {
    ...(options.issuer ? { issuer: options.issuer } : { proxy: { trust: true } }),
    cookies: { keys: ['fuzz-cookie-key-0123456789abcdef'] },
    // Per-address limits would lock 127.0.0.1 out after the fuzz's failed sign-ins; test/security covers them.
    throttle: { maxFailuresPerUser: 20, maxFailuresPerAddress: 0 },
    users: { use: '@grantd/users-static', options: { users: USERS } },
    plugins: [
      '@grantd/grant-authorization-code',
      '@grantd/grant-refresh-token',
      '@grantd/grant-client-credentials',
      '@grantd/grant-password',
      '@grantd/acr-tenant',
      { use: '@grantd/acr-idp', options: { providers: { upstream: { issuer: UPSTREAM, client_id: 'grantd', client_secret: 'upstream-secret' } } } },
      { use: './examples/token-exchange/dist/index.js', options: { audiences: ['gateway', 'orders'], subjectTokens: 'caller' } },
      // RFC 9126: /connect/par joins the fuzzed endpoints through discovery.
      '@grantd/par',
    ],
    clients: [
      { client_id: 'web', client_secret: SECRETS.web, grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [WEB_REDIRECT, 'http://127.0.0.1:5000/other?x=1'],
        scope: 'openid profile email offline_access api', require_pkce: true, identity_providers: ['upstream', 'missing'], client_name: 'Web "<App>"' },
      { client_id: 'spa', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [SPA_REDIRECT], scope: 'openid api offline_access' },
      { client_id: 'svc', client_secret: SECRETS.svc, grant_types: ['client_credentials', TOKEN_EXCHANGE], scope: 'api openid' },
      { client_id: 'ro', client_secret: SECRETS.ro, token_endpoint_auth_method: 'client_secret_post', grant_types: ['password', 'refresh_token'], scope: 'openid profile api offline_access' },
      { client_id: 'app', client_secret: SECRETS.app, grant_types: ['password', TOKEN_EXCHANGE], scope: 'openid profile api' },
      { client_id: 'jwt', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [options.jwks] }, grant_types: ['client_credentials'], scope: 'api' },
    ],
  }
}

export interface Target {
  name: string
  srv: RunningServer
  /** The public base URL (configured, or derived from the Host header). */
  issuer: string
  endpoints: Endpoint[]
  /** Origins + paths a redirect may go to. */
  redirectTargets: string[]
  /** Real values hostile requests mix in so they get past the first checks. */
  known: string[]
  tokens: { client: string; user: string; refresh: string }
  /** A valid login session cookie (`grantd_session=…`) and the login-form cookie name. */
  session: string
  clientKey: CryptoKey
  close(): Promise<void>
}

export async function clientAssertion(key: CryptoKey, issuer: string, claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ jti: crypto.randomUUID(), ...claims })
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer('jwt').setSubject('jwt').setAudience(`${issuer}/connect/token`).setIssuedAt().setExpirationTime('60s')
    .sign(key)
}

/** Endpoints from discovery (so new ones are covered automatically), the core's fixed paths, and every plugin route. */
async function discover(srv: RunningServer, issuer: string): Promise<Endpoint[]> {
  const doc = await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json() as Record<string, unknown>
  const pathOf = (url: unknown): string | undefined => (typeof url === 'string' && url.startsWith(issuer) ? url.slice(issuer.length) || '/' : undefined)
  const byPath = new Map<string, Endpoint>()
  const add = (path: string | undefined, kind: EndpointKind, methods: readonly string[]): void => {
    if (!path) return
    const prior = byPath.get(path)
    byPath.set(path, { path, kind: prior?.kind ?? kind, methods: [...new Set([...(prior?.methods ?? []), ...methods])] })
  }
  add(pathOf(doc.token_endpoint), 'token', ['POST'])
  add('/oauth2/token', 'token', ['POST'])
  add(pathOf(doc.introspection_endpoint), 'oauth', ['POST'])
  add(pathOf(doc.revocation_endpoint), 'oauth', ['POST'])
  add(pathOf(doc.pushed_authorization_request_endpoint), 'oauth', ['POST'])
  add(pathOf(doc.userinfo_endpoint), 'userinfo', ['GET', 'POST'])
  add(pathOf(doc.authorization_endpoint), 'authorize', ['GET'])
  add(pathOf(doc.jwks_uri), 'public', ['GET'])
  add(pathOf(doc.end_session_endpoint), 'browser', ['GET'])
  for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/healthz', '/readyz']) add(path, 'public', ['GET'])
  for (const [key, value] of Object.entries(doc)) {
    if (key.endsWith('_endpoint') && !byPath.has(pathOf(value) ?? '')) add(pathOf(value), 'browser', ['GET', 'POST'])
  }
  for (const route of srv.server.registry.routes) {
    const path = route.path.replace(/:name\b/g, 'upstream').replace(/:[A-Za-z_]+/g, 'x')
    add(path, byPath.get(path)?.kind ?? 'browser', [route.method.toUpperCase()])
  }
  return [...byPath.values()]
}

/** Start one fuzz target: `issuer` configured (the recommended setup) or derived per request behind a trusted proxy. */
export async function startTarget(name: 'configured-issuer' | 'derived-issuer'): Promise<Target> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true })
  const jwk = { ...(await exportJWK(publicKey)), kid: 'fuzz-jwt', alg: 'ES256', use: 'sig' }
  const port = await freePort()
  const issuer = `http://127.0.0.1:${port}`
  const srv = await startServer(fuzzConfig({ ...(name === 'configured-issuer' ? { issuer } : {}), jwks: jwk }), { port })
  const endpoints = await discover(srv, issuer)

  // The login route is wherever the login form posts (discovered, not assumed).
  const jar = new CookieJar()
  const { verifier, challenge } = pkcePair()
  const page = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid offline_access api', state: 's', code_challenge: challenge, code_challenge_method: 'S256' }), jar)
  const form = loginForm(page.body)
  const loginPath = new URL(form.action).pathname
  const login = endpoints.find((e) => e.path === loginPath)
  if (login) login.kind = 'login'
  else endpoints.push({ path: loginPath, kind: 'login', methods: ['POST'] })
  const signedIn = await post(form.action, { ...form.fields, username: 'bob', password: 'builder' }, jar)
  const code = signedIn.location?.searchParams.get('code')
  if (!code) throw new Error(`fuzz setup: code flow failed (${signedIn.status})`)
  const session = jar.cookies.get('grantd_session')
  if (!session) throw new Error('fuzz setup: no session cookie')
  const codeTokens = await postForm(`${srv.url}/connect/token`, { grant_type: 'authorization_code', code, redirect_uri: WEB_REDIRECT, code_verifier: verifier }, { authorization: basic('web', SECRETS.web!) })

  const cc = await postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc', SECRETS.svc!) })
  const pw = await postForm(`${srv.url}/connect/token`, { grant_type: 'password', username: 'bob', password: 'builder', scope: 'openid profile api offline_access', client_id: 'ro', client_secret: SECRETS.ro! })
  if (cc.status !== 200 || pw.status !== 200 || codeTokens.status !== 200) throw new Error(`fuzz setup: token requests failed ${cc.text} ${pw.text} ${codeTokens.text}`)
  const tokens = { client: cc.json.access_token as string, user: pw.json.access_token as string, refresh: pw.json.refresh_token as string }

  const known = [
    'web', 'spa', 'svc', 'ro', 'app', 'jwt', 'unknown-client', ...Object.values(SECRETS),
    'authorization_code', 'client_credentials', 'password', 'refresh_token', TOKEN_EXCHANGE, 'urn:x:unknown',
    'openid', 'api', 'openid profile api offline_access', 'offline_access', 'gateway', 'orders',
    WEB_REDIRECT, SPA_REDIRECT, 'alice', 'wonderland', 'code', 'S256', 'plain', 'none', 'login', 'consent',
    'tenant:acme', 'tenant:globex', 'idp:upstream', 'idp:missing', 'idp:<b>', 'tenant:acme idp:upstream loa:2',
    ACCESS_TOKEN_TYPE, JWT_BEARER_ASSERTION, 'access_token', 'refresh_token',
    tokens.client, tokens.user, tokens.refresh, codeTokens.json.id_token as string, code, verifier,
  ]
  return {
    name, srv, issuer, endpoints, known, tokens, session, clientKey: privateKey,
    redirectTargets: [WEB_REDIRECT, 'http://127.0.0.1:5000/other', SPA_REDIRECT, `${UPSTREAM}/`, `${issuer}/`],
    close: () => srv.close(),
  }
}

/** A fresh login form for the fuzz to post to: its fields and the browser cookie it is bound to. */
export async function freshLogin(target: Target, params: Record<string, string> = {}): Promise<{ fields: Record<string, string>; cookie: string; path: string } | undefined> {
  const jar = new CookieJar()
  const { challenge } = pkcePair()
  const page = await get(authorizeUrl(target.srv, { response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 'st', code_challenge: challenge, code_challenge_method: 'S256', ...params }), jar)
  if (page.status !== 200) return undefined
  const form = loginForm(page.body)
  const cookie = jar.cookies.get('grantd_login')
  if (!cookie) return undefined
  return { fields: form.fields, cookie: `grantd_login=${cookie}`, path: new URL(form.action).pathname }
}
