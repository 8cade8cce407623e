/**
 * Boot steps of createServer (app.ts): keys, the host config plugins see, plugin loading
 * with its boot checks, the store and its key lifecycle, and the release of what plugins
 * opened when a boot is refused or the server closes.
 */
import { randomBytes } from 'node:crypto'
import { asValue } from 'awilix'
import type { ServerConfig } from '../config.js'
import { ConfigError } from '../errors.js'
import type { HostConfig, Logger, Store } from '../interfaces.js'
import type { ClientRegistry } from '../clients/clients.js'
import type { ClientCatalog } from '../clients/client-directory.js'
import { loadPlugins, PluginRegistry } from '../host/plugin-loader.js'
import { Metrics } from '../ops/metrics.js'
import { checkClientAlgs, KeySet, missingRs256Warning } from '../tokens/keys.js'
import { StoreKeySource } from '../tokens/key-store.js'

/** Warnings wait for the boot checks: a config that fails to load prints only its one-line error. */
export class BootWarnings {
  private readonly pending: Array<() => void> = []
  constructor(private readonly log: Logger) {}

  push(warn: (log: Logger) => void): void {
    this.pending.push(() => warn(this.log))
  }

  flush(): void {
    for (const warn of this.pending) warn()
  }
}

/** OIDC Core §15.1: a client's algs must have keys; RS256 should always be there for ID tokens. */
export function checkKeys(config: ServerConfig, k: KeySet, warnings: BootWarnings): void {
  checkClientAlgs(config.clients, k)
  const noRs256 = missingRs256Warning(k)
  if (noRs256) warnings.push((log) => log.warn({ algs: k.algs }, noRs256))
}

/**
 * Keys that do not come from the store: the embedder's, a key file's (checked now), or
 * ephemeral ones; undefined with a key store (its keys load once the store plugin is up).
 */
export async function loadFixedKeys(config: ServerConfig, given: KeySet | undefined, warnings: BootWarnings): Promise<KeySet | undefined> {
  let keys = given
  if (!keys) {
    if (config.keys) keys = await KeySet.fromFile(config.keys.file)
    else if (config.keyStore) keys = undefined
    else {
      const generated = await KeySet.generate()
      keys = generated
      warnings.push((log) => log.warn({ kids: generated.keys.map((k) => k.kid) }, 'no keys configured: using ephemeral ES256 and RS256 keys; tokens will not survive a restart'))
    }
  }
  if (keys) checkKeys(config, keys, warnings)
  return keys
}

/** The configured cookie keys, or one random key for this process. */
export function loadCookieKeys(config: ServerConfig, warnings: BootWarnings): string[] {
  let cookieKeys = config.cookies.keys
  if (cookieKeys.length === 0) {
    cookieKeys = [randomBytes(32).toString('base64url')]
    warnings.push((log) => log.warn({}, 'no cookies.keys configured: sessions will not survive a restart or span processes'))
  }
  return cookieKeys
}

/** What plugins see of the config (`host.config`). */
export function buildHostConfig(config: ServerConfig, clients: ClientRegistry, cookieKeys: string[]): HostConfig {
  return {
    ...(config.issuer ? { issuer: config.issuer } : {}),
    tokens: config.tokens,
    clients: clients.clients,
    baseDir: config.baseDir,
    cookieKeys,
    scopes: config.scopes,
    resources: config.resources,
    throttleWindowSeconds: config.throttle.windowSeconds,
  }
}

/**
 * Load the store, the user service and the plugins, then the boot checks: a store is
 * provided, every client's grants and DPoP needs are loaded, the user service starts.
 * A refused boot releases what the loaded plugins opened.
 */
export async function loadPluginsAndCheck(config: ServerConfig, hostConfig: HostConfig, log: Logger, directory: ClientCatalog): Promise<PluginRegistry> {
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
  return registry
}

/** Metrics (when configured) and the store every caller uses: timed by the metrics if any. */
export function instrumentStore(config: ServerConfig, registry: PluginRegistry): { metrics: Metrics | undefined; store: Store } {
  const metrics = config.metrics ? new Metrics() : undefined
  const store = metrics ? metrics.instrumentStore(registry.store!) : registry.store!
  // Plugins resolve 'store' per request: they get the timed one too.
  if (metrics) registry.container.register('store', asValue(store))
  return { metrics, store }
}

/**
 * The signing keys: the fixed ones, or the store's (SPEC §13 key lifecycle), loaded and
 * checked now; a refused boot releases the plugins.
 */
export async function loadSigningKeys(
  config: ServerConfig,
  fixedKeys: KeySet | undefined,
  deps: { store: Store; registry: PluginRegistry; log: Logger; warnings: BootWarnings; current: () => ServerConfig; clock: (() => number) | undefined },
): Promise<{ keys: KeySet; keySource: StoreKeySource | undefined }> {
  const { store, registry, log, warnings, current } = deps
  let keySource: StoreKeySource | undefined
  if (!fixedKeys) {
    const settings = config.keyStore!
    const tokenLifetime = () => Math.max(current().tokens.accessTokenTtl, current().tokens.idTokenTtl, ...current().clients.map((c) => c.access_token_ttl ?? 0))
    keySource = new StoreKeySource(store, settings, tokenLifetime, log, deps.clock)
    try {
      checkKeys(config, await keySource.init(), warnings)
    } catch (err) {
      await releasePlugins(registry, log)
      throw err
    }
  }
  return { keys: fixedKeys ?? keySource!.current, keySource }
}

/** Close hooks in reverse load order, then the store; failures are logged, never thrown. */
export async function releasePlugins(registry: PluginRegistry, log: Logger): Promise<void> {
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
