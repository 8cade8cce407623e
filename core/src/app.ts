import { createServer as createHttpServer, STATUS_CODES, type Server } from 'node:http'
import cluster from 'node:cluster'
import type { Duplex } from 'node:stream'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import Koa from 'koa'
import Router from '@koa/router'
import { asValue } from 'awilix'
import { parseAcrValues } from './endpoints/acr.js'
import { audit, auditSignIns, clientAuthFailure, markClientAuthFailed, requestIdFor, UserHasher } from './ops/audit.js'
import { ClaimsRelease } from './tokens/claims.js'
import { ClientAuthenticator } from './clients/client-auth.js'
import { clientAuthService } from './clients/client-auth-service.js'
import { browserOrigins, cors } from './http/cors.js'
import { ClientRegistry } from './clients/clients.js'
import { ClientCatalog } from './clients/client-directory.js'
import type { ServerConfig } from './config.js'
import { Discovery } from './endpoints/discovery.js'
import { Drain } from './http/drain.js'
import { ConfigError, OAuthError, StoreUnavailableError } from './errors.js'
import type { GrantServices, HostConfig, Logger, RequestState, RouteContext, UserService } from './interfaces.js'
import { INTROSPECTION_PATH, introspectionEndpoint } from './endpoints/introspection.js'
import { IssuerResolver, ProxyTrust } from './http/issuer.js'
import { checkClientAlgs, KeySet, missingRs256Warning } from './tokens/keys.js'
import { STORE_JWKS_MAX_AGE, StoreKeySource } from './tokens/key-store.js'
import { prepareReload } from './host/reload.js'
import { createLogger } from './ops/logger.js'
import { Metrics, serveMetrics } from './ops/metrics.js'
import { loadPlugins, PluginRegistry } from './host/plugin-loader.js'
import { RefreshFamily } from './tokens/refresh-family.js'
import { scopeOwners } from './tokens/resources.js'
import { throttleSignIns } from './ops/throttle.js'
import { REVOCATION_PATH, revocationEndpoint } from './endpoints/revocation.js'
import { TOKEN_PATHS, tokenEndpoint } from './endpoints/token-endpoint.js'
import { TokenService } from './tokens/tokens.js'
import { USERINFO_PATH, userinfoEndpoint } from './endpoints/userinfo.js'
import { BackChannelLogout } from './sessions/back-channel.js'
import { END_SESSION_PATH, endSessionEndpoint } from './sessions/end-session-endpoint.js'
import { ConsentStore, SessionManager } from './sessions/session-service.js'

export interface GrantdServer {
  readonly app: Koa<RequestState>
  readonly registry: PluginRegistry
  /** The config in use (replaced by a reload). */
  readonly config: ServerConfig
  /** The key set in use (replaced by a reload or a store rotation). */
  readonly keys: KeySet
  readonly log: Logger
  /**
   * Switch to a new config (SIGHUP, SPEC §13): keys, clients, and whatever plugins take in
   * their reload hooks (users-static's users). Everything is prepared first; any error
   * rejects and the running config keeps serving. Settings that need a restart are kept
   * and named in the result.
   */
  reload(next: ServerConfig): Promise<{ restartNeeded: string[] }>
  /** Start listening; resolves with the bound address (port 0 picks a free one). */
  listen(port?: number, host?: string): Promise<{ port: number; host: string; url: string }>
  /** Stop accepting, let in-flight requests finish, run close hooks, close the store. */
  close(options?: { timeoutMs?: number; notificationsMs?: number }): Promise<void>
}

export interface CreateServerOptions {
  /** A pino-compatible logger; default: JSON lines on stdout at `config.log.level`. */
  log?: Logger
  /** Pre-loaded keys (tests); default from `config.keys` or ephemeral. */
  keys?: KeySet
  /** The key lifecycle's clock, ms (tests move it through days of rotation); default Date.now. */
  clock?: () => number
}

/** Used when no user service is configured: nobody can sign in. */
const NO_USERS: UserService = {
  authenticate: async () => undefined,
  authenticateExternal: async () => undefined,
  findById: async () => undefined,
  claims: async () => ({}),
  isActive: async () => false,
}

const READY_TIMEOUT_MS = 2000

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new StoreUnavailableError('store did not answer in time')), ms) }),
  ]).finally(() => clearTimeout(timer))
}

/** Build a grantd server from a validated config: load keys and plugins, wire the routes. */
export async function createServer(config: ServerConfig, options: CreateServerOptions = {}): Promise<GrantdServer> {
  const log = options.log ?? createLogger(config.log.level)
  const trust = new ProxyTrust(config.proxy.trust)
  let current = config
  const clients = new ClientRegistry(config.clients)
  // Config clients plus those registered at run time (RFC 7591), once the store is known.
  const directory = new ClientCatalog(clients, log)
  // Warnings wait for the boot checks: a config that fails to load prints only its one-line error.
  const bootWarnings: Array<() => void> = []

  let keys = options.keys
  if (!keys) {
    if (config.keys) keys = await KeySet.fromFile(config.keys.file)
    else if (config.keyStore) keys = undefined
    else {
      const generated = await KeySet.generate()
      keys = generated
      bootWarnings.push(() => log.warn({ kids: generated.keys.map((k) => k.kid) }, 'no keys configured: using ephemeral ES256 and RS256 keys; tokens will not survive a restart'))
    }
  }
  const fixedKeys = keys
  // Store keys load once the store plugin is up (below); a key file's are checked now.
  if (fixedKeys) checkKeys(fixedKeys)
  function checkKeys(k: KeySet): void {
    // OIDC Core §15.1: a client's algs must have keys; RS256 should always be there for ID tokens.
    checkClientAlgs(config.clients, k)
    const noRs256 = missingRs256Warning(k)
    if (noRs256) bootWarnings.push(() => log.warn({ algs: k.algs }, noRs256))
  }
  let cookieKeys = config.cookies.keys
  if (cookieKeys.length === 0) {
    cookieKeys = [randomBytes(32).toString('base64url')]
    bootWarnings.push(() => log.warn({}, 'no cookies.keys configured: sessions will not survive a restart or span processes'))
  }

  const hostConfig: HostConfig = {
    ...(config.issuer ? { issuer: config.issuer } : {}),
    tokens: config.tokens,
    clients: clients.clients,
    baseDir: config.baseDir,
    cookieKeys,
    scopes: config.scopes,
    resources: config.resources,
    throttleWindowSeconds: config.throttle.windowSeconds,
  }
  const registry = new PluginRegistry()
  registry.container.register({ config: asValue(hostConfig), log: asValue(log), clients: asValue(directory) })
  try {
    await loadPlugins([config.store, ...(config.users ? [config.users] : []), ...config.plugins], hostConfig, log, registry)
    if (!registry.store) throw new ConfigError(`store: "${config.store.use}" did not provide a store (host.store())`)
    // Fastify-style boot check: a client may only name grants that are loaded.
    config.clients.forEach((c, i) => c.grant_types.forEach((g, j) => {
      if (!registry.grants.has(g)) throw new ConfigError(`clients[${i}].grant_types[${j}]: grant type "${g}" is not loaded by any plugin`)
    }))
    // RFC 9449 §5.2: a client that must use DPoP needs the hook that checks it.
    config.clients.forEach((c, i) => {
      if (c.dpop_bound_access_tokens === true && !registry.senderConstraints.loaded.some((h) => h.schemes?.some((s) => s.toLowerCase() === 'dpop'))) {
        throw new ConfigError(`clients[${i}].dpop_bound_access_tokens: needs a DPoP plugin (@grantd/dpop) in plugins`)
      }
    })
    // The user service checks its backend (connection, schema version) before the server listens.
    await registry.users?.start?.()
  } catch (err) {
    // A refused boot still releases what the plugins that did load opened (connections, timers).
    await releasePlugins(registry, log)
    throw err
  }
  const metrics = config.metrics ? new Metrics() : undefined
  const store = metrics ? metrics.instrumentStore(registry.store) : registry.store
  // Plugins resolve 'store' per request: they get the timed one too.
  if (metrics) registry.container.register('store', asValue(store))
  let keySource: StoreKeySource | undefined
  if (!fixedKeys) {
    const settings = config.keyStore!
    const tokenLifetime = () => Math.max(current.tokens.accessTokenTtl, current.tokens.idTokenTtl, ...current.clients.map((c) => c.access_token_ttl ?? 0))
    keySource = new StoreKeySource(store, settings, tokenLifetime, log, options.clock)
    try {
      checkKeys(await keySource.init())
    } catch (err) {
      await releasePlugins(registry, log)
      throw err
    }
  }
  keys = fixedKeys ?? keySource!.current
  directory.attach({ store, keys: () => tokens.keys, grantLoaded: (g) => registry.grants.has(g) })
  if (!registry.users) {
    registry.users = NO_USERS
    registry.register('users', NO_USERS, 'core')
    if (config.clients.some((c) => c.grant_types.some((g) => g !== 'client_credentials'))) bootWarnings.push(() => log.warn({}, 'no users configured: user sign-in always fails'))
  }
  // Brute-force limits wrap whatever user service is configured, for every caller (throttle.ts);
  // registry.users stays the service the plugin provided.
  const throttled = throttleSignIns(registry.users, store, config.throttle)
  // Audit lines (login.*) for every sign-in, outside the throttle so a lock-out is seen as one (audit.ts).
  const audited = auditSignIns(throttled, log, new UserHasher(cookieKeys[0]!))
  const users = metrics ? metrics.instrumentUsers(audited) : audited
  registry.container.register('users', asValue(users))
  for (const warn of bootWarnings) warn()

  const tokens = new TokenService(keys, store, config.tokens)
  /** The one place the server switches key sets: signing, verification, JWKS, discovery. */
  const useKeys = (next: KeySet): void => {
    tokens.useKeys(next)
    discovery.clear()
    log.info({ keys: next.keys.map((k) => `${k.kid}:${k.alg}:${k.status}`) }, 'keys in use')
  }
  const refreshTokens = new RefreshFamily(store, config.tokens)
  refreshTokens.onReuse = (family) => {
    metrics?.refreshReused()
    audit(log, 'refresh.reuse_detected', family)
  }
  registry.container.register({
    tokens: asValue(tokens),
    refreshTokens: asValue(refreshTokens),
    tokenIssuer: asValue(tokens),
    acr: asValue({ parse: (value: string | undefined) => parseAcrValues(value, registry.acr) }),
    // The same array plugins keep appending to: the login page sees every hook, whatever the load order.
    interactions: asValue(registry.interactions),
  })
  const services: GrantServices = { store, users, tokens, refreshTokens, log }
  const claims = new ClaimsRelease(config.scopes, registry.claimsHooks, log)
  // SSO sessions and consent live in the core (SPEC §10): every plugin that signs a browser in or out shares them.
  const revocationTtl = Math.max(config.tokens.refreshTokenTtl, config.tokens.accessTokenTtl, ...config.clients.map((c) => c.access_token_ttl ?? 0),
    ...[...config.resources.values()].map((r) => r.accessTokenTtl ?? 0), 1)
  const backChannel = new BackChannelLogout((input) => tokens.signLogoutToken(input), log, undefined, (client, uri) => directory.refuseTarget(client, uri))
  const sessions = new SessionManager(store, cookieKeys, directory, backChannel, revocationTtl, log)
  const consent = new ConsentStore(store, revocationTtl, config.tokens.refreshTokenTtl, log)
  registry.container.register({ sessions: asValue(sessions), consent: asValue(consent) })

  const issuers = new IssuerResolver(config.issuer, trust)
  const discovery = new Discovery(registry, () => tokens.keys)
  const clientAuth = auditClientAuth(new ClientAuthenticator(directory, store, config.throttle), clients, log)
  registry.container.register('clientAuth', asValue(clientAuthService(clientAuth)))

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
      if (ctx.response.is('html')) {
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

  let drain: Drain | undefined
  let metricsServer: Server | undefined
  let closing: Promise<void> | undefined
  keySource?.start((next) => { if (next !== tokens.keys) useKeys(next) })
  registry.closeHooks.unshift(() => keySource?.stop())
  let reloading: Promise<{ restartNeeded: string[] }> | undefined

  return {
    app,
    registry,
    get config() { return current },
    get keys() { return tokens.keys },
    log,
    reload(next) {
      // One reload at a time: a second SIGHUP waits for the first.
      const run = async () => {
        const prepared = await prepareReload(current, next, {
          registry,
          keys: config.keys && !options.keys ? 'file' : keySource ? 'store' : 'fixed',
          running: tokens.keys,
        })
        const nextKeys = keySource ? ((await keySource.refresh()) ?? tokens.keys) : prepared.keys
        if (nextKeys !== tokens.keys) {
          const noRs256 = missingRs256Warning(nextKeys)
          if (noRs256) log.warn({ algs: nextKeys.algs }, noRs256)
        }
        checkClientAlgs(next.clients, nextKeys)
        // Commit: synchronous from here, so no request sees half of it.
        clients.adopt(prepared.clients)
        configOrigins.clear()
        for (const o of browserOrigins(clients.clients.values())) configOrigins.add(o)
        if (nextKeys !== tokens.keys) useKeys(nextKeys)
        discovery.clear()
        for (const commit of prepared.commits) commit()
        current = prepared.config
        return { restartNeeded: prepared.restartNeeded }
      }
      const result = (reloading ?? Promise.resolve()).catch(() => undefined).then(run)
      reloading = result
      return result
    },
    listen(port = config.port, host = config.host) {
      return new Promise((resolve, reject) => {
        const s = createHttpServer({ requestTimeout: 30_000, headersTimeout: 15_000, maxHeaderSize: 16 * 1024 }, app.callback())
        s.keepAliveTimeout = 5_000
        s.on('clientError', answerUnparseable)
        s.once('error', reject)
        s.listen(port, host, () => {
          s.off('error', reject)
          drain = new Drain(s)
          const addr = s.address() as AddressInfo
          const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
          const bound = { port: addr.port, host: addr.address, url: `http://${shown}:${addr.port}` }
          // Its own listener, never the public port; with --workers the primary serves the sum (workers.ts).
          if (!metrics || !config.metrics || cluster.isWorker) return resolve(bound)
          const reg = metrics.registry
          serveMetrics(config.metrics.port, config.metrics.host, reg.contentType, () => reg.metrics(), log).then(
            (m) => { metricsServer = m.server; resolve(bound) },
            (err: unknown) => { s.close(); reject(err) },
          )
        })
      })
    },
    close({ timeoutMs = (config.shutdown?.timeoutSeconds ?? 10) * 1000, notificationsMs = 2000 } = {}) {
      closing ??= (async () => {
        const m = metricsServer
        if (m) await new Promise<void>((resolve) => { m.close(() => resolve()); m.closeAllConnections() })
        if (drain) await drain.close(timeoutMs, log)
        // Back-channel logouts still retrying get a moment, then are cut (and were logged).
        await backChannel.drain(notificationsMs)
        // Fastify-style: children before parents — plugins close in reverse, the store last.
        await releasePlugins(registry, log)
      })()
      return closing
    },
  }
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

/**
 * Requests Node's HTTP parser refuses (bad framing, control characters in a header,
 * oversize headers) never reach Koa; they still get an OAuth JSON error, not a bare status line.
 */
function answerUnparseable(err: NodeJS.ErrnoException, socket: Duplex): void {
  const response = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage
  if (err.code === 'ECONNRESET' || !socket.writable || response?.headersSent) {
    socket.destroy()
    return
  }
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400
  const body = JSON.stringify({ error: 'invalid_request', error_description: status === 431 ? 'request headers too large' : status === 408 ? 'request timeout' : 'malformed HTTP request' })
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Cache-Control: no-store\r\nPragma: no-cache\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n\r\n${body}`)
}

/** Close hooks in reverse load order, then the store; failures are logged, never thrown. */
async function releasePlugins(registry: PluginRegistry, log: Logger): Promise<void> {
  for (const hook of [...registry.closeHooks].reverse()) {
    try {
      await hook()
    } catch (err) {
      log.error({ err: (err as Error).message }, 'close hook failed')
    }
  }
  try {
    await registry.store?.close()
  } catch (err) {
    log.error({ err: (err as Error).message }, 'store close failed')
  }
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

/**
 * `client.auth_failed` for every refused client authentication (token, introspection,
 * revocation, plugins). The client_id is logged only when it names a registered client: an
 * unknown "id" is attacker text and could be a secret pasted into the wrong field.
 */
function auditClientAuth(clientAuth: ClientAuthenticator, clients: ClientRegistry, log: Logger): ClientAuthenticator {
  const authenticate = clientAuth.authenticate.bind(clientAuth)
  clientAuth.authenticate = async (input) => {
    try {
      return await authenticate(input)
    } catch (err) {
      if (err instanceof OAuthError && err.error === 'invalid_client') {
        const id = claimedClientId(input.authorization, input.params.get('client_id'))
        markClientAuthFailed(err, { ...(id !== undefined && clients.clients.has(id) ? { client_id: id } : {}), error: err.error })
      }
      throw err
    }
  }
  return clientAuth
}

function claimedClientId(authorization: string | undefined, bodyId: string | undefined): string | undefined {
  if (bodyId !== undefined) return bodyId
  if (!authorization || !/^basic /i.test(authorization)) return undefined
  const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  try {
    return decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '))
  } catch {
    return undefined
  }
}
