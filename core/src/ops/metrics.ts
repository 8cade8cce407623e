import cluster from 'node:cluster'
import { createServer as createHttpServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Middleware } from 'koa'
import { AggregatorRegistry, collectDefaultMetrics, Counter, Histogram, Registry, type CounterConfiguration } from 'prom-client'
import type { Logger, RequestState, Store, UserService } from '../interfaces.js'
import { isSignInThrottled } from './throttle.js'
import { TOKEN_PATHS } from '../endpoints/token-endpoint.js'

/** Seconds; requests of an identity server are mostly a few ms (a password hash is the slow one). */
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2]

/** The Store methods a store may lack (the core then falls back); keyed by the type, so a new one cannot be forgotten here. */
type OptionalStoreMethod = { [K in keyof Store]-?: object extends Pick<Store, K> ? K : never }[keyof Store]
const OPTIONAL_STORE_METHOD_SET: Record<OptionalStoreMethod, true> = { rotate: true, indexUpdate: true }
const OPTIONAL_STORE_METHODS = Object.keys(OPTIONAL_STORE_METHOD_SET) as OptionalStoreMethod[]

/** A counter or histogram child per label set, cached: prom-client hashes the labels on every call otherwise. */
class Children<T> {
  private readonly cache = new Map<string, T>()
  constructor(private readonly make: (...values: string[]) => T) {}
  get(...values: string[]): T {
    const key = values.join('\u0000')
    let child = this.cache.get(key)
    if (!child) {
      child = this.make(...values)
      this.cache.set(key, child)
    }
    return child
  }
}

interface Inc { inc(value?: number): void }
interface Observe { observe(value: number): void }

/**
 * grantd's Prometheus metrics (SPEC §13), on a registry of their own (several servers may
 * share a process in tests). Endpoints stay unaware of them: the HTTP middleware, the store
 * decorator and the user-service decorator below feed them.
 */
export class Metrics {
  readonly registry = new Registry()
  private readonly tokensIssued: Children<Inc>
  private readonly tokenErrors: Children<Inc>
  private readonly logins: Children<Inc>
  private readonly refreshReuse: Counter
  private readonly http: Children<Observe>
  private readonly storeErrors: Children<Inc>
  private readonly storeDuration: Children<Observe>

  constructor() {
    const counter = <L extends string>(config: CounterConfiguration<L>): Counter<L> => new Counter({ ...config, registers: [this.registry] })
    const issued = counter({ name: 'grantd_tokens_issued_total', help: 'Successful token responses', labelNames: ['grant_type', 'client_id'] })
    this.tokensIssued = new Children((grantType, clientId) => issued.labels(grantType!, clientId!))
    const errors = counter({ name: 'grantd_token_errors_total', help: 'Token endpoint error responses, by OAuth error code', labelNames: ['error'] })
    this.tokenErrors = new Children((error) => errors.labels(error!))
    const logins = counter({ name: 'grantd_logins_total', help: 'Password sign-ins (login form and password grant)', labelNames: ['result'] })
    this.logins = new Children((result) => logins.labels(result!))
    this.refreshReuse = counter({ name: 'grantd_refresh_reuse_total', help: 'Refresh tokens presented again after rotation (the family was revoked)' })
    const http = new Histogram({
      name: 'grantd_http_request_duration_seconds', help: 'HTTP requests by matched route pattern', labelNames: ['route', 'method', 'status'],
      buckets: HTTP_BUCKETS, registers: [this.registry],
    })
    this.http = new Children((route, method, status) => http.labels(route!, method!, status!))
    const storeErrors = counter({ name: 'grantd_store_errors_total', help: 'Store calls that failed', labelNames: ['operation'] })
    this.storeErrors = new Children((op) => storeErrors.labels(op!))
    const storeDuration = new Histogram({
      name: 'grantd_store_duration_seconds', help: 'Store call duration', labelNames: ['operation'], buckets: STORE_BUCKETS, registers: [this.registry],
    })
    this.storeDuration = new Children((op) => storeDuration.labels(op!))
    collectDefaultMetrics({ register: this.registry })
    // A worker answers the primary's scrape requests (prom-client cluster aggregation).
    if (cluster.isWorker) {
      AggregatorRegistry.setRegistries([this.registry])
      new AggregatorRegistry()
    }
  }

  /** Outermost Koa middleware: sees the final status and body, after the error handler wrote them. */
  middleware(): Middleware<RequestState> {
    const tokenPaths = new Set<string>(TOKEN_PATHS)
    return async (ctx, next) => {
      const started = performance.now()
      try {
        await next()
      } finally {
        const status = ctx.status
        // Route patterns only (a raw path would make a series per token or typo): unmatched requests share one.
        const route = (ctx as { _matchedRoute?: unknown })._matchedRoute
        this.http.get(typeof route === 'string' ? route : '(unmatched)', ctx.method, String(status)).observe((performance.now() - started) / 1000)
        if (ctx.method === 'POST' && tokenPaths.has(ctx.path)) {
          if (status === 200) this.tokensIssued.get(ctx.state.grantType ?? '(unknown)', ctx.state.clientId ?? '(unknown)').inc()
          else {
            const error = (ctx.body as { error?: unknown } | undefined)?.error
            this.tokenErrors.get(typeof error === 'string' ? error : 'server_error').inc()
          }
        }
      }
    }
  }

  /** Refresh-token reuse detection calls this (refresh-family.ts). */
  refreshReused(): void {
    this.refreshReuse.inc()
  }

  /** The user service with every password sign-in counted: success, failure, or locked (throttled). */
  instrumentUsers(users: UserService): UserService {
    const logins = this.logins
    return {
      ...bindAll(users),
      async authenticate(login) {
        try {
          const user = await users.authenticate(login)
          logins.get(user ? 'success' : 'failure').inc()
          return user
        } catch (err) {
          logins.get(isSignInThrottled(err) ? 'locked' : 'failure').inc()
          throw err
        }
      },
    }
  }

  /** The store with each call timed and each failure counted. */
  instrumentStore(store: Store): Store {
    const time = <A extends unknown[], R>(op: string, fn: (...args: A) => Promise<R>) => {
      const duration = this.storeDuration.get(op)
      const errors = this.storeErrors.get(op)
      // Exported from the start at 0, so rate() sees the first failure.
      errors.inc(0)
      return async (...args: A): Promise<R> => {
        const started = performance.now()
        try {
          return await fn.apply(store, args)
        } catch (err) {
          errors.inc()
          throw err
        } finally {
          duration.observe((performance.now() - started) / 1000)
        }
      }
    }
    const instrumented: Store = {
      name: store.name,
      put: time('put', store.put),
      add: time('add', store.add),
      get: time('get', store.get),
      consume: time('consume', store.consume),
      delete: time('delete', store.delete),
      increment: time('increment', store.increment),
      decrement: time('decrement', store.decrement),
      revokeFamily: time('revokeFamily', store.revokeFamily),
      isFamilyRevoked: time('isFamilyRevoked', store.isFamilyRevoked),
      ping: time('ping', store.ping),
      close: () => store.close(),
    }
    // Optional methods stay absent when the store lacks them (the core then falls back).
    // Every optional method must pass through: a process that lost `indexUpdate` would fall back to the
    // locked path for the same keys other processes update with the store's own atomic operation.
    for (const name of OPTIONAL_STORE_METHODS) {
      const method = store[name] as ((...args: unknown[]) => Promise<unknown>) | undefined
      if (method) (instrumented as Record<OptionalStoreMethod, unknown>)[name] = time(name, method)
    }
    return instrumented
  }
}

/** The service's own methods, bound (a decorator must not lose `this`). */
function bindAll(users: UserService): UserService {
  const out: UserService = {
    authenticate: (login) => users.authenticate(login),
    authenticateExternal: (login) => users.authenticateExternal(login),
    findById: (sub, context) => users.findById(sub, context),
    claims: (user, scopes) => users.claims(user, scopes),
    isActive: (sub, context) => users.isActive(sub, context),
  }
  if (users.acceptsPasswordIdp) out.acceptsPasswordIdp = (idp, client) => users.acceptsPasswordIdp!(idp, client)
  if (users.ping) out.ping = () => users.ping!()
  if (users.resolveAccount) out.resolveAccount = (login) => users.resolveAccount!(login)
  return out
}

/**
 * The metrics listener: GET /metrics on its own port, never on the public one. `text`
 * is this process's registry, or (the primary of `--workers`) the sum over the workers.
 */
export function serveMetrics(port: number, host: string, contentType: string, text: () => Promise<string>, log: Logger): Promise<{ server: Server; url: string }> {
  return new Promise((resolve, reject) => {
    const server = createHttpServer((req, res) => {
      const path = (req.url ?? '').split('?')[0]
      if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: metrics are at GET /metrics\n')
        return
      }
      text().then(
        (body) => res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : body),
        (err: unknown) => {
          log.warn({ err: err instanceof Error ? err.message : String(err) }, 'metrics scrape failed')
          res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics unavailable\n')
        },
      )
    })
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      const addr = server.address() as AddressInfo
      const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
      const url = `http://${shown}:${addr.port}/metrics`
      log.info({ url }, 'metrics listening')
      resolve({ server, url })
    })
  })
}

/** The primary of `--workers`: one scrape answers the sum of every worker's metrics. */
export function serveClusterMetrics(port: number, host: string, log: Logger): Promise<{ server: Server; url: string }> {
  const aggregator = new AggregatorRegistry()
  return serveMetrics(port, host, aggregator.contentType, () => aggregator.clusterMetrics(), log)
}
