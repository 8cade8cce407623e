/**
 * The Koa app of createServer (app.ts): the outer middlewares (metrics, the request log
 * line and error responses, issuer resolution) and the routes: discovery, JWKS, the core's
 * endpoints, health, and the plugins' routes.
 */
import Koa from 'koa'
import Router from '@koa/router'
import type { ServerConfig } from '../config.js'
import { OAuthError, StoreUnavailableError } from '../errors.js'
import type { GrantServices, Logger, RequestState, RouteContext, Store, UserService } from '../interfaces.js'
import type { ClientAuthenticator } from '../clients/client-auth.js'
import type { ClientRegistry } from '../clients/clients.js'
import type { ClientCatalog } from '../clients/client-directory.js'
import type { Discovery } from '../endpoints/discovery.js'
import { INTROSPECTION_PATH, introspectionEndpoint } from '../endpoints/introspection.js'
import { REVOCATION_PATH, revocationEndpoint } from '../endpoints/revocation.js'
import { TOKEN_PATHS, tokenEndpoint } from '../endpoints/token-endpoint.js'
import { USERINFO_PATH, userinfoEndpoint } from '../endpoints/userinfo.js'
import type { PluginRegistry } from '../host/plugin-loader.js'
import { browserOrigins, cors } from '../http/cors.js'
import { IssuerResolver, type ProxyTrust } from '../http/issuer.js'
import { audit, clientAuthFailure, requestIdFor } from '../ops/audit.js'
import type { Metrics } from '../ops/metrics.js'
import { END_SESSION_PATH, endSessionEndpoint } from '../sessions/end-session-endpoint.js'
import type { ConsentStore, SessionManager } from '../sessions/session-service.js'
import type { ClaimsRelease } from '../tokens/claims.js'
import { STORE_JWKS_MAX_AGE, type StoreKeySource } from '../tokens/key-store.js'
import type { RefreshFamily } from '../tokens/refresh-family.js'
import { scopeOwners } from '../tokens/resources.js'
import type { TokenService } from '../tokens/tokens.js'

const READY_TIMEOUT_MS = 2000

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new StoreUnavailableError('store did not answer in time')), ms) }),
  ]).finally(() => clearTimeout(timer))
}

export interface RouteDeps {
  readonly registry: PluginRegistry
  readonly log: Logger
  readonly trust: ProxyTrust
  readonly metrics: Metrics | undefined
  readonly store: Store
  readonly users: UserService
  readonly clients: ClientRegistry
  readonly directory: ClientCatalog
  readonly clientAuth: ClientAuthenticator
  readonly discovery: Discovery
  readonly keySource: StoreKeySource | undefined
  readonly tokens: TokenService
  readonly refreshTokens: RefreshFamily
  readonly services: GrantServices
  readonly claims: ClaimsRelease
  readonly sessions: SessionManager
  readonly consent: ConsentStore
}

/**
 * The Koa app with every middleware and route. `configOrigins` is the CORS allow-list of
 * the config's browser clients, refilled in place by a reload.
 */
export function buildApp(config: ServerConfig, deps: RouteDeps): { app: Koa<RequestState>; configOrigins: Set<string> } {
  const { registry, log, trust, metrics, store, users, clients, directory, clientAuth, discovery, keySource, tokens, refreshTokens, services, claims, sessions, consent } = deps
  const issuers = new IssuerResolver(config.issuer, trust)
  const app = new Koa<RequestState>({ proxy: false })
  app.silent = true
  const router = new Router<RequestState>()

  // Metrics wrap everything, the error handler included: they see the status and error actually sent.
  if (metrics) app.use(metrics.middleware())
  // Outermost: one JSON log line per request, and the only place error responses are written.
  app.use(async (ctx, next) => {
    const started = performance.now()
    // SPEC §13: every request has an id, echoed to the caller and on every line logged for it.
    const requestId = requestIdFor(ctx.req.headers['x-request-id'], trust.enabled && trust.trusts(ctx.req.socket.remoteAddress))
    ctx.state.requestId = requestId
    ctx.set('X-Request-Id', requestId)
    try {
      ctx.set('X-Content-Type-Options', 'nosniff')
      ctx.set('Referrer-Policy', 'no-referrer')
      await next()
      if (ctx.status === 404 && ctx.body === undefined) throw new OAuthError('not_found', 'no such endpoint', { status: 404 })
      if (ctx.status === 405 && ctx.body === undefined) throw new OAuthError('invalid_request', 'method not allowed', { status: 405 })
      // @koa/router answers methods it does not know (SEARCH, PURGE…) with a bare 501: no request earns a 5xx.
      if (ctx.status === 501 && ctx.body === undefined) throw new OAuthError('invalid_request', 'method not allowed', { status: 405 })
      // A page a plugin forgot to lock down still may not run scripts or be framed (clickjacking, RFC 9700 §4.16).
      if (isHtml(ctx.res.getHeader('content-type'))) {
        if (!ctx.response.get('Content-Security-Policy')) ctx.set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        if (!ctx.response.get('X-Frame-Options')) ctx.set('X-Frame-Options', 'DENY')
      }
    } catch (err) {
      const failedClient = clientAuthFailure(err)
      if (failedClient) audit(log, 'client.auth_failed', { ...failedClient, request_id: requestId })
      writeError(ctx, err, log)
    } finally {
      const error = ctx.status >= 400 ? ctx.state.error ?? bodyError(ctx.body) : undefined
      log.info({
        request_id: ctx.state.requestId,
        method: ctx.method,
        path: ctx.path.length > 200 ? `${ctx.path.slice(0, 200)}…` : ctx.path,
        status: ctx.status,
        ms: Math.round((performance.now() - started) * 100) / 100,
        ip: ctx.state.clientIp ?? ctx.req.socket.remoteAddress,
        ...(ctx.state.clientId ? { client_id: ctx.state.clientId } : {}),
        ...(error !== undefined ? { error } : {}),
      }, 'request')
    }
  })
  app.use(async (ctx, next) => {
    const state = issuers.resolve(ctx.req)
    if (!state) throw new OAuthError('invalid_request', 'bad Host or forwarded headers')
    // Node keeps only the first of two Host or Authorization headers. RFC 9112 §3.2 requires a 400 for two Hosts;
    // for two sets of credentials, which one counts would be a guess (RFC 6749 §3.2 spirit).
    const repeated = repeatedSingletonHeader(ctx.req.rawHeaders)
    if (repeated) throw new OAuthError('invalid_request', `${repeated} header is repeated`)
    ctx.state.issuer = state.issuer
    ctx.state.clientIp = state.clientIp
    ctx.state.secure = state.secure
    await next()
  })

  // Without a configured issuer the documents depend on these headers: a shared cache must key on them,
  // or one request with a forged Host poisons everyone's discovery (SPEC §9). Every discovery-like
  // document goes through here.
  const discoveryVary = config.issuer ? undefined : trust.enabled ? 'Host, X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Prefix' : 'Host'
  const discoveryDocument = (ctx: RouteContext): void => {
    ctx.type = 'application/json'
    ctx.set('Cache-Control', 'public, max-age=300')
    if (discoveryVary) ctx.set('Vary', discoveryVary)
    ctx.set('Access-Control-Allow-Origin', '*')
    ctx.body = discovery.json(ctx.state.issuer)
  }
  router.get('/.well-known/openid-configuration', discoveryDocument)
  router.get('/.well-known/oauth-authorization-server', discoveryDocument)
  // Publish-ahead (SPEC §13) only works if caches refresh well within it: store keys are
  // published ≥ 1 day before they sign, so an hour; a key file's `next` key waits for the
  // operator, who promotes it after this max-age (docs/keys.md).
  const jwksCacheControl = `public, max-age=${keySource ? STORE_JWKS_MAX_AGE : 300}`
  router.get('/.well-known/jwks.json', (ctx) => {
    ctx.type = 'application/jwk-set+json'
    ctx.set('Cache-Control', jwksCacheControl)
    ctx.set('Access-Control-Allow-Origin', '*')
    ctx.body = tokens.keys.jwksJson
  })
  const token = tokenEndpoint({
    registry, clientAuth, tokens, refreshTokens, settings: config.tokens, services: () => services, users: () => users,
    claims, resources: config.resources, scopeOwners: scopeOwners(config.resources), sessions, consent, senderConstraints: registry.senderConstraints, log,
  })
  // Browser-based clients (the `spa` kind) call these endpoints themselves: CORS for their origins.
  // Refilled in place by a reload: the CORS middlewares keep this Set; registered clients' origins come from the directory.
  const configOrigins = new Set(browserOrigins(clients.clients.values()))
  const origins = { has: (origin: string) => configOrigins.has(origin) || directory.originAllowed(origin) }
  const postCors = cors(origins, 'POST')
  for (const path of TOKEN_PATHS) {
    router.options(path, postCors)
    router.post(path, postCors, token)
  }
  router.post(INTROSPECTION_PATH, introspectionEndpoint({ clientAuth, tokens, refreshTokens, clients: directory, senderConstraints: registry.senderConstraints }))
  router.options(REVOCATION_PATH, postCors)
  router.post(REVOCATION_PATH, postCors, revocationEndpoint({ clientAuth, tokens, refreshTokens }))
  const userinfo = userinfoEndpoint({ tokens, users: () => users, claims, clients: directory, senderConstraints: registry.senderConstraints })
  const userinfoCors = cors(origins, 'GET, POST')
  router.options(USERINFO_PATH, userinfoCors)
  router.get(USERINFO_PATH, userinfoCors, userinfo)
  router.post(USERINFO_PATH, userinfoCors, userinfo)
  const endSession = endSessionEndpoint({ sessions, tokens, clients: directory, log })
  router.get(END_SESSION_PATH, endSession)
  router.post(END_SESSION_PATH, endSession)
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store')
    ctx.body = { status: 'ok' }
  })
  router.get('/readyz', async (ctx) => {
    ctx.set('Cache-Control', 'no-store')
    try {
      await withTimeout(store.ping(), READY_TIMEOUT_MS)
      // A user service with a backend of its own (a database) is part of readiness too.
      const usersPing = registry.users?.ping
      if (usersPing) await withTimeout(usersPing.call(registry.users), READY_TIMEOUT_MS)
      ctx.body = { status: 'ready', store: store.name }
    } catch {
      ctx.status = 503
      ctx.body = { status: 'unavailable', store: store.name }
    }
  })
  for (const route of registry.routes) router[route.method](route.path, (ctx: RouteContext) => route.handler(ctx))

  app.use(router.routes())
  app.use(router.allowedMethods())
  return { app, configOrigins }
}

/** Whether a response's Content-Type is HTML (what `ctx.response.is('html')` answers, without type-is's parse on every response). */
function isHtml(contentType: number | string | string[] | undefined): boolean {
  if (typeof contentType !== 'string' || contentType.length < 9) return false
  if (contentType.slice(0, 9).toLowerCase() !== 'text/html') return false
  const next = contentType.charCodeAt(9)
  // End of the header, `;` before parameters, or whitespace.
  return Number.isNaN(next) || next === 0x3b || next === 0x20 || next === 0x09
}

/** `Host` or `Authorization` when the request has two of it; a plain scan (headersDistinct builds an object per request). */
function repeatedSingletonHeader(raw: readonly string[]): string | undefined {
  let host = 0
  let authorization = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (name.length === 4 && name.toLowerCase() === 'host') host++
    else if (name.length === 13 && name.toLowerCase() === 'authorization') authorization++
  }
  return host > 1 ? 'Host' : authorization > 1 ? 'Authorization' : undefined
}

function writeError(ctx: Koa.ParameterizedContext<RequestState>, err: unknown, log: Logger): void {
  let oauth: OAuthError
  if (err instanceof OAuthError) oauth = err
  else if (err instanceof StoreUnavailableError) {
    log.warn({ err: err.message, path: ctx.path, request_id: ctx.state.requestId }, 'store unavailable')
    oauth = new OAuthError('temporarily_unavailable', 'the service is temporarily unavailable, try again later', { status: 503 })
    ctx.set('Retry-After', '5')
  } else {
    // Anything else is a bug or a plugin failure: log it, answer without detail.
    log.error({ err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err), path: ctx.path, request_id: ctx.state.requestId }, 'unhandled error')
    oauth = new OAuthError('server_error', 'internal error', { status: 500 })
  }
  if (oauth.detail) log.debug({ error: oauth.error, detail: oauth.detail, path: ctx.path, request_id: ctx.state.requestId }, 'request refused')
  ctx.state.error = oauth.error
  ctx.status = oauth.status
  ctx.set('Cache-Control', 'no-store')
  ctx.set('Pragma', 'no-cache')
  for (const [k, v] of Object.entries(oauth.headers)) ctx.set(k, v)
  ctx.type = 'application/json'
  ctx.body = oauth.toJSON()
}

/** The `error` member of a JSON error body a route wrote itself (not thrown). */
function bodyError(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || Buffer.isBuffer(body)) return undefined
  const error = (body as { error?: unknown }).error
  return typeof error === 'string' && error.length <= 64 ? error : undefined
}
