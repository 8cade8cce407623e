import { randomBytes } from 'node:crypto'
import { parseAcrValues } from './acr.js'
import { CLIENT_AUTH_PARAMS, type ClientAuthenticator } from './client-auth.js'
import { OAuthError } from './errors.js'
import { readForm, type FormParams } from './form-body.js'
import type { Client, Grant, GrantRequest, GrantServices, JsonObject, RouteContext, TokenSettings, UserService } from './interfaces.js'
import type { PluginRegistry } from './plugin-loader.js'
import type { RefreshFamily } from './refresh-family.js'
import { formatScope, isSubset, parseScope } from './scope.js'
import type { TokenService } from './tokens.js'

export const TOKEN_PATHS = ['/connect/token', '/oauth2/token'] as const

export interface TokenEndpointDeps {
  registry: PluginRegistry
  clientAuth: ClientAuthenticator
  tokens: TokenService
  refreshTokens: RefreshFamily
  settings: TokenSettings
  services: () => GrantServices
  users: () => UserService
}

/** Parameters the core itself reads; everything else must be declared by the grant. */
const CORE_PARAMS = new Set<string>(['grant_type', 'scope', ...CLIENT_AUTH_PARAMS])

interface TokenRequest {
  params: FormParams
  client: Client
}

/**
 * The token endpoint (RFC 6749 §3.2), in node-oidc-provider's shape: the steps below run
 * in order and the order is the spec — parse, authenticate the client, pick the grant,
 * check the client may use it, let the grant decide, then issue and respond.
 */
export function tokenEndpoint(deps: TokenEndpointDeps): (ctx: RouteContext) => Promise<void> {
  const { registry, clientAuth } = deps

  async function parse(ctx: RouteContext): Promise<FormParams> {
    const params = await readForm(ctx.req)
    // RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once."
    for (const name of params.names()) {
      if (params.count(name) > 1) throw new OAuthError('invalid_request', `parameter ${name.slice(0, 64)} is repeated`)
    }
    return params
  }

  async function authenticate(ctx: RouteContext, params: FormParams): Promise<Client> {
    const issuer = ctx.state.issuer
    return clientAuth.authenticate({
      authorization: ctx.get('authorization') || undefined,
      params,
      audiences: [issuer, `${issuer}${ctx.path}`, `${issuer}/connect/token`],
    })
  }

  function selectGrant(req: TokenRequest) {
    const type = req.params.get('grant_type')
    if (type === undefined) throw new OAuthError('invalid_request', 'grant_type is missing')
    const grant = registry.grants.get(type)
    if (!grant) throw new OAuthError('unsupported_grant_type', 'grant_type is not supported')
    // RFC 6749 §5.2 unauthorized_client: the client is not registered for this grant.
    if (!req.client.grant_types.includes(type)) throw new OAuthError('unauthorized_client', `client is not allowed to use ${type}`)
    if (!req.client.confidential && grant.allowPublicClients !== true) throw new OAuthError('unauthorized_client', `public clients may not use ${type}`)
    return grant
  }

  return async function token(ctx: RouteContext): Promise<void> {
    ctx.set('Cache-Control', 'no-store')
    ctx.set('Pragma', 'no-cache')
    const params = await parse(ctx)
    const client = await authenticate(ctx, params)
    ctx.state.clientId = client.client_id
    const req: TokenRequest = { params, client }
    const grant = selectGrant(req)
    ctx.state.grantType = grant.type

    const declared: Record<string, string | undefined> = {}
    for (const name of grant.parameters ?? []) if (!CORE_PARAMS.has(name)) declared[name] = params.get(name)
    for (const name of grant.required ?? []) {
      if (declared[name] === undefined) throw new OAuthError('invalid_request', `${name} is missing`)
    }
    const requestedScope = parseScope(params.get('scope'))
    if (requestedScope && !isSubset(requestedScope, client.scopes)) throw new OAuthError('invalid_scope', 'requested scope is not allowed for this client')
    const acr = grant.acrValues ? parseAcrValues(params.get('acr_values'), registry.acr) : { raw: [] }

    const grantRequest: GrantRequest = {
      grantType: grant.type,
      client,
      params: declared,
      requestedScope,
      acr,
      issuer: ctx.state.issuer,
      clientIp: ctx.state.clientIp,
      services: deps.services(),
    }
    const decided = await grant.handle(grantRequest)
    // A result starts as a failure: a handler that decides nothing grants nothing.
    if (!decided) throw new OAuthError('invalid_grant', 'the grant was not accepted')
    ctx.body = await issue(deps, ctx.state.issuer, client, decided)
  }
}

/** Fosite's PopulateTokenEndpointResponse: the core alone mints and stores tokens. */
async function issue(deps: TokenEndpointDeps, issuer: string, client: Client, grant: Grant): Promise<JsonObject> {
  const { settings, tokens, registry } = deps
  const scope = grant.scope
  if (!Array.isArray(scope) || !isSubset(scope, client.scopes)) throw new OAuthError('invalid_scope', 'granted scope is not allowed for this client')
  const scopeText = formatScope(scope)
  const subject = grant.subject ?? client.client_id
  const configuredTtl = client.access_token_ttl ?? settings.accessTokenTtl
  // A grant may shorten, never extend, the configured lifetime (e.g. token exchange: not past the subject token).
  const ttl = typeof grant.expiresIn === 'number' && grant.expiresIn >= 1 ? Math.min(configuredTtl, Math.floor(grant.expiresIn)) : configuredTtl

  const userBound = grant.subject !== undefined
  // A refresh token is only useful to a client that may redeem it, through a loaded grant.
  const wantsRefresh = (grant.refreshToken ?? scope.includes('offline_access')) &&
    userBound && client.grant_types.includes('refresh_token') && registry.grants.has('refresh_token')
  const grantId = grant.grantId ?? (wantsRefresh ? randomBytes(16).toString('base64url') : undefined)
  // OIDC Core §3.1.2.1: an ID token only for a user and only when `openid` is granted (a narrowed refresh may drop it).
  const idOptions = grant.idToken === false || !userBound || !scope.includes('openid') ? undefined : (grant.idToken ?? {})

  const accessToken = await tokens.signAccessToken({
    issuer,
    client,
    subject,
    scope: scopeText,
    audience: grant.audience ?? client.client_id,
    ttl,
    ...(grantId ? { grantId } : {}),
    ...(grant.claims ? { claims: grant.claims } : {}),
    ...(idOptions?.authTime !== undefined ? { authTime: idOptions.authTime } : {}),
    ...(idOptions?.acr ? { acr: idOptions.acr } : {}),
  })
  const body: JsonObject = { ...(grant.extra ?? {}) }
  body.access_token = accessToken
  body.token_type = 'Bearer'
  body.expires_in = ttl
  body.scope = scopeText

  if (wantsRefresh && userBound && grantId) {
    const refreshScope = grant.refreshScope ?? scope
    if (!Array.isArray(refreshScope) || !isSubset(refreshScope, client.scopes)) throw new OAuthError('invalid_scope', 'granted scope is not allowed for this client')
    body.refresh_token = await deps.refreshTokens.issue({
      client_id: client.client_id,
      sub: subject,
      scope: refreshScope,
      grant_id: grantId,
      ...(grant.context ? { context: grant.context } : {}),
      session: { ...(grant.session ?? {}), ...(idOptions?.authTime !== undefined ? { auth_time: idOptions.authTime } : {}), ...(idOptions?.acr ? { acr: idOptions.acr } : {}) },
    }, settings.refreshTokenTtl)
  }

  if (idOptions && userBound) {
    const users = deps.users()
    const user = grant.user ?? (await users.findById(subject, grant.context ?? { raw: [] }))
    const claims = user ? await users.claims(user, scope) : {}
    body.id_token = await tokens.signId({ issuer, client, subject, claims, options: idOptions, accessToken, ttl: settings.idTokenTtl })
  }
  return body
}
