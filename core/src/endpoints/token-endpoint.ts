import { parseAcrValues } from './acr.js'
import { pick, type ClaimsRelease } from '../tokens/claims.js'
import { CLIENT_AUTH_PARAMS, type ClientAuthenticator } from '../clients/client-auth.js'
import { audit } from '../ops/audit.js'
import { OAuthError, StoreUnavailableError } from '../errors.js'
import { readForm, type FormParams } from '../http/form-body.js'
import type {
  AcrContext, Client, Grant, GrantRequest, GrantServices, JsonObject, Logger, ResourceDefinition, RouteContext, TokenSettings, User, UserService,
} from '../interfaces.js'
import type { PluginRegistry } from '../host/plugin-loader.js'
import type { RefreshFamily, RefreshRotation } from '../tokens/refresh-family.js'
import type { IssueBinding, SenderConstraints } from '../tokens/sender-constraints.js'
import { checkResourceIndicator, decideAudience } from '../tokens/resources.js'
import { formatScope, isSubset, parseScope } from '../tokens/scope.js'
import { randomToken, type TokenService } from '../tokens/tokens.js'
import type { ConsentStore, SessionManager } from '../sessions/session-service.js'

export const TOKEN_PATHS = ['/connect/token', '/oauth2/token'] as const

export interface TokenEndpointDeps {
  registry: PluginRegistry
  clientAuth: ClientAuthenticator
  tokens: TokenService
  refreshTokens: RefreshFamily
  settings: TokenSettings
  services: () => GrantServices
  users: () => UserService
  /** Scope → claims release and the plugins' claims hooks (SPEC §11). */
  claims: ClaimsRelease
  /** Config `resources` (RFC 8707) by id, and the resource owning each API scope. */
  resources: ReadonlyMap<string, ResourceDefinition>
  scopeOwners: ReadonlyMap<string, string>
  /** SSO sessions (SPEC §10): grants made in a session are recorded there. */
  sessions: SessionManager
  /** The grant families a client holds for a user (revoking consent revokes them). */
  consent: ConsentStore
  /** The plugins' sender-constraint hooks (RFC 9449 DPoP): proof checked before the grant decides, binding issued with the tokens. */
  senderConstraints?: SenderConstraints
  /** Audit lines `token.issued` / `token.refused` (SPEC §13); none without it. */
  log?: Logger
}

/** Parameters the core itself reads; everything else must be declared by the grant. */
const CORE_PARAMS = new Set<string>(['grant_type', 'scope', 'resource', ...CLIENT_AUTH_PARAMS])

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
    const params = await readForm(ctx)
    // RFC 6749 §3.2: parameters MUST NOT repeat, unrecognised ones MUST be ignored: the core's
    // are checked here, the grant's when they are read; any other is never looked at.
    params.check(CORE_PARAMS)
    return params
  }

  async function authenticate(ctx: RouteContext, params: FormParams): Promise<Client> {
    const issuer = ctx.state.issuer
    return clientAuth.authenticate({
      authorization: ctx.get('authorization') || undefined,
      params,
      audiences: [issuer, `${issuer}${ctx.path}`, `${issuer}/connect/token`],
      clientIp: ctx.state.clientIp,
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

  /** SPEC §13: one audit line per token request, `token.issued` or `token.refused` with its error code. */
  const log = deps.log
  async function token(ctx: RouteContext): Promise<void> {
    if (!log) return handle(ctx, {})
    const outcome: Outcome = {}
    try {
      await handle(ctx, outcome)
    } catch (err) {
      const error = err instanceof OAuthError ? err.error : err instanceof StoreUnavailableError ? 'temporarily_unavailable' : 'server_error'
      audit(log, 'token.refused', {
        request_id: ctx.state.requestId,
        ...(ctx.state.clientId !== undefined ? { client_id: ctx.state.clientId } : {}),
        ...(ctx.state.grantType !== undefined ? { grant_type: ctx.state.grantType } : {}),
        ...(outcome.tenant !== undefined ? { tenant: outcome.tenant } : {}),
        error,
      })
      throw err
    }
    audit(log, 'token.issued', {
      request_id: ctx.state.requestId, client_id: ctx.state.clientId, grant_type: ctx.state.grantType, sub: outcome.sub, tenant: outcome.tenant,
    })
  }
  return token

  async function handle(ctx: RouteContext, outcome: Outcome): Promise<void> {
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
    if (typeof acr.tenant === 'string') outcome.tenant = acr.tenant
    // RFC 8707 §2: one resource per token request here (repeats were refused above); checked before the grant spends anything.
    const resource = params.get('resource')
    if (resource !== undefined) checkResourceIndicator(client, resource, deps.resources)
    // RFC 9449 §5: the proof is checked before the grant spends a code or a refresh token; a bound refresh
    // token then redeems only with the same key (the guard runs before it is spent).
    const binding = await deps.senderConstraints?.atTokenEndpoint({ ctx, client, grantType: grant.type, url: `${ctx.state.issuer}${ctx.path}` })
    // This request's refresh tokens: a rotated token is spent together with its successor's storing, in issue().
    const refreshTokens = deps.refreshTokens.forRequest(ctx.state.requestId)
    const services = requestServices(deps.services(), refreshTokens, ctx.state.requestId)
    const guarded = deps.senderConstraints ? { ...services, refreshTokens: deps.senderConstraints.guardRefreshTokens(services.refreshTokens, binding) } : services

    const grantRequest: GrantRequest = {
      grantType: grant.type,
      client,
      params: declared,
      requestedScope,
      acr,
      issuer: ctx.state.issuer,
      clientIp: ctx.state.clientIp,
      services: guarded,
      ...(resource !== undefined ? { resource } : {}),
    }
    try {
      const decided = await grant.handle(grantRequest)
      // A result starts as a failure: a handler that decides nothing grants nothing.
      if (!decided) throw new OAuthError('invalid_grant', 'the grant was not accepted')
      if (decided.subject !== undefined) outcome.sub = decided.subject
      const tenant = (decided.context ?? acr).tenant
      if (typeof tenant === 'string') outcome.tenant = tenant
      const body = await issue(deps, { issuer: ctx.state.issuer, client, grant: decided, grantType: grant.type, resource, acr, binding, refreshTokens })
      // A redeemed token that no new refresh token took is spent before the answer goes out.
      await refreshTokens.settle()
      ctx.body = body
    } catch (err) {
      await refreshTokens.abandon()
      throw err
    }
  }
}

/**
 * The grant's services, carrying this request's id to the audit lines they write: a sign-in's
 * `login.*` (the password grant, or any grant calling `users.authenticate`) and a refresh
 * token's `refresh.reuse_detected`.
 */
function requestServices(services: GrantServices, refreshTokens: RefreshRotation, requestId: string | undefined): GrantServices {
  if (requestId === undefined) return { ...services, refreshTokens }
  const { users } = services
  return {
    ...services,
    users: { ...users, authenticate: (login) => users.authenticate(login.requestId === undefined ? { ...login, requestId } : login) },
    refreshTokens,
  }
}

/** What the audit line of a token request may name, filled in as the request goes. */
interface Outcome {
  sub?: string
  tenant?: string
}

interface IssueInput {
  issuer: string
  client: Client
  grant: Grant
  grantType: string
  /** The request's RFC 8707 `resource`, already checked against config and the client. */
  resource: string | undefined
  /** The request's parsed acr_values; the grant's `context` wins when it has one. */
  acr: AcrContext
  /** What the sender-constraint hooks proved (RFC 9449 `cnf.jkt`); absent: a Bearer token. */
  binding: IssueBinding | undefined
  /** This request's refresh tokens: a new one of a redeemed token's family is its rotation. */
  refreshTokens: RefreshRotation
}

/** Fosite's PopulateTokenEndpointResponse: the core alone mints and stores tokens. */
async function issue(deps: TokenEndpointDeps, input: IssueInput): Promise<JsonObject> {
  const { settings, tokens, registry } = deps
  const { issuer, client, grant, grantType } = input
  const scope = grant.scope
  if (!Array.isArray(scope) || !isSubset(scope, client.scopes)) throw new OAuthError('invalid_scope', 'granted scope is not allowed for this client')
  const subject = grant.subject ?? client.client_id
  const context = grant.context ?? input.acr
  // RFC 8707 / RFC 9068 §3: the token is for one API, with that API's scopes (and the OIDC ones) only.
  const target = decideAudience({
    client, requested: input.resource, scope, grantResources: grant.resources, resources: deps.resources, owners: deps.scopeOwners,
  })
  // A grant that names its own audience (token exchange's `audience`) keeps it over one implied by scope;
  // a requested `resource` joins it (RFC 8693 §2.1 allows both).
  const resource = grant.audience !== undefined && input.resource === undefined ? undefined : target.resource
  const accessScope = target.scope
  const scopeText = formatScope(accessScope)
  const configuredTtl = resource?.accessTokenTtl ?? client.access_token_ttl ?? settings.accessTokenTtl
  // A grant may shorten, never extend, the configured lifetime (e.g. token exchange: not past the subject token).
  const ttl = typeof grant.expiresIn === 'number' && grant.expiresIn >= 1 ? Math.min(configuredTtl, Math.floor(grant.expiresIn)) : configuredTtl

  const userBound = grant.subject !== undefined
  // A refresh token is only useful to a client that may redeem it, through a loaded grant.
  const wantsRefresh = (grant.refreshToken ?? scope.includes('offline_access')) &&
    userBound && client.grant_types.includes('refresh_token') && registry.grants.has('refresh_token')
  const grantId = grant.grantId ?? (wantsRefresh ? randomToken(16) : undefined)
  // OIDC Core §3.1.2.1: an ID token only for a user and only when `openid` is granted (a narrowed refresh may drop it).
  let idOptions = grant.idToken === false || !userBound || !scope.includes('openid') ? undefined : (grant.idToken ?? {})
  // SPEC §10: the session the grant was made in (a refresh carries it in its stored session state).
  const sid = typeof grant.sid === 'string' ? grant.sid : typeof grant.session?.sid === 'string' ? grant.session.sid : undefined
  if (typeof grant.sid === 'string' && userBound) {
    const recorded = await deps.sessions.recordGrant(grant.sid, client.client_id, grantId, scope.includes('offline_access'), grant.sessionExp)
    if (!recorded) throw new OAuthError('invalid_grant', 'the session this authorization was made in has ended')
  }
  if (idOptions && sid !== undefined && idOptions.sid === undefined) idOptions = { ...idOptions, sid }

  // The user and their claims are looked up once, and only when something needs them.
  const users = deps.users()
  const needsUser = userBound && (idOptions !== undefined || (resource?.claims.length ?? 0) > 0 || deps.claims.hasHooks)
  const user: User | undefined = grant.user ?? (needsUser ? await users.findById(subject, context) : undefined)
  let userClaims: JsonObject | undefined
  const claimsOfUser = async (): Promise<JsonObject> => (userClaims ??= user ? await users.claims(user, scope) : {})
  const tenantClaim: JsonObject = settings.tenantClaim !== false && typeof context.tenant === 'string' ? { [settings.tenantClaim]: context.tenant } : {}
  const hookBase = { client, grantType, context, ...(user ? { user } : {}) }

  // Access token claims, later sources winning: the grant's own, the resource's user claims, hooks, the tenant.
  const accessClaims: JsonObject = { ...(grant.claims ?? {}) }
  if (resource && userBound && resource.claims.length > 0) Object.assign(accessClaims, pick(await claimsOfUser(), resource.claims))
  if (deps.claims.hasHooks) {
    Object.assign(accessClaims, await deps.claims.fromHooks({ ...hookBase, kind: 'access_token', scope: accessScope, ...(resource ? { resource: resource.id } : {}) }))
  }
  Object.assign(accessClaims, tenantClaim)

  const accessToken = await tokens.signAccessToken({
    issuer,
    client,
    subject,
    scope: scopeText,
    audience: audienceOf(grant.audience, resource?.id) ?? client.client_id,
    ttl,
    ...(grantId ? { grantId } : {}),
    ...(Object.keys(accessClaims).length > 0 ? { claims: accessClaims } : {}),
    ...(idOptions?.authTime !== undefined ? { authTime: idOptions.authTime } : {}),
    ...(idOptions?.acr ? { acr: idOptions.acr } : {}),
    ...(input.binding ? { cnf: input.binding.cnf } : {}),
  })
  const body: JsonObject = { ...(grant.extra ?? {}) }
  body.access_token = accessToken
  body.token_type = input.binding?.tokenType ?? 'Bearer'
  body.expires_in = ttl
  body.scope = scopeText

  if (wantsRefresh && userBound && grantId) {
    const refreshScope = grant.refreshScope ?? scope
    if (!Array.isArray(refreshScope) || !isSubset(refreshScope, client.scopes)) throw new OAuthError('invalid_scope', 'granted scope is not allowed for this client')
    body.refresh_token = await input.refreshTokens.issue({
      client_id: client.client_id,
      sub: subject,
      scope: refreshScope,
      grant_id: grantId,
      ...(grant.context ? { context: grant.context } : {}),
      session: { ...(grant.session ?? {}), ...(sid !== undefined ? { sid } : {}), ...(idOptions?.authTime !== undefined ? { auth_time: idOptions.authTime } : {}), ...(idOptions?.acr ? { acr: idOptions.acr } : {}) },
      // RFC 8707 §2.2: later refreshes may ask for any resource of the original authorization.
      ...(target.authorized.length > 0 ? { resources: target.authorized } : {}),
      // RFC 9449 §5: a public client's refresh token is bound to the key its proofs use.
      ...(input.binding?.bindRefreshToken ? { cnf: input.binding.cnf } : {}),
    }, settings.refreshTokenTtl)
    // A new family (not a refresh continuing one): remember it for consent revocation.
    if (grant.grantId === undefined || typeof grant.sid === 'string') await deps.consent.recordGrant(subject, client.client_id, grantId)
  }

  if (idOptions && userBound) {
    // OIDC Core §5.4: the user's claims that a granted scope lists, then the hooks', then the tenant.
    const claims: JsonObject = user ? deps.claims.forScopes(await claimsOfUser(), scope) : {}
    if (deps.claims.hasHooks) Object.assign(claims, await deps.claims.fromHooks({ ...hookBase, kind: 'id_token', scope }))
    Object.assign(claims, tenantClaim)
    body.id_token = await tokens.signId({ issuer, client, subject, claims, options: idOptions, accessToken, ttl: settings.idTokenTtl })
  }
  return body
}

function audienceOf(fromGrant: string | readonly string[] | undefined, resource: string | undefined): string | string[] | undefined {
  if (fromGrant === undefined) return resource
  const list = typeof fromGrant === 'string' ? [fromGrant] : [...fromGrant]
  if (resource !== undefined && !list.includes(resource)) list.push(resource)
  return list.length === 1 ? list[0] : list
}
