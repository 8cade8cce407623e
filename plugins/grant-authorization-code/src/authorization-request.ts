import { checkResourceIndicator, OAuthError, parseScope, isSubset, type AcrContext, type AcrParser, type Client, type ResourceDefinition } from '@grantd/core'
import { challengeOf, type PkceMethod } from './pkce.js'

/** A validated authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1). */
export interface AuthorizationRequest {
  readonly client: Client
  readonly redirectUri: string
  readonly scope: readonly string[]
  readonly state?: string
  readonly nonce?: string
  readonly codeChallenge?: string
  readonly codeChallengeMethod?: PkceMethod
  readonly acr: AcrContext
  readonly prompt: readonly string[]
  /** OIDC Core §3.1.2.1: the longest acceptable age of the user's authentication. */
  readonly maxAge?: number
  readonly loginHint?: string
  readonly issuer: string
  /** RFC 8707 `resource` values (repeatable), each configured and allowed for the client. */
  readonly resources?: readonly string[]
}

/**
 * The request cannot be trusted to say where to send the browser (unknown client, a
 * redirect_uri that is not registered): RFC 6749 §4.1.2.1 forbids redirecting, so the
 * user sees an HTML page instead.
 */
export class UnredirectableError extends Error {
  constructor(readonly title: string, message: string) {
    super(message)
    this.name = 'UnredirectableError'
  }
}

/** An error for the client, sent back to its (already validated) redirect_uri. */
export class RedirectableError extends Error {
  constructor(readonly error: OAuthError, readonly redirectUri: string, readonly state: string | undefined) {
    super(error.message)
    this.name = 'RedirectableError'
  }
}

/** IdentityServer-style input limits: oversize values fail early. */
const LIMITS: Readonly<Record<string, number>> = {
  client_id: 256, redirect_uri: 2048, state: 2048, nonce: 512, scope: 2048, code_challenge: 128,
  code_challenge_method: 16, response_type: 64, response_mode: 32, prompt: 128, max_age: 12,
  login_hint: 256, acr_values: 1024, ui_locales: 128, display: 16,
}
const KNOWN_PROMPTS = new Set(['none', 'login', 'consent', 'select_account'])

/**
 * Single-valued view of the request's parameters (RFC 6749 §3.1: no parameter twice;
 * empty = absent). Built in one pass: every lookup is a map read, so the cost of parsing
 * stays linear in the size of the request however many distinct names it has (SPEC §9).
 */
export class AuthorizationParams {
  private readonly values = new Map<string, string[]>()

  add(name: string, value: string): void {
    const list = this.values.get(name)
    if (list) list.push(value)
    else this.values.set(name, [value])
  }

  static fromQuery(rawQuery: string): AuthorizationParams {
    const params = new AuthorizationParams()
    for (const [name, value] of new URLSearchParams(rawQuery)) params.add(name, value)
    return params
  }

  repeated(name: string): boolean {
    return (this.values.get(name)?.length ?? 0) > 1
  }

  get(name: string): string | undefined {
    const values = this.values.get(name)
    if (values === undefined) return undefined
    if (values.length > 1) throw new OAuthError('invalid_request', `parameter ${name} is repeated`)
    const value = values[0]
    if (value === undefined || value === '') return undefined
    if (value.length > (LIMITS[name] ?? 2048)) throw new OAuthError('invalid_request', `${name} is too long`)
    return value
  }

  /** The first repeated parameter, if any, except the repeatable ones named. */
  firstRepeated(...repeatable: readonly string[]): string | undefined {
    for (const [name, values] of this.values) if (values.length > 1 && !repeatable.includes(name)) return name
    return undefined
  }

  /** Every value of a repeatable parameter (RFC 8707 `resource`). */
  all(name: string): string[] {
    return this.values.get(name) ?? []
  }
}

/** RFC 8707 §2: `resource` may be repeated at the authorization endpoint; at most this many. */
const MAX_RESOURCES = 10

/** Each `resource` must be configured and allowed for the client, else `invalid_target` (RFC 8707 §2). */
function requestedResources(query: AuthorizationParams, client: Client, resources: ReadonlyMap<string, ResourceDefinition>): string[] {
  const values = query.all('resource')
  if (values.length > MAX_RESOURCES) throw new OAuthError('invalid_request', 'too many resource parameters')
  const out: string[] = []
  for (const value of values) {
    if (value === '') throw new OAuthError('invalid_target', 'resource is empty')
    const id = checkResourceIndicator(client, value, resources).id
    if (!out.includes(id)) out.push(id)
  }
  return out
}

/**
 * Validate an authorization request (GET query or POST form) in two stages: first who the client is and where its
 * browser may be sent (failures throw {@link UnredirectableError}); then everything else
 * (failures throw {@link RedirectableError}, answered at the redirect_uri with `state` and `iss`).
 */
export function parseAuthorizationRequest(
  rawQuery: string | AuthorizationParams, clients: ReadonlyMap<string, Client>, acr: AcrParser, issuer: string,
  redirectAllowed: (client: Client, redirectUri: string) => boolean = (client, uri) => client.redirect_uris.includes(uri),
  resources: ReadonlyMap<string, ResourceDefinition> = new Map(),
): AuthorizationRequest {
  if (typeof rawQuery === 'string' && rawQuery.length > 16 * 1024) throw new UnredirectableError('Invalid request', 'The authorization request is too large.')
  const query = typeof rawQuery === 'string' ? AuthorizationParams.fromQuery(rawQuery) : rawQuery

  if (query.repeated('client_id')) throw new UnredirectableError('Invalid request', 'The request names more than one client.')
  let clientId: string | undefined
  try {
    clientId = query.get('client_id')
  } catch {
    throw new UnredirectableError('Unknown application', 'The application that sent you here is not known.')
  }
  if (clientId === undefined) throw new UnredirectableError('Invalid request', 'The request does not say which application sent you (client_id is missing).')
  const client = clients.get(clientId)
  if (!client) throw new UnredirectableError('Unknown application', 'The application that sent you here is not known.')

  if (query.repeated('redirect_uri')) throw new UnredirectableError('Invalid request', 'The request names more than one redirect_uri.')
  let redirectUri: string | undefined
  try {
    redirectUri = query.get('redirect_uri')
  } catch {
    redirectUri = undefined
  }
  if (redirectUri === undefined) throw new UnredirectableError('Invalid request', 'The request does not say where to return (redirect_uri is missing).')
  // RFC 9700 §4.1.1: exact string matching, no patterns, no normalisation (RFC 8252 §7.3: any loopback port).
  if (!redirectAllowed(client, redirectUri)) throw new UnredirectableError('Invalid redirect', 'The application asked to return to an address it has not registered.')

  // A repeated state cannot be echoed back faithfully: answer without one.
  const state = query.repeated('state') ? undefined : safeGet(query, 'state')
  try {
    const repeated = query.firstRepeated('resource')
    if (repeated !== undefined) throw new OAuthError('invalid_request', `parameter ${repeated.slice(0, 64)} is repeated`)
    if (query.get('request') !== undefined) throw new OAuthError('request_not_supported', 'request objects are not supported')
    if (query.get('request_uri') !== undefined) throw new OAuthError('request_uri_not_supported', 'request_uri is not supported')
    const responseType = query.get('response_type')
    if (responseType === undefined) throw new OAuthError('invalid_request', 'response_type is missing')
    if (responseType !== 'code') throw new OAuthError('unsupported_response_type', 'only response_type=code is supported')
    if (!client.grant_types.includes('authorization_code')) throw new OAuthError('unauthorized_client', 'the client is not registered for the authorization code grant')
    const responseMode = query.get('response_mode')
    if (responseMode !== undefined && responseMode !== 'query') throw new OAuthError('invalid_request', 'only response_mode=query is supported')

    const scope = parseScope(query.get('scope'))
    if (!scope || scope.length === 0) throw new OAuthError('invalid_scope', 'scope is required')
    if (!isSubset(scope, client.scopes)) throw new OAuthError('invalid_scope', 'requested scope is not allowed for this client')

    const pkce = challengeOf(client, query.get('code_challenge'), query.get('code_challenge_method'))
    const prompt = (query.get('prompt') ?? '').split(' ').filter((p) => p !== '' && KNOWN_PROMPTS.has(p))
    // OIDC Core §3.1.2.1: none with any other value is an error.
    if (prompt.includes('none') && prompt.length > 1) throw new OAuthError('invalid_request', 'prompt=none cannot be combined with other values')
    const maxAgeText = query.get('max_age')
    let maxAge: number | undefined
    if (maxAgeText !== undefined) {
      if (!/^\d{1,10}$/.test(maxAgeText)) throw new OAuthError('invalid_request', 'max_age must be a non-negative integer')
      maxAge = Number(maxAgeText)
    }
    const nonce = query.get('nonce')
    const loginHint = query.get('login_hint')
    const context = acr.parse(query.get('acr_values'))
    const resourceIds = requestedResources(query, client, resources)

    return {
      client, redirectUri, scope, acr: context, prompt, issuer,
      ...(state !== undefined ? { state } : {}),
      ...(nonce !== undefined ? { nonce } : {}),
      ...(pkce ? { codeChallenge: pkce.challenge, codeChallengeMethod: pkce.method } : {}),
      ...(maxAge !== undefined ? { maxAge } : {}),
      ...(loginHint !== undefined ? { loginHint } : {}),
      ...(resourceIds.length > 0 ? { resources: resourceIds } : {}),
    }
  } catch (err) {
    if (err instanceof OAuthError) throw new RedirectableError(err, redirectUri, state)
    throw err
  }
}

function safeGet(query: AuthorizationParams, name: string): string | undefined {
  try {
    return query.get(name)
  } catch {
    return undefined
  }
}
