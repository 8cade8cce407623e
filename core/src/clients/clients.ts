import { createLocalJWKSet } from 'jose'
import type { ClientConfig } from '../config.js'
import { ConfigError } from '../errors.js'
import type { Client, ClientAuthMethod } from '../interfaces.js'
import { decoyVerifier, SecretVerifier } from './client-secret.js'
import { isValidScopeToken } from '../tokens/scope.js'

/** A client plus what the core needs to authenticate it; the secret itself is not kept. */
export interface RegisteredClient {
  readonly client: Client
  readonly secret?: SecretVerifier
  readonly keys?: ReturnType<typeof createLocalJWKSet>
}

/** Where client authentication finds clients: config ones synchronously, stored ones (RFC 7591) asynchronously. */
export interface ClientSource {
  lookup(clientId: string): RegisteredClient | undefined | Promise<RegisteredClient | undefined>
  /** Checked instead of a secret when there is none to check (unknown client, no secret). */
  readonly decoy: SecretVerifier
}

/** Clients from config, normalised at boot and on each reload. */
export class ClientRegistry {
  private byId = new Map<string, RegisteredClient>()
  /** One Map for the server's life: plugins keep it (host.config.clients), a reload refills it. */
  readonly clients = new Map<string, Client>()
  /** Checked instead of a secret when there is none to check (unknown client, no secret), at the cost of the costliest configured hash. */
  decoy: SecretVerifier

  constructor(configs: readonly ClientConfig[]) {
    configs.forEach((c, i) => {
      const registered = normalizeClient(c, `clients[${i}]`)
      this.byId.set(c.client_id, registered)
      this.clients.set(c.client_id, registered.client)
    })
    this.decoy = decoyVerifier(configs.flatMap((c) => (c.client_secret !== undefined ? [c.client_secret] : [])))
  }

  /**
   * Switch to the clients of a registry built (and so validated) from a new config. Both
   * maps change in one synchronous step: no request sees a half-filled registry.
   */
  adopt(next: ClientRegistry): void {
    this.byId = next.byId
    this.decoy = next.decoy
    this.clients.clear()
    for (const [id, client] of next.clients) this.clients.set(id, client)
  }

  get(clientId: string): RegisteredClient | undefined {
    return this.byId.get(clientId)
  }
}

/**
 * Normalise one validated client (config.ts `client()`), wherever it comes from: the config
 * file at boot, or the store for clients registered at run time (RFC 7591). `path` prefixes
 * error messages (`clients[2]`).
 */
export function normalizeClient(c: ClientConfig, path: string, extra: { dynamic?: boolean } = {}): RegisteredClient {
  const method: ClientAuthMethod = c.token_endpoint_auth_method ?? (c.client_secret !== undefined ? 'client_secret_basic' : 'none')
  const scopes = c.scope.split(' ').filter((s) => s !== '')
  scopes.forEach((s) => { if (!isValidScopeToken(s)) throw new ConfigError(`${path}.scope: "${s}" is not a valid scope token`) })
  const client: Client = {
    ...(extra.dynamic ? { dynamic: true } : {}),
    client_id: c.client_id,
    token_endpoint_auth_method: method,
    grant_types: [...c.grant_types],
    redirect_uris: [...c.redirect_uris],
    scopes: new Set(scopes),
    require_pkce: c.require_pkce || method === 'none',
    allow_plain_pkce: c.allow_plain_pkce,
    identity_providers: [...c.identity_providers],
    confidential: method !== 'none',
    ...(c.client_name !== undefined ? { client_name: c.client_name } : {}),
    ...(c.jwks !== undefined ? { jwks: c.jwks } : {}),
    ...(c.access_token_ttl !== undefined ? { access_token_ttl: c.access_token_ttl } : {}),
    ...(c.resources !== undefined ? { resources: [...c.resources] } : {}),
    ...(c.post_logout_redirect_uris !== undefined ? { post_logout_redirect_uris: [...c.post_logout_redirect_uris] } : {}),
    ...(c.backchannel_logout_uri !== undefined ? { backchannel_logout_uri: c.backchannel_logout_uri } : {}),
    ...(c.backchannel_logout_session_required !== undefined ? { backchannel_logout_session_required: c.backchannel_logout_session_required } : {}),
    ...(c.frontchannel_logout_uri !== undefined ? { frontchannel_logout_uri: c.frontchannel_logout_uri } : {}),
    ...(c.frontchannel_logout_session_required !== undefined ? { frontchannel_logout_session_required: c.frontchannel_logout_session_required } : {}),
    ...(c.require_consent !== undefined ? { require_consent: c.require_consent } : {}),
    ...(c.id_token_signed_response_alg !== undefined ? { id_token_signed_response_alg: c.id_token_signed_response_alg } : {}),
    ...(c.access_token_signed_response_alg !== undefined ? { access_token_signed_response_alg: c.access_token_signed_response_alg } : {}),
    ...(c.require_pushed_authorization_requests !== undefined ? { require_pushed_authorization_requests: c.require_pushed_authorization_requests } : {}),
    ...(c.dpop_bound_access_tokens !== undefined ? { dpop_bound_access_tokens: c.dpop_bound_access_tokens } : {}),
  }
  let secret: SecretVerifier | undefined
  if (c.client_secret !== undefined) {
    try {
      secret = new SecretVerifier(c.client_secret)
    } catch (err) {
      throw new ConfigError(`${path}.client_secret: ${(err as Error).message}`)
    }
  }
  let keys: RegisteredClient['keys']
  if (c.jwks !== undefined) {
    try {
      keys = createLocalJWKSet(c.jwks)
    } catch (err) {
      throw new ConfigError(`${path}.jwks: ${(err as Error).message}`)
    }
  }
  return { client, ...(secret ? { secret } : {}), ...(keys ? { keys } : {}) }
}
