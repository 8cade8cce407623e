import { normalizeClient, type ClientRegistry, type RegisteredClient } from './clients.js'
import { validateClientConfig, type ClientConfig } from '../config.js'
import { ConfigError, OAuthError } from '../errors.js'
import type { Client, ClientDirectory, JsonObject, Logger, Store, StoredClientRecord } from '../interfaces.js'
import { checkClientAlgs, type KeySet } from '../tokens/keys.js'
import { nonPublicTarget } from './network-guard.js'
import { StoredList } from '../sessions/stored-list.js'
import { secretKey } from '../tokens/tokens.js'

/** How long a process serves a stored client (or its absence) before asking the store again. */
export const STORED_CLIENT_CACHE_SECONDS = 5
const CACHE_MAX_ENTRIES = 10_000
/** Stored clients live until deleted; the store API wants a TTL. */
const STORED_CLIENT_TTL = 10 * 365 * 86400
const storeKey = (clientId: string): string => `client:${clientId}`
/** Which stored clients redirect to an origin (CORS for browser-based clients, cors.ts). */
const originKey = (origin: string): string => `client-origins:${secretKey(origin)}`

interface CacheEntry {
  readonly entry: RegisteredClient | undefined
  readonly until: number
}

/** What the boot checks of config clients need, known once the plugins are loaded. */
export interface ClientChecks {
  readonly store: Store
  /** The signing keys now (a reload or a store rotation may change them). */
  readonly keys: () => KeySet
  readonly grantLoaded: (grantType: string) => boolean
}

/** RFC 7591 §3.2.2: a redirect URI problem has its own error code. */
function metadataError(err: ConfigError): OAuthError {
  const message = err.message.replace(/^(?:client|clients\[\d+\])\./, '')
  return new OAuthError(message.startsWith('redirect_uris') ? 'invalid_redirect_uri' : 'invalid_client_metadata', message)
}

/**
 * The host's {@link ClientDirectory}: config clients from memory (synchronous, as fast as
 * before), run-time clients from the store behind a short per-process cache. A stored
 * client goes through the very validation and normalisation of a config client each time it
 * is loaded, so a config change (a grant no longer loaded, a key removed) cannot leave a
 * stored client more privileged than a config one could be.
 */
export class ClientCatalog implements ClientDirectory {
  readonly cacheSeconds = STORED_CLIENT_CACHE_SECONDS
  private checks: ClientChecks | undefined
  private privateNetworkUris = false
  private readonly cache = new Map<string, CacheEntry>()
  private readonly loading = new Map<string, Promise<RegisteredClient | undefined>>()
  private readonly origins = new Map<string, { readonly allowed: Promise<boolean>; readonly until: number }>()

  constructor(private readonly config: ClientRegistry, private readonly log: Logger) {}

  /** Checked instead of a secret when there is none to check (unknown client): as costly as `hashSecret`'s hashes. */
  get decoy(): ClientRegistry['decoy'] {
    return this.config.decoy
  }

  /** Called once the store and the grants are known; before that only config clients exist. */
  attach(checks: ClientChecks): void {
    this.checks = checks
  }

  /** A client and its credentials: config clients synchronously, stored ones through the cache. */
  lookup(clientId: string): RegisteredClient | undefined | Promise<RegisteredClient | undefined> {
    const configured = this.config.get(clientId)
    if (configured || !this.checks) return configured
    const hit = this.cache.get(clientId)
    if (hit && hit.until > Date.now()) return hit.entry
    let pending = this.loading.get(clientId)
    if (!pending) {
      const loaded = this.load(clientId)
      pending = loaded
      this.loading.set(clientId, loaded)
      void loaded.then((entry) => {
        if (this.loading.get(clientId) !== loaded) return
        this.loading.delete(clientId)
        if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.clear()
        this.cache.set(clientId, { entry, until: Date.now() + this.cacheSeconds * 1000 })
      }, () => { if (this.loading.get(clientId) === loaded) this.loading.delete(clientId) })
    }
    return pending
  }

  async find(clientId: string): Promise<Client | undefined> {
    return (await this.lookup(clientId))?.client
  }

  isConfigured(clientId: string): boolean {
    return this.config.get(clientId) !== undefined
  }

  allowPrivateNetworkUris(allowed: boolean): void {
    this.privateNetworkUris = allowed
  }

  async read(clientId: string): Promise<StoredClientRecord | undefined> {
    if (this.isConfigured(clientId) || !this.checks) return undefined
    const raw = await this.checks.store.get(storeKey(clientId))
    if (raw === undefined) return undefined
    try {
      const parsed = JSON.parse(raw) as { metadata?: unknown; registration?: unknown }
      if (!isObject(parsed.metadata) || !isObject(parsed.registration)) throw new Error('record is not { metadata, registration }')
      return { metadata: parsed.metadata, registration: parsed.registration }
    } catch (err) {
      this.log.error({ client_id: clientId, err: (err as Error).message }, 'stored client is unreadable: treated as absent')
      return undefined
    }
  }

  async save(clientId: string, metadata: JsonObject, registration: JsonObject): Promise<Client> {
    const checks = this.requireChecks()
    if (this.isConfigured(clientId)) throw new OAuthError('invalid_client_metadata', `client_id ${clientId} belongs to a configured client`)
    const registered = this.validate(clientId, metadata)
    if (registered.client.backchannel_logout_uri !== undefined && !this.privateNetworkUris) {
      const reason = await nonPublicTarget(registered.client.backchannel_logout_uri)
      if (reason) throw new OAuthError('invalid_client_metadata', `backchannel_logout_uri: ${reason}`)
    }
    const { client_id: _ignored, ...rest } = metadata
    const before = await this.read(clientId)
    await checks.store.put(storeKey(clientId), JSON.stringify({ metadata: rest, registration }), STORED_CLIENT_TTL)
    this.forget(clientId)
    const lists = new StoredList(checks.store)
    const now = originsOf(registered.client.redirect_uris)
    for (const origin of now) {
      await lists.add(originKey(origin), { id: clientId, exp: Math.floor(Date.now() / 1000) + STORED_CLIENT_TTL })
      this.origins.delete(origin)
    }
    for (const origin of originsOf(redirectUrisOf(before))) if (!now.has(origin)) await this.dropOrigin(lists, origin, clientId)
    return registered.client
  }

  async remove(clientId: string): Promise<boolean> {
    if (this.isConfigured(clientId) || !this.checks) return false
    const before = await this.read(clientId)
    const removed = await this.checks.store.delete(storeKey(clientId))
    this.forget(clientId)
    const lists = new StoredList(this.checks.store)
    for (const origin of originsOf(redirectUrisOf(before))) await this.dropOrigin(lists, origin, clientId)
    return removed
  }

  /**
   * Back-channel URIs of stored clients are checked again right before each call: a name
   * may have been pointed at a private address since it was registered.
   */
  async refuseTarget(client: Client, uri: string): Promise<string | undefined> {
    if (!client.dynamic || this.privateNetworkUris) return undefined
    return nonPublicTarget(uri)
  }

  /**
   * Whether a stored client redirects to `origin` (CORS for browser-based clients it registered,
   * cors.ts): the origin's index names candidates, each is checked against its current
   * redirect URIs; cached like clients.
   */
  originAllowed(origin: string): boolean | Promise<boolean> {
    if (!this.checks) return false
    const hit = this.origins.get(origin)
    if (hit && hit.until > Date.now()) return hit.allowed
    const store = this.checks.store
    const allowed = (async () => {
      for (const member of await new StoredList(store).read(originKey(origin))) {
        const client = await this.find(member.id)
        if (client?.dynamic && originsOf(client.redirect_uris).has(origin)) return true
      }
      return false
    })()
    if (this.origins.size >= CACHE_MAX_ENTRIES) this.origins.clear()
    this.origins.set(origin, { allowed, until: Date.now() + this.cacheSeconds * 1000 })
    allowed.catch(() => this.origins.delete(origin))
    return allowed
  }

  private async dropOrigin(lists: StoredList, origin: string, clientId: string): Promise<void> {
    await lists.remove(originKey(origin), clientId)
    this.origins.delete(origin)
  }

  private forget(clientId: string): void {
    this.cache.delete(clientId)
    this.loading.delete(clientId)
  }

  private requireChecks(): ClientChecks {
    if (!this.checks) throw new Error('the client directory is not attached to a store yet')
    return this.checks
  }

  /** config.ts `client()` + ClientRegistry normalisation + the boot checks of app.ts, as for a config client. */
  private validate(clientId: string, metadata: JsonObject): RegisteredClient {
    const checks = this.requireChecks()
    try {
      const config: ClientConfig = validateClientConfig({ ...metadata, client_id: clientId }, 'client')
      config.grant_types.forEach((g, j) => {
        if (!checks.grantLoaded(g)) throw new ConfigError(`client.grant_types[${j}]: grant type "${g}" is not supported by this server`)
      })
      checkClientAlgs([config], checks.keys())
      return normalizeClient(config, 'client', { dynamic: true })
    } catch (err) {
      if (err instanceof ConfigError) throw metadataError(err)
      throw err
    }
  }

  private async load(clientId: string): Promise<RegisteredClient | undefined> {
    const record = await this.read(clientId)
    if (!record) return undefined
    try {
      return this.validate(clientId, record.metadata)
    } catch (err) {
      this.log.warn({ client_id: clientId, err: (err as Error).message }, 'stored client no longer passes validation: refused')
      return undefined
    }
  }
}

function redirectUrisOf(record: StoredClientRecord | undefined): readonly string[] {
  const uris = record?.metadata.redirect_uris
  return Array.isArray(uris) ? uris.filter((u): u is string => typeof u === 'string') : []
}

/** http(s) origins of redirect URIs (private-use schemes have none a browser would send). */
function originsOf(uris: readonly string[]): Set<string> {
  const out = new Set<string>()
  for (const uri of uris) {
    try {
      const { origin } = new URL(uri)
      if (origin !== 'null') out.add(origin)
    } catch {
      // validated before; nothing to index
    }
  }
  return out
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
