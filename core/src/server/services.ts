/**
 * Service steps of createServer (app.ts): the user service as every caller sees it
 * (throttle, audit, metrics), the token service with refresh families and sessions, and
 * client authentication, each registered in the plugin container.
 */
import { asValue } from 'awilix'
import type { ServerConfig } from '../config.js'
import { OAuthError } from '../errors.js'
import type { GrantServices, Logger, Store, UserService } from '../interfaces.js'
import { ClientAuthenticator } from '../clients/client-auth.js'
import { clientAuthService } from '../clients/client-auth-service.js'
import type { ClientRegistry } from '../clients/clients.js'
import type { ClientCatalog } from '../clients/client-directory.js'
import { parseAcrValues } from '../endpoints/acr.js'
import type { PluginRegistry } from '../host/plugin-loader.js'
import { audit, auditSignIns, markClientAuthFailed, UserHasher } from '../ops/audit.js'
import type { Metrics } from '../ops/metrics.js'
import { throttleSignIns } from '../ops/throttle.js'
import { BackChannelLogout } from '../sessions/back-channel.js'
import { ConsentStore, SessionManager } from '../sessions/session-service.js'
import { ClaimsRelease } from '../tokens/claims.js'
import type { KeySet } from '../tokens/keys.js'
import { RefreshFamily } from '../tokens/refresh-family.js'
import { TokenService } from '../tokens/tokens.js'
import type { BootWarnings } from './boot.js'

/** Used when no user service is configured: nobody can sign in. */
const NO_USERS: UserService = {
  authenticate: async () => undefined,
  authenticateExternal: async () => undefined,
  findById: async () => undefined,
  claims: async () => ({}),
  isActive: async () => false,
}

/**
 * The user service every caller gets: the configured one (or nobody), wrapped in the
 * brute-force limits, the sign-in audit lines and the metrics.
 */
export function wrapUsers(
  config: ServerConfig,
  deps: { registry: PluginRegistry; store: Store; metrics: Metrics | undefined; log: Logger; cookieKeys: string[]; warnings: BootWarnings },
): UserService {
  const { registry, store, metrics, log, cookieKeys, warnings } = deps
  if (!registry.users) {
    registry.users = NO_USERS
    registry.register('users', NO_USERS, 'core')
    if (config.clients.some((c) => c.grant_types.some((g) => g !== 'client_credentials'))) warnings.push((l) => l.warn({}, 'no users configured: user sign-in always fails'))
  }
  // Brute-force limits wrap whatever user service is configured, for every caller (throttle.ts);
  // registry.users stays the service the plugin provided.
  const throttled = throttleSignIns(registry.users, store, config.throttle)
  // Audit lines (login.*) for every sign-in, outside the throttle so a lock-out is seen as one (audit.ts).
  const audited = auditSignIns(throttled, log, new UserHasher(cookieKeys[0]!))
  const users = metrics ? metrics.instrumentUsers(audited) : audited
  registry.container.register('users', asValue(users))
  return users
}

export interface TokenServices {
  readonly tokens: TokenService
  readonly refreshTokens: RefreshFamily
  readonly services: GrantServices
  readonly claims: ClaimsRelease
  readonly backChannel: BackChannelLogout
  readonly sessions: SessionManager
  readonly consent: ConsentStore
}

/**
 * The token service, refresh families, claims release, and the core's SSO sessions and
 * consent (SPEC §10: every plugin that signs a browser in or out shares them).
 */
export function buildTokenServices(
  config: ServerConfig,
  deps: { keys: KeySet; store: Store; users: UserService; registry: PluginRegistry; directory: ClientCatalog; metrics: Metrics | undefined; log: Logger; cookieKeys: string[] },
): TokenServices {
  const { keys, store, users, registry, directory, metrics, log, cookieKeys } = deps
  const tokens = new TokenService(keys, store, config.tokens)
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
  return { tokens, refreshTokens, services, claims, backChannel, sessions, consent }
}

/** Client authentication for the core's endpoints and, as the `clientAuth` service, for plugins. */
export function buildClientAuth(
  config: ServerConfig,
  deps: { directory: ClientCatalog; store: Store; clients: ClientRegistry; registry: PluginRegistry; log: Logger },
): ClientAuthenticator {
  const { directory, store, clients, registry, log } = deps
  const clientAuth = auditClientAuth(new ClientAuthenticator(directory, store, config.throttle), clients, log)
  registry.container.register('clientAuth', asValue(clientAuthService(clientAuth)))
  return clientAuth
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
