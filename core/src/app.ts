import type Koa from 'koa'
import type { ServerConfig } from './config.js'
import type { Logger, RequestState } from './interfaces.js'
import { ClientRegistry } from './clients/clients.js'
import { ClientCatalog } from './clients/client-directory.js'
import { Discovery } from './endpoints/discovery.js'
import type { PluginRegistry } from './host/plugin-loader.js'
import { ProxyTrust } from './http/issuer.js'
import { createLogger } from './ops/logger.js'
import type { KeySet } from './tokens/keys.js'
import { BootWarnings, buildHostConfig, instrumentStore, loadCookieKeys, loadFixedKeys, loadPluginsAndCheck, loadSigningKeys } from './server/boot.js'
import { buildClientAuth, buildTokenServices, wrapUsers } from './server/services.js'
import { buildApp } from './server/routes.js'
import { type LiveConfig, serverHandle } from './server/lifecycle.js'

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

/**
 * Build a grantd server from a validated config: load keys and plugins, wire the routes.
 * The composition root: each step lives in server/ (boot, services, routes, lifecycle).
 */
export async function createServer(config: ServerConfig, options: CreateServerOptions = {}): Promise<GrantdServer> {
  const log = options.log ?? createLogger(config.log.level)
  const trust = new ProxyTrust(config.proxy.trust)
  const live: LiveConfig = { config }
  const clients = new ClientRegistry(config.clients)
  // Config clients plus those registered at run time (RFC 7591), once the store is known.
  const directory = new ClientCatalog(clients, log)
  // Warnings wait for the boot checks: a config that fails to load prints only its one-line error.
  const warnings = new BootWarnings(log)

  // 1. Keys: a key file's or ephemeral ones now (a key store's once the store is up), cookie keys.
  const fixedKeys = await loadFixedKeys(config, options.keys, warnings)
  const cookieKeys = loadCookieKeys(config, warnings)

  // 2. Host config, then plugins and the boot checks.
  const hostConfig = buildHostConfig(config, clients, cookieKeys)
  const registry = await loadPluginsAndCheck(config, hostConfig, log, directory)

  // 3. Store (timed by the metrics), signing keys, the client directory on the store.
  const { metrics, store } = instrumentStore(config, registry)
  const { keys, keySource } = await loadSigningKeys(config, fixedKeys, { store, registry, log, warnings, current: () => live.config, clock: options.clock })
  directory.attach({ store, keys: () => tokens.keys, grantLoaded: (g) => registry.grants.has(g) })

  // 4. The user service every caller sees (throttle, audit, metrics); the boot checks passed.
  const users = wrapUsers(config, { registry, store, metrics, log, cookieKeys, warnings })
  warnings.flush()

  // 5. Token service, refresh families, claims, sessions and consent; client authentication.
  const { tokens, refreshTokens, services, claims, backChannel, sessions, consent } =
    buildTokenServices(config, { keys, store, users, registry, directory, metrics, log, cookieKeys })
  const discovery = new Discovery(registry, () => tokens.keys)
  /** The one place the server switches key sets: signing, verification, JWKS, discovery. */
  const useKeys = (next: KeySet): void => {
    tokens.useKeys(next)
    discovery.clear()
    log.info({ keys: next.keys.map((k) => `${k.kid}:${k.alg}:${k.status}`) }, 'keys in use')
  }
  const clientAuth = buildClientAuth(config, { directory, store, clients, registry, log })

  // 6. Routes: middlewares, discovery, JWKS, the core's endpoints, health, plugin routes.
  const { app, configOrigins } = buildApp(config, {
    registry, log, trust, metrics, store, users, clients, directory, clientAuth, discovery, keySource,
    tokens, refreshTokens, services, claims, sessions, consent,
  })

  // 7. Key rotation from the store, then the handle: listen, close, reload.
  keySource?.start((next) => { if (next !== tokens.keys) useKeys(next) })
  registry.closeHooks.unshift(() => keySource?.stop())
  return serverHandle(config, { app, registry, log, live, options, clients, configOrigins, discovery, tokens, useKeys, keySource, metrics, backChannel })
}
