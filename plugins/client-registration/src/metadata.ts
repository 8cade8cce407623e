import { OAuthError, type JsonObject, type JsonValue } from '@grantd/core'
import type { RegistrationOptions } from './options.js'

/**
 * Client metadata (RFC 7591 §2, OIDC Registration, Back-/Front-Channel Logout, RP-Initiated
 * Logout) a registered client may set. Everything else is dropped, as §2 requires for
 * metadata the server does not understand, and so are grantd's own privileged client fields
 * (`identity_providers`, `allow_plain_pkce`, `access_token_ttl`, `resources`,
 * `require_consent`): only the config file grants those.
 */
const ACCEPTED = [
  'redirect_uris', 'token_endpoint_auth_method', 'grant_types', 'client_name', 'scope', 'jwks',
  'post_logout_redirect_uris', 'backchannel_logout_uri', 'backchannel_logout_session_required',
  'frontchannel_logout_uri', 'frontchannel_logout_session_required',
  'id_token_signed_response_alg', 'access_token_signed_response_alg', 'require_pkce',
] as const

/** Fields a client may send back in an RFC 7592 §2.2 update that the server owns: ignored. */
export const SERVER_OWNED = ['client_id', 'client_secret', 'registration_access_token', 'registration_client_uri', 'client_id_issued_at', 'client_secret_expires_at'] as const

const invalid = (message: string): OAuthError => new OAuthError('invalid_client_metadata', message)

/**
 * The metadata of a registration request, with RFC 7591 §2's defaults applied, ready for
 * the host's client directory (which validates it exactly like a config-file client).
 * The options' policy is checked here: grant types and scopes a registered client may have.
 */
export function requestedMetadata(body: Readonly<Record<string, unknown>>, options: RegistrationOptions): JsonObject {
  const out: JsonObject = {}
  for (const key of ACCEPTED) {
    const value = body[key]
    // A null member is an absent one (RFC 7591 §2 lists no null values).
    if (value !== undefined && value !== null) out[key] = value as JsonValue
  }
  if (body.jwks_uri !== undefined && body.jwks_uri !== null) throw invalid('jwks_uri is not supported: send the keys as jwks')
  // RFC 7591 §2: defaults.
  out.grant_types ??= ['authorization_code']
  out.token_endpoint_auth_method ??= 'client_secret_basic'
  const grants = Array.isArray(out.grant_types) ? out.grant_types.filter((g): g is string => typeof g === 'string') : []
  for (const g of grants) {
    if (!options.grantTypes.includes(g)) throw invalid(`grant_types: "${g}" may not be registered (allowed: ${options.grantTypes.join(', ')})`)
  }
  // §2.1: response_types and grant_types must agree; grantd answers only `code`.
  const responseTypes = body.response_types ?? undefined
  if (responseTypes !== undefined && responseTypes !== null) {
    if (!Array.isArray(responseTypes) || responseTypes.some((r) => typeof r !== 'string')) throw invalid('response_types: expected an array of strings')
    const unsupported = (responseTypes as string[]).find((r) => r !== 'code')
    if (unsupported !== undefined) throw invalid(`response_types: "${unsupported.slice(0, 64)}" is not supported (only code)`)
    if (responseTypes.includes('code') !== grants.includes('authorization_code')) throw invalid('response_types and grant_types disagree: code goes with authorization_code (RFC 7591 §2.1)')
  }
  if (grants.includes('authorization_code') && (!Array.isArray(out.redirect_uris) || out.redirect_uris.length === 0)) {
    throw new OAuthError('invalid_redirect_uri', 'redirect_uris: required for the authorization_code grant')
  }
  if (out.scope === undefined) out.scope = options.scopes.join(' ')
  else if (typeof out.scope === 'string') {
    const outside = out.scope.split(' ').filter((s) => s !== '' && !options.scopes.includes(s))
    if (outside.length > 0) throw invalid(`scope: ${outside.map((s) => s.slice(0, 64)).join(' ')} may not be registered`)
  }
  // A client that registered itself is a third party (SPEC §10): its users always see the consent page.
  out.require_consent = true
  return out
}

/** The registered metadata as RFC 7591 §3.2.1 / RFC 7592 §3 echo it (never the secret's hash). */
export function publicMetadata(stored: JsonObject): JsonObject {
  const out: JsonObject = {}
  for (const key of ACCEPTED) if (stored[key] !== undefined) out[key] = stored[key]!
  const grants = Array.isArray(stored.grant_types) ? stored.grant_types : []
  out.response_types = grants.includes('authorization_code') ? ['code'] : []
  return out
}
