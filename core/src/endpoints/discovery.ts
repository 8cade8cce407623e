import { ASSERTION_ALGS } from '../clients/client-auth.js'
import type { PluginRegistry } from '../host/plugin-loader.js'
import type { KeySet } from '../tokens/keys.js'

/**
 * RFC 8414 / OpenID Discovery 1.0 metadata. Built per issuer (there is one when the
 * issuer is configured; a few when it is derived from trusted forwarded headers) and
 * serialised once per issuer.
 */
export class Discovery {
  private readonly cache = new Map<string, string>()

  /** `keys` is read per build: a reload or a store rotation changes the algs. */
  constructor(private readonly registry: PluginRegistry, private readonly keys: () => KeySet) {}

  /** Forget the serialised documents (after a reload: clients' scopes, key algs). */
  clear(): void {
    this.cache.clear()
  }

  json(issuer: string): string {
    let body = this.cache.get(issuer)
    if (body === undefined) {
      body = JSON.stringify(this.metadata(issuer))
      // Bound the cache: an untrusted Host header must not grow memory without limit.
      if (this.cache.size >= 64) this.cache.clear()
      this.cache.set(issuer, body)
    }
    return body
  }

  metadata(issuer: string): Record<string, unknown> {
    const grants = [...this.registry.grants.keys()]
    const scopes = new Set<string>(['openid'])
    const config = this.registry.container.resolve('config')
    for (const client of config.clients.values()) for (const s of client.scopes) scopes.add(s)
    // Every claim a scope can release (SPEC §11), after the ones the core itself sets.
    const claims = new Set<string>(['sub', 'iss', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'acr', 'amr', 'azp', 'at_hash', 'sid'])
    for (const s of scopes) for (const c of config.scopes.get(s)?.claims ?? []) claims.add(c)
    if (config.tokens.tenantClaim !== false) claims.add(config.tokens.tenantClaim)
    const acrPrefixes = [...this.registry.acr.keys()]
    // Plugins describe what they serve (the authorization endpoint and its options); the core's own fields win.
    const contributed: Record<string, unknown> = {}
    for (const fields of this.registry.discovery) Object.assign(contributed, fields(issuer))
    const meta: Record<string, unknown> = {
      response_types_supported: [],
      ...contributed,
      issuer,
      token_endpoint: `${issuer}/connect/token`,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      introspection_endpoint: `${issuer}/connect/introspect`,
      revocation_endpoint: `${issuer}/connect/revocation`,
      userinfo_endpoint: `${issuer}/connect/userinfo`,
      // SPEC §10: RP-Initiated, Back-Channel and Front-Channel Logout 1.0.
      end_session_endpoint: `${issuer}/connect/endsession`,
      backchannel_logout_supported: true,
      backchannel_logout_session_supported: true,
      frontchannel_logout_supported: true,
      frontchannel_logout_session_supported: true,
      grant_types_supported: grants,
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
      // Exactly what client-auth.ts accepts for private_key_jwt.
      token_endpoint_auth_signing_alg_values_supported: [...ASSERTION_ALGS],
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
      scopes_supported: [...scopes],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: [...this.keys().algs],
      claims_parameter_supported: false,
      request_parameter_supported: false,
      request_uri_parameter_supported: false,
      claims_supported: [...claims],
    }
    if (acrPrefixes.length > 0) meta.acr_values_supported = acrPrefixes.map((p) => `${p}:*`)
    return meta
  }
}
