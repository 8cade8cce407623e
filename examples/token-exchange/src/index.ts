import { definePlugin, OAuthError, option, type AccessTokenClaims, type Grant, type GrantRequest, type JsonObject, type JsonValue } from '@grantd/core'

/** RFC 8693 §2.1: the grant type this plugin adds to the token endpoint. */
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
/** RFC 8693 §3: the only token type this plugin accepts and issues. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'

/** The plugin's `options` in the config file. */
export interface TokenExchangeOptions {
  /**
   * The logical names a client may give as `audience`. Anything else is `invalid_target`.
   * Default: none, so the new token's audience is the calling client, as for every other
   * grant. `resource` (an absolute URI, RFC 8707) is the core's: it must be one of the
   * config's `resources`, and joins `aud`.
   */
  readonly audiences: readonly string[]
  /**
   * Which subject tokens a client may exchange:
   * - `"caller"` (default): tokens issued to the calling client, or naming it in `aud`
   *   (the caller is the resource server the token was meant for);
   * - `"any"`: any valid access token this server issued, whoever holds it.
   */
  readonly subjectTokens: 'caller' | 'any'
}

const OPTION_KEYS = ['audiences', 'subjectTokens']
const MAX_TARGET_LENGTH = 2048

/** Validate the config file's `options`; messages name the key (the loader adds the path). */
export function parseOptions(raw: unknown): TokenExchangeOptions {
  // @grantd/core's option reader: every error starts with the key path.
  const o = option.object(raw ?? {}, '(options)')
  option.only(o, '(options)', OPTION_KEYS)
  const audiences = o.audiences === undefined ? [] : option.stringArray(o.audiences, 'audiences')
  audiences.forEach((a, i) => { if (a.length > MAX_TARGET_LENGTH) option.fail(option.at('audiences', i), `at most ${MAX_TARGET_LENGTH} characters`) })
  const subjectTokens = o.subjectTokens ?? 'caller'
  if (subjectTokens !== 'caller' && subjectTokens !== 'any') option.fail('subjectTokens', 'expected "caller" or "any"')
  return { audiences, subjectTokens }
}

function isFor(token: AccessTokenClaims, clientId: string): boolean {
  return token.client_id === clientId || (Array.isArray(token.aud) ? token.aud.includes(clientId) : token.aud === clientId)
}

/**
 * RFC 8693 §2.1 `scope`: equal or narrower than the subject token's. Without one, the
 * subject token's scope as far as the caller is registered for it. `offline_access` never
 * carries over: an exchange issues no refresh token (RFC 8693 §2.2.1).
 */
function grantedScope(req: GrantRequest, subject: AccessTokenClaims): string[] {
  const held = subject.scope.split(' ').filter((s) => s !== '' && s !== 'offline_access')
  if (req.requestedScope) {
    if (req.requestedScope.includes('offline_access')) throw new OAuthError('invalid_scope', 'offline_access cannot be exchanged')
    const wider = req.requestedScope.filter((s) => !held.includes(s))
    if (wider.length > 0) throw new OAuthError('invalid_scope', 'scope is wider than the subject token\'s')
    return [...req.requestedScope]
  }
  const scope = held.filter((s) => req.client.scopes.has(s))
  if (scope.length === 0) throw new OAuthError('invalid_scope', 'the subject token has no scope this client may hold')
  return scope
}

/**
 * RFC 8693 §2.1 `audience` names where the new token will be used, from the configured
 * list (RFC 8693 §2.2.2 `invalid_target`). `resource` needs no code here: the core checks it
 * against the config's `resources` (RFC 8707) and adds it to `aud`. grantd rejects repeated
 * parameters, so a request names at most one of each.
 */
function targets(req: GrantRequest, options: TokenExchangeOptions): string[] {
  const value = req.params.audience
  if (value === undefined) return []
  if (value.length > MAX_TARGET_LENGTH) throw new OAuthError('invalid_request', 'audience is too long')
  if (!options.audiences.includes(value)) throw new OAuthError('invalid_target', 'audience is not a target this server issues tokens for')
  return [value]
}

/** RFC 8693 §4.1: the caller is the current actor; earlier actors nest inside it. */
function actClaim(callerId: string, prior: JsonValue | undefined): JsonObject {
  const priorActor = typeof prior === 'object' && prior !== null && !Array.isArray(prior) ? prior : undefined
  return priorActor ? { sub: callerId, act: priorActor } : { sub: callerId }
}

async function exchange(req: GrantRequest, options: TokenExchangeOptions): Promise<Grant> {
  const { params, client } = req
  // Delegation with a separate actor token (RFC 8693 §2.1) is not implemented: the caller is the actor.
  if (params.actor_token !== undefined || params.actor_token_type !== undefined) throw new OAuthError('invalid_request', 'actor_token is not supported')
  // RFC 8693 §2.2.2: a token type the server will not process is invalid_request.
  if (params.subject_token_type !== ACCESS_TOKEN_TYPE) throw new OAuthError('invalid_request', `subject_token_type must be ${ACCESS_TOKEN_TYPE}`)
  if (params.requested_token_type !== undefined && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
    throw new OAuthError('invalid_request', `requested_token_type must be ${ACCESS_TOKEN_TYPE}`)
  }

  // Signature, typ, issuer, expiry and revocation (of the token and of its grant family).
  const subject = await req.services.tokens.verifyAccessToken(params.subject_token!, req.issuer)
  if (!subject) throw new OAuthError('invalid_grant', 'subject_token is not a valid access token of this server')
  if (options.subjectTokens === 'caller' && !isFor(subject, client.client_id)) throw new OAuthError('invalid_grant', 'subject_token was not issued to or for this client')
  const remaining = subject.exp - Math.floor(Date.now() / 1000)
  if (remaining < 1) throw new OAuthError('invalid_grant', 'subject_token has expired')

  const scope = grantedScope(req, subject)
  const audience = targets(req, options)
  return {
    subject: subject.sub,
    scope,
    claims: { act: actClaim(client.client_id, subject.act) },
    ...(audience.length === 1 ? { audience: audience[0]! } : {}),
    // An exchange never outlives what was exchanged, so chained exchanges cannot extend access.
    expiresIn: remaining,
    // Same grant family: revoking the user's grant (e.g. its refresh token) revokes this token too.
    ...(typeof subject.gid === 'string' ? { grantId: subject.gid } : {}),
    extra: { issued_token_type: ACCESS_TOKEN_TYPE },
    refreshToken: false,
    idToken: false,
  }
}

/**
 * RFC 8693 token exchange: a client trades an access token this server issued for a new
 * one with the same `sub`, an equal or narrower scope, optionally another audience, and an
 * `act` claim naming the client. Load it by path: `{ "use": "./token-exchange/dist/index.js" }`.
 */
export default definePlugin({
  name: 'token-exchange',
  options: parseOptions,
  register(host) {
    const options = host.options
    host.grant({
      type: TOKEN_EXCHANGE,
      parameters: ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'actor_token', 'actor_token_type'],
      required: ['subject_token', 'subject_token_type'],
      allowPublicClients: false,
      handle: (req) => exchange(req, options),
    })
  },
})
