/**
 * The public contract of grantd: everything a plugin, a store adapter or a user
 * service needs to know about the core lives in this one file.
 *
 * The split follows Fosite's "decide, then populate": a grant plugin decides *what*
 * is granted (a {@link Grant}); the core alone authenticates clients, checks scopes,
 * issues, signs and stores tokens and writes every response and error.
 */
import type { ParameterizedContext } from 'koa'
import type { JSONWebKeySet } from 'jose'

/** A value that survives JSON (token claims, response fields, stored state). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }
/** A JSON object: extra claims, extra response fields, session state. */
export type JsonObject = { [key: string]: JsonValue }

/* ------------------------------------------------------------------ clients */

/** How a client authenticates at the token endpoint (RFC 7591 `token_endpoint_auth_method`). */
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none'

/** A JWS alg grantd signs with (RFC 7518 §3.1, RFC 8037 §3.1). */
export type SigningAlg = 'ES256' | 'ES384' | 'RS256' | 'PS256' | 'EdDSA'

/** A registered client, as configured (RFC 7591 field names) and normalised at boot. */
export interface Client {
  readonly client_id: string
  readonly token_endpoint_auth_method: ClientAuthMethod
  readonly grant_types: readonly string[]
  readonly redirect_uris: readonly string[]
  /** Scopes the client may ask for; requests are checked against this set. */
  readonly scopes: ReadonlySet<string>
  /** Public clients (`none`) must always use PKCE; this forces it for confidential ones too. */
  readonly require_pkce: boolean
  /** RFC 7636 `plain` is refused unless the client is registered for it. */
  readonly allow_plain_pkce: boolean
  /** External providers (acr `idp:NAME`) this client may send its users to. */
  readonly identity_providers: readonly string[]
  readonly client_name?: string
  /** Public keys for `private_key_jwt`. */
  readonly jwks?: JSONWebKeySet
  /** Per-client override of `tokens.accessTokenTtl`. */
  readonly access_token_ttl?: number
  /** RFC 7591: the ID tokens' alg; absent: RS256 when a key has it, else the first key's (OIDC Core §15.1). */
  readonly id_token_signed_response_alg?: SigningAlg
  /** The access tokens' alg (named like RFC 7591's fields); absent: the first signing key's. */
  readonly access_token_signed_response_alg?: SigningAlg
  /** Whether the client holds a secret or keys (RFC 6749 §2.1). */
  readonly confidential: boolean
  /** API resources (RFC 8707) the client may ask tokens for; absent: every configured resource. */
  readonly resources?: readonly string[]
  /** RP-Initiated Logout 1.0: where the end-session endpoint may send the browser back (exact match). */
  readonly post_logout_redirect_uris?: readonly string[]
  /** Back-Channel Logout 1.0 §2.2: receives a `logout_token` POST when a session it got tokens in ends. */
  readonly backchannel_logout_uri?: string
  readonly backchannel_logout_session_required?: boolean
  /** Front-Channel Logout 1.0 §2: rendered in an iframe on the signed-out page. */
  readonly frontchannel_logout_uri?: string
  readonly frontchannel_logout_session_required?: boolean
  /** Ask the user to approve the requested scopes (third-party clients; SPEC §10). Default false. */
  readonly require_consent?: boolean
  /** RFC 9126 §6: authorization requests must be pushed (PAR) first; a plain request is `invalid_request`. */
  readonly require_pushed_authorization_requests?: boolean
  /** RFC 9449 §5.2: every token request of this client must carry a DPoP proof (needs `@grantd/dpop`). */
  readonly dpop_bound_access_tokens?: boolean
  /** Registered at run time (RFC 7591) and served from the store, not from the config file. */
  readonly dynamic?: boolean
}

/**
 * Every client, wherever it lives: the config file (answered from memory) or the store
 * (clients registered at run time, RFC 7591; looked up on a miss and cached for
 * {@link ClientDirectory.cacheSeconds}, so a change made by one process reaches the others
 * within that bound). Resolve it as `host.resolve('clients')`; `host.config.clients` holds
 * the config-file clients only.
 */
export interface ClientDirectory {
  /** The client with this id, or `undefined`. */
  find(clientId: string): Promise<Client | undefined>
  /** Whether the id belongs to a config-file client (such ids can never be registered, changed or deleted). */
  isConfigured(clientId: string): boolean
  /** How long another process may keep serving a stored client after it changed or was deleted. */
  readonly cacheSeconds: number
  /**
   * Create or replace a stored client. `metadata` is validated exactly like a config-file
   * client (client_secret only as a `$scrypt$` hash) plus the boot checks (grant types
   * loaded, signing algs with keys); failures throw `OAuthError('invalid_redirect_uri' |
   * 'invalid_client_metadata')` (RFC 7591 §3.2.2). `registration` is the caller's own
   * bookkeeping, stored alongside (hashes only, never a secret in clear).
   */
  save(clientId: string, metadata: JsonObject, registration: JsonObject): Promise<Client>
  /** The stored record of a run-time client, uncached (config clients: `undefined`). */
  read(clientId: string): Promise<StoredClientRecord | undefined>
  /** Delete a stored client; its tokens stop working (it no longer authenticates, userinfo refuses them). */
  remove(clientId: string): Promise<boolean>
  /**
   * Let stored clients' back-channel URIs target private, loopback and link-local
   * addresses (default: refused, SSRF; SPEC §10). Config clients are never filtered.
   */
  allowPrivateNetworkUris(allowed: boolean): void
}

/** A run-time client as the store holds it. */
export interface StoredClientRecord {
  readonly metadata: JsonObject
  readonly registration: JsonObject
}

/* ------------------------------------------------------------- acr_values */

/**
 * What the loaded acr handlers made of `acr_values`. `raw` keeps every value
 * untouched, including prefixes no plugin claims (never an error, SPEC §6).
 */
export interface AcrContext {
  tenant?: string
  idp?: string
  readonly raw: readonly string[]
  /** Values contributed by custom acr handlers, keyed as they return them. */
  readonly [key: string]: unknown
}

/** Turns one `prefix:value` of `acr_values` into part of the {@link AcrContext}. */
export interface AcrHandler {
  /** The part before the first `:`; the first value per prefix wins. */
  readonly prefix: string
  /** Throw `OAuthError('invalid_request', …)` for a malformed value; return what to merge. */
  parse(value: string): Partial<Record<string, unknown>> | undefined
}

/* ------------------------------------------------------------------ users */

/** A user as the user service knows it; `sub` is stable and never reassigned. */
export interface User {
  readonly sub: string
  readonly tenant?: string
  readonly [key: string]: unknown
}

/** A username/password sign-in (login form or password grant) handed to {@link UserService.authenticate}. */
export interface PasswordLogin {
  username: string
  password: string
  context: AcrContext
  client: Client
  /** The signing-in client's address (`ctx.state.clientIp`), for per-address brute-force limits. */
  clientIp?: string
  /** The request's id (`ctx.state.requestId`, or {@link GrantRequest}'s), for the audit lines of the sign-in. */
  requestId?: string
}

/** An identity an external OIDC provider vouched for, handed to {@link UserService.authenticateExternal}. */
export interface ExternalLogin {
  /** The configured provider name (`idp:NAME`). */
  idp: string
  /** The upstream `sub`. */
  subject: string
  /** Upstream ID token / userinfo claims, already validated by the relying party. */
  claims: JsonObject
  context: AcrContext
  client: Client
  /** Provider options, e.g. `autoProvision`. */
  provider: { readonly autoProvision?: boolean }
}

/**
 * Where users come from. The core never sees a password store; it asks this service.
 * Every method must answer in about the same time whether or not the user exists.
 */
export interface UserService {
  /** Check a username/password; `undefined` for any failure (no hint which part). */
  authenticate(login: PasswordLogin): Promise<User | undefined>
  /**
   * The account a sign-in names, after the service's own normalisation (tenant, Unicode, case), without
   * checking any password: its `sub`, or `undefined` when no account matches. The core's brute-force
   * limits count failures per account with it.
   */
  resolveAccount?(login: { username: string; context: AcrContext; client: Client }): Promise<string | undefined>
  /** Map an external identity to a local user; `undefined` refuses it. */
  authenticateExternal(login: ExternalLogin): Promise<User | undefined>
  findById(sub: string, context: AcrContext): Promise<User | undefined>
  /**
   * The user's claims (standard OIDC Core §5.1 claims and custom ones such as `roles`).
   * Return every claim the service holds for the user: the core releases only those a
   * granted scope lists (config `scopes`, SPEC §11), and a resource's `claims` for access
   * tokens whose `aud` is that resource. `scopes` is informational.
   */
  claims(user: User, scopes: readonly string[]): Promise<JsonObject>
  /** Asked again on every refresh: a disabled user stops getting tokens. */
  isActive(sub: string, context: AcrContext): Promise<boolean>
  /**
   * Whether `authenticate` can check passwords against the external provider `idp`
   * (`acr_values=idp:NAME` on a password grant, as IdentityServer3 user services could).
   * Absent or false: the password grant refuses `idp:` with `invalid_request`.
   */
  acceptsPasswordIdp?(idp: string, client: Client): boolean
  /**
   * Called once before the server listens (and by `grantd check` and the `grantd users`
   * CLI): connect, check the backend's schema. A throw refuses the start; its message is
   * the one-line reason (e.g. "schema is at version 0, run grantd users migrate").
   */
  start?(): Promise<void>
  /**
   * Resolves when the backend (a database, a directory) answers, rejects when it does not:
   * `/readyz` answers 503 meanwhile, and `grantd check` calls it (SPEC §13; absent: it probes
   * with `findById` of a sub nobody has). A service without a backend of its own leaves it out.
   */
  ping?(): Promise<void>
  /**
   * Present when the service can manage its users (the `grantd users` CLI). A read-only
   * service (users from the config file) leaves it out and the CLI says so.
   */
  readonly management?: UserManagement
}

/** A user as an administrator sees it (`grantd users list`): never a password or a hash. */
export interface ManagedUser {
  readonly sub: string
  readonly username?: string
  readonly tenant?: string
  readonly disabled: boolean
  readonly claims: JsonObject
  /** External identities mapped to this user (`idp`, upstream `sub`). */
  readonly links: ReadonlyArray<{ readonly idp: string; readonly subject: string }>
}

/**
 * Which user a management command means: by `sub`, or by username (normalised like a
 * sign-in) within `tenant`; without a tenant the username must name exactly one user.
 */
export type UserSelector = { readonly sub: string } | { readonly username: string; readonly tenant?: string }

/** A new user for {@link UserManagement.add}; `password` absent: external sign-in only. */
export interface NewUser {
  readonly username: string
  readonly tenant?: string
  readonly claims?: JsonObject
  readonly password?: string
}

/**
 * What a user service that owns its users offers administrators (`grantd users …`).
 * Methods reject with an `Error` whose message is one line a person can act on
 * ("no user matches", "username already taken in tenant acme"). Passwords arrive in
 * clear only here and must be stored as hashes.
 */
export interface UserManagement {
  /** Bring the backend's schema up to date; idempotent. Absent when there is nothing to migrate. */
  migrate?(): Promise<{ readonly from: number; readonly to: number }>
  add(user: NewUser): Promise<ManagedUser>
  setPassword(who: UserSelector, password: string): Promise<ManagedUser>
  setDisabled(who: UserSelector, disabled: boolean): Promise<ManagedUser>
  link(who: UserSelector, idp: string, subject: string): Promise<ManagedUser>
  list(filter: { readonly tenant?: string }): Promise<readonly ManagedUser[]>
}

/* ------------------------------------------------------------------ stores */

/**
 * Entries of one grant family (a code and every refresh token descended from it)
 * carry the family id, so a store can revoke them together and keep them on one
 * Redis Cluster slot.
 */
export interface EntryOptions {
  readonly family?: string
}

/** An entry written by a store call besides its main key (same family). */
export interface StoreEntry {
  readonly key: string
  readonly value: string
  readonly ttlSeconds: number
}

/** {@link Store.consume} options: the family, and a marker to leave behind. */
export interface ConsumeOptions extends EntryOptions {
  readonly leave?: StoreEntry
}

/** {@link Store.rotate} options: {@link Store.consume}'s, and the entry that takes the consumed one's place. */
export interface RotateOptions extends ConsumeOptions {
  readonly next: StoreEntry
}

/** {@link Store.indexUpdate}: remove member `id`, then append `member` (JSON text) if given. */
export interface IndexChange {
  readonly id: string
  /** The new member's JSON text (an object with this `id` and `exp`); absent to only remove. */
  readonly member?: string
  /** The new member's `exp` (seconds since the epoch). */
  readonly exp?: number
  /** Seconds since the epoch, by the caller's clock: members with `exp <= now` are dropped. */
  readonly now: number
  readonly maxMembers: number
}

/**
 * Narrow key/value storage for short-lived secrets' records. Keys are already hashes
 * when they derive from a secret; values are opaque strings (JSON from the core).
 * Methods reject with {@link StoreUnavailableError} when the backend cannot be reached.
 */
export interface Store {
  readonly name: string
  put(key: string, value: string, ttlSeconds: number, options?: EntryOptions): Promise<void>
  /** Set only when absent (replay caches, locks); true when this call stored it. */
  add(key: string, value: string, ttlSeconds: number, options?: EntryOptions): Promise<boolean>
  get(key: string, options?: EntryOptions): Promise<string | undefined>
  /**
   * Atomic get-and-delete: of N concurrent callers exactly one sees the value. With
   * `leave`, a marker entry (same family) is written first, in the same atomic step, so
   * whoever finds the value gone also finds the marker (replay detection in one round trip).
   */
  consume(key: string, options?: ConsumeOptions): Promise<string | undefined>
  /**
   * Optional: {@link consume} with `leave`, then — only when this call got the value — a put of
   * `next`, all in one atomic step (refresh-token rotation: spend the token, leave its tombstone,
   * store its successor in one round trip). Resolves to the consumed value, `undefined` when
   * another caller had it (then `next` is not written). Stores without it get the same outcome
   * from the core as `consume` followed by `put`.
   */
  rotate?(key: string, options: RotateOptions): Promise<string | undefined>
  delete(key: string, options?: EntryOptions): Promise<boolean>
  /** Atomic counter with a TTL set on creation (rate limits). */
  increment(key: string, ttlSeconds: number): Promise<number>
  /**
   * Atomically take one back from a live counter, keeping its TTL, never below zero; an
   * absent or expired counter stays absent (answers 0). Brute-force limits reserve an attempt
   * with {@link increment} before checking it, and give the reservation back with this when
   * the attempt turns out not to be a failure: the check and the count stay one atomic step.
   */
  decrement(key: string): Promise<number>
  /** Delete every entry of the family and remember the revocation for `ttlSeconds`. */
  revokeFamily(family: string, ttlSeconds: number): Promise<void>
  isFamilyRevoked(family: string): Promise<boolean>
  /**
   * Optional: one atomic read-modify-write of a small index kept as a JSON array of
   * members `{"id": string, "exp": number, ...}` (the core's session and consent indexes):
   * drop the members whose `exp` is not after `change.now` (a store may leave some of them
   * for a later update: readers skip expired members), drop the member with
   * `change.id`, append `change.member` (a member's JSON text, whose id is `change.id`)
   * when given (the core writes it as `{"id":…,"exp":…,…}`, id first and exp second, and
   * a store may keep a list in that shape to update it without parsing), keep the last `change.maxMembers`, and store the array with a TTL reaching
   * its latest `exp` (delete the key when it is left empty). A value that is not such an
   * array counts as empty. Without this method the core does the same under a lock taken
   * with {@link add}; a store that has it must use it for every writer of a key (it does
   * not honour that lock).
   */
  indexUpdate?(key: string, change: IndexChange): Promise<void>
  /** Resolves when the backend answers; readiness probes call this. */
  ping(): Promise<void>
  close(): Promise<void>
}

/* ------------------------------------------------------------------ grants */

/**
 * What a grant handler receives. By the time it runs the core has parsed the body,
 * rejected repeated parameters, authenticated the client, checked that the client is
 * registered for this grant type, checked `required` parameters, and checked that the
 * requested scope is within the client's registration.
 */
export interface GrantRequest {
  /** The `grant_type` value this handler was registered for. */
  readonly grantType: string
  /** The authenticated client (confidential unless the grant allows public clients). */
  readonly client: Client
  /** The body parameters the grant declared; each present at most once. */
  readonly params: Readonly<Record<string, string | undefined>>
  /** Requested scope, split on spaces; `undefined` when the request had none. */
  readonly requestedScope: readonly string[] | undefined
  /** `acr_values` as the loaded acr handlers parsed them (empty when absent). */
  readonly acr: AcrContext
  /** The issuer of this request (SPEC §4); pass it to `services.tokens.verifyAccessToken`. */
  readonly issuer: string
  /** The requester's address (behind a trusted proxy, from X-Forwarded-For); pass it on as {@link PasswordLogin.clientIp}. */
  readonly clientIp?: string
  /** The store, the user service, and a verifier for tokens this server issued. */
  readonly services: GrantServices
  /** RFC 8707 `resource` of the request (already checked against config and the client); the core sets `aud` from it. */
  readonly resource?: string
}

/** Core services a grant handler may use. */
export interface GrantServices {
  /** Short-lived state (one-time values, replay caches); prefix your keys with your plugin name. */
  readonly store: Store
  readonly users: UserService
  /** Verifies access tokens this server issued (signature, issuer, expiry, revocation). */
  readonly tokens: TokenVerifier
  /** Redeem or inspect refresh tokens (the refresh_token grant uses it). */
  readonly refreshTokens: RefreshTokens
  /** Structured logger; never log secrets or tokens. */
  readonly log: Logger
}

/** What an ID token should say about the authentication (OIDC Core §2). */
export interface IdTokenOptions {
  nonce?: string
  /** Seconds since the epoch of the user's authentication. */
  authTime?: number
  acr?: string
  amr?: readonly string[]
  /** The SSO session the authentication belongs to (OIDC `sid`, Back-Channel Logout §2.1). */
  sid?: string
}

/**
 * The decision a grant plugin returns. Returning nothing grants nothing: the core
 * answers `invalid_grant` (IdentityServer's "result starts as a failure").
 */
export interface Grant {
  /** The user; absent for client-only grants (then `sub` is the client_id). */
  subject?: string
  /** The user record, when the grant has it (ID token claims, userinfo). */
  user?: User
  /** Granted scope; the core refuses anything outside the client's registration. */
  scope: readonly string[]
  /** Extra access-token claims (RFC 8693 `act`, custom claims). Reserved claims are ignored. */
  claims?: JsonObject
  /** The access token's `aud`; default: the calling client's id. */
  audience?: string | readonly string[]
  /**
   * Upper bound in seconds for the access token's lifetime; the core uses the smaller of
   * this and the configured `accessTokenTtl` (a grant may shorten, never extend it).
   */
  expiresIn?: number
  /** Extra top-level response fields, e.g. RFC 8693 `issued_token_type`. */
  extra?: JsonObject
  /** Issue a refresh token. Default: scope has `offline_access`, a subject, and the client may refresh. */
  refreshToken?: boolean
  /**
   * Scope of the issued refresh token; default `scope`. A refresh that narrows the access
   * token keeps the refresh token's original scope (RFC 6749 §6).
   */
  refreshScope?: readonly string[]
  /** ID token: default when scope has `openid` and there is a subject; `false` never. */
  idToken?: IdTokenOptions | false
  /** Continue an existing grant family (refresh) instead of starting a new one. */
  grantId?: string
  /** acr context to remember with a refresh token. */
  context?: AcrContext
  /** Extra state carried with a refresh token (e.g. auth_time, amr), never sent to the client. */
  session?: JsonObject
  /**
   * RFC 8707 resources an earlier authorization covered (the code's or the refresh token's):
   * a `resource` at the token endpoint outside them is `invalid_target`. An empty list means
   * the resources that own the granted scopes. Absent: the grant is its own authorization
   * (client_credentials, password), any resource the client may use is accepted.
   */
  resources?: readonly string[]
  /**
   * The SSO session the user authorized this grant in ({@link SessionService}). The core
   * records the client as a participant (back-channel logout), puts `sid` in the ID token,
   * and ending the session revokes this grant's tokens unless `offline_access` was granted.
   * A session that has already ended refuses the grant (`invalid_grant`).
   */
  sid?: string
  /**
   * That session's `exp` (seconds since the epoch) when the grant's authorization was made,
   * if the grant knows it: the core then records the participant without reading the session
   * first (it still reads it once, after recording, to refuse a grant of an ended session).
   */
  sessionExp?: number
}

/**
 * Decides a grant: return a {@link Grant}, or throw `OAuthError` to refuse with that
 * error. Returning nothing is `invalid_grant`; any other thrown error is `server_error`.
 */
export type GrantHandler = (request: GrantRequest) => Promise<Grant | undefined | void>

/** A grant type a plugin adds to the token endpoint, registered with `host.grant()`. */
export interface GrantTypeDefinition {
  /** The `grant_type` value; two plugins claiming one type is a start error. */
  readonly type: string
  /** Body parameters the handler reads; the core rejects duplicates of them. */
  readonly parameters?: readonly string[]
  /** Parameters whose absence is `invalid_request` before the handler runs. */
  readonly required?: readonly string[]
  /** Whether `none` clients may use the grant (default false, RFC 6749 §4.4 etc.). */
  readonly allowPublicClients?: boolean
  /** Whether `acr_values` is read (parsed into {@link GrantRequest.acr}). */
  readonly acrValues?: boolean
  readonly handle: GrantHandler
}

/* ------------------------------------------------------------------ tokens */

/** Claims of a verified access token this server issued (RFC 9068). */
export interface AccessTokenClaims {
  readonly iss: string
  readonly sub: string
  readonly aud: string | string[]
  readonly client_id: string
  readonly scope: string
  readonly exp: number
  readonly iat: number
  readonly jti: string
  /** grantd's grant family id, present when the token belongs to a revocable grant. */
  readonly gid?: string
  readonly [claim: string]: JsonValue | undefined
}

/** Checks access tokens this server issued; grant handlers reach it as `services.tokens`. */
export interface TokenVerifier {
  /**
   * Verify an access token this server issued: signature, `typ`, `iss`, expiry, and
   * that neither it nor its grant has been revoked. `undefined` when any check fails.
   */
  verifyAccessToken(token: string, issuer: string): Promise<AccessTokenClaims | undefined>
  /** Record a revocation of one access token until it would expire (RFC 7009). */
  revokeAccessToken(claims: AccessTokenClaims): Promise<void>
}

/** What the core remembers about a refresh token (stored hashed, never in clear). */
export interface RefreshTokenRecord {
  readonly client_id: string
  readonly sub: string
  readonly scope: readonly string[]
  readonly grant_id: string
  readonly iat: number
  readonly exp: number
  readonly context?: AcrContext
  readonly session?: JsonObject
  /** RFC 8707 §2.2: the resources the grant was authorized for, remembered for every refresh. */
  readonly resources?: readonly string[]
  /**
   * RFC 7800 confirmation the refresh token is bound to (a {@link SenderConstraint}'s, e.g. RFC 9449 §5 `jkt`
   * for public clients): the core refuses to redeem it unless the request proves the same binding.
   */
  readonly cnf?: Confirmation
}

/** The refresh-token families the core keeps (rotation and reuse detection live here). */
export interface RefreshTokens {
  /** Store a new refresh token of `record.grant_id`'s family and return it. */
  issue(record: Omit<RefreshTokenRecord, 'iat' | 'exp'>, ttlSeconds: number): Promise<string>
  /**
   * Redeem a presented refresh token for `client`. With rotation the token is consumed;
   * presenting a rotated-out token revokes the whole family. `undefined` → invalid_grant.
   * (A grant's `services.refreshTokens` spends it together with storing the new token the
   * core issues for the same family — one store call — and in any case before the response.)
   * `check` runs once the record is found and before it is spent: throwing from it (a
   * widened scope, a disabled user) refuses the request without using the token up.
   */
  redeem(token: string, client: Client, check?: (record: RefreshTokenRecord) => Promise<void> | void): Promise<RefreshTokenRecord | undefined>
  /** Look a token up without using it (introspection). */
  peek(token: string): Promise<RefreshTokenRecord | undefined>
  /** Revoke the family the token belongs to (RFC 7009). */
  revoke(token: string, client: Client): Promise<void>
  /**
   * Whether redeeming `client`'s tokens rotates them: `tokens.refreshTokenRotation`, and always
   * for public clients (RFC 9700 §4.14.2: their refresh tokens must be rotated or sender-constrained).
   */
  rotates(client: Client): boolean
}

/* ------------------------------------------------------------------ plugins */

/** A pino-compatible structured logger: an object of fields first, then a message. */
export interface Logger {
  info(obj: Record<string, unknown>, msg?: string): void
  warn(obj: Record<string, unknown>, msg?: string): void
  error(obj: Record<string, unknown>, msg?: string): void
  debug(obj: Record<string, unknown>, msg?: string): void
}

/** Per-request state the core puts on `ctx.state` before any route runs. */
export interface RequestState {
  /** The public base URL for this request (SPEC §4). */
  issuer: string
  /** The client address, from X-Forwarded-For only behind a trusted proxy. */
  clientIp: string
  /** Whether the public URL is https (cookies get `Secure`). */
  secure: boolean
  /** The authenticated client, once known (request logs). */
  clientId?: string
  /** The token request's grant type, once the grant is selected (metrics). */
  grantType?: string
  /** This request's id (X-Request-Id from a trusted proxy, else generated); echoed as X-Request-Id. */
  requestId?: string
  /**
   * The OAuth error code of a refused request, for its request log line. Error responses the core
   * writes set it; a route answering with an HTML error page sets it itself (e.g. `access_denied`).
   */
  error?: string
}

/** The Koa context a plugin route receives; `ctx.state` is {@link RequestState}. */
export type RouteContext = ParameterizedContext<RequestState>
/** An extra endpoint added with `host.route()`; throw `OAuthError` for an OAuth error response. */
export type RouteHandler = (ctx: RouteContext) => Promise<void> | void
/** Methods `host.route()` accepts. */
export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete'

/** A view of the server configuration for plugins (read-only). */
export interface HostConfig {
  readonly issuer?: string
  readonly tokens: TokenSettings
  /** Config-file clients only; `host.resolve('clients').find(id)` sees registered ones too. */
  readonly clients: ReadonlyMap<string, Client>
  /** The folder of the config file; plugins resolve their relative paths against it. */
  readonly baseDir: string
  /** Secrets for cookies and CSRF tokens (first signs, all verify). */
  readonly cookieKeys: readonly string[]
  /** Config `scopes` merged over the built-in OIDC ones (consent pages read descriptions here). */
  readonly scopes: ReadonlyMap<string, ScopeDefinition>
  /** Config `resources` (RFC 8707 API resources), by id. */
  readonly resources: ReadonlyMap<string, ResourceDefinition>
  /** Seconds a brute-force counter lives (config `throttle.windowSeconds`); plugins' own limits use the same window. */
  readonly throttleWindowSeconds?: number
}

/** A scope: what a consent page says about it, and which user claims it releases (OIDC Core §5.4). */
export interface ScopeDefinition {
  readonly description?: string
  readonly claims: readonly string[]
}

/** An API resource (RFC 8707): access tokens for it carry `aud` = `id` and only its scopes. */
export interface ResourceDefinition {
  /** The resource indicator, an absolute URI (RFC 8707 §2). */
  readonly id: string
  /** Scopes this resource owns; no other resource may own them. */
  readonly scopes: readonly string[]
  /** Lifetime of access tokens for this resource; default the client's or `tokens.accessTokenTtl`. */
  readonly accessTokenTtl?: number
  /** User claims every user access token for this resource carries, whatever the scope. */
  readonly claims: readonly string[]
}

/** The `tokens` section of the config file, with defaults applied (lifetimes in seconds). */
export interface TokenSettings {
  readonly accessTokenTtl: number
  readonly idTokenTtl: number
  readonly codeTtl: number
  readonly refreshTokenTtl: number
  readonly refreshTokenRotation: boolean
  /** Seconds a rotated-out refresh token is still honoured (parallel refresh, 0 = never). */
  readonly refreshTokenReuseInterval: number
  readonly accessTokenFormat: 'jwt'
  /** Claim that carries the acr `tenant:` context in access and ID tokens; `false`: none. */
  readonly tenantClaim: string | false
}

/** Issues tokens for grants decided outside the token endpoint (kept for plugins' own routes). */
export interface TokenIssuer {
  /** Sign an ID token (e.g. for an interaction a plugin completes itself). */
  signIdToken(input: { issuer: string; client: Client; user: User; scope: readonly string[]; options: IdTokenOptions; accessToken?: string }): Promise<string>
}

/**
 * Authorization interaction hooks (the authorize endpoint and its login page belong to
 * `@grantd/grant-authorization-code`; other plugins such as `@grantd/acr-idp` extend it).
 */
export interface PendingAuthorization {
  /** Opaque id of the stored authorization request (for callbacks). */
  readonly id: string
  readonly client: Client
  readonly redirectUri: string
  readonly scope: readonly string[]
  readonly state?: string
  readonly nonce?: string
  readonly codeChallenge?: string
  readonly codeChallengeMethod?: 'S256' | 'plain'
  readonly acr: AcrContext
  readonly prompt: readonly string[]
  readonly issuer: string
  /** RFC 8707 `resource` values of the request (validated), carried into the code. */
  readonly resources?: readonly string[]
}

/** A link shown on the login page (e.g. "Sign in with Upstream"). */
export interface LoginOption {
  readonly label: string
  /** A path below the issuer, or an absolute URL. */
  readonly href: string
}

/** Hooks into the login page of `@grantd/grant-authorization-code`, registered with `host.interaction()`. */
export interface InteractionHandler {
  readonly name: string
  /**
   * Runs before the login form; answering `'handled'` means the hook took over the
   * response (e.g. redirected to an upstream IdP). A string is a notice shown on the form.
   */
  beforeLogin?(ctx: RouteContext, pending: PendingAuthorization): Promise<'handled' | { notice: string } | undefined>
  /** Extra ways to sign in shown on the login page. */
  loginOptions?(pending: PendingAuthorization): readonly LoginOption[]
}

/** Registered by `@grantd/grant-authorization-code` as the `authorization` service. */
export interface AuthorizationService {
  load(id: string): Promise<PendingAuthorization | undefined>
  /** The user is authenticated: start a session, issue a code, redirect to the client. */
  complete(ctx: RouteContext, pending: PendingAuthorization, user: User, auth: { amr?: readonly string[]; idp?: string; acr?: string }): Promise<void>
  /** End the request with an OAuth error redirect to the client (RFC 6749 §4.1.2.1). */
  fail(ctx: RouteContext, pending: PendingAuthorization, error: string, description?: string): Promise<void>
  /** Answer `request_uri` with `resolver` (one per server; a second is a start error). */
  useRequestUris(resolver: RequestUriResolver): void
}

/** A form body's parameters as the core parsed them (RFC 6749 §3.1: an empty value counts as absent). */
export interface FormValues {
  /** The single value of `name`; repeated, over 4096 characters or holding NUL throws `invalid_request`. */
  get(name: string): string | undefined
  /** Every value of `name`, in order and unchecked (repeatable parameters such as RFC 8707 `resource`). */
  all(name: string): readonly string[]
  names(): IterableIterator<string>
  count(name: string): number
}

/**
 * Client authentication as the token endpoint does it (SPEC §5), for plugins' own
 * client-authenticated endpoints (PAR, device authorization). Resolve it as `clientAuth`.
 */
export interface ClientAuthService {
  /**
   * Read an `application/x-www-form-urlencoded` body (16 KiB) and authenticate its client:
   * 401 `invalid_client` on failure. The client-authentication parameters and the names in
   * `reads` are checked first (not repeated, not oversize, no NUL: `invalid_request`); other
   * parameters are not (RFC 6749 §3.2: unrecognised ones are ignored). A `client_assertion`
   * may name the issuer, the token endpoint or this endpoint's URL.
   */
  readForm(ctx: RouteContext, options?: { readonly reads?: readonly string[] }): Promise<{ params: FormValues; client: Client }>
}

/**
 * The parameters of an authorization request a plugin stands in for (RFC 9126 PAR): name and
 * value pairs in order; a repeatable parameter (RFC 8707 `resource`) appears once per value.
 */
export type AuthorizationParameters = ReadonlyArray<readonly [name: string, value: string]>

/**
 * Lets a plugin answer `request_uri` at the authorization endpoint (RFC 9126 §4), registered
 * with {@link AuthorizationService.useRequestUris}. The endpoint then ignores every other
 * front-channel parameter but `client_id` and validates what `resolve` returns as if it had
 * come in the query.
 */
export interface RequestUriResolver {
  readonly name: string
  /**
   * The parameters `requestUri` stands for, bound to `client`, spending it (one-time). Throw
   * `OAuthError('invalid_request_uri', …)` when it is unknown, expired, used or another client's.
   */
  resolve(requestUri: string, client: Client): Promise<AuthorizationParameters>
  /** Whether a request that did not come through `request_uri` must be refused for `client` (RFC 9126 §5). */
  requires?(client: Client): boolean
}

/** Parses `acr_values` with every loaded acr handler (the authorization endpoint uses it). */
export interface AcrParser {
  parse(acrValues: string | undefined): AcrContext
}

/* ---------------------------------------------------------------- sessions */

/** A signed-in browser (SSO session), as the core's {@link SessionService} keeps it. */
export interface Session {
  /** Public session id: the ID token's `sid`, the logout token's `sid`. Not a secret. */
  readonly sid: string
  readonly sub: string
  /** Seconds since the epoch (OIDC Core `auth_time`). */
  readonly auth_time: number
  /** Seconds since the epoch when the session expires. */
  readonly exp: number
  /** The issuer the session was made under (logout tokens for it name this `iss`). */
  readonly iss: string
  readonly amr?: readonly string[]
  readonly acr?: string
  /** The external provider the user signed in with (`idp:NAME`), if any. */
  readonly idp?: string
  readonly tenant?: string
}

/** What a plugin knows when it signs a browser in. */
export interface SessionInit {
  readonly sub: string
  readonly amr?: readonly string[]
  readonly acr?: string
  readonly idp?: string
  readonly tenant?: string
  /** Seconds the session lasts (default 8 hours). */
  readonly ttlSeconds?: number
}

/** A session that was just ended, and who was told. */
export interface EndedSession {
  readonly session: Session
  /** Clients that got tokens in the session. */
  readonly clients: readonly Client[]
  /** Resolves once every back-channel notification got its first answer or timed out (never longer than the timeout). */
  readonly notified: Promise<void>
}

/**
 * SSO sessions live in the core (SPEC §10) so that every way of signing a browser in (the
 * login form, an external IdP, a device-flow page) and every way of ending one (the
 * end-session endpoint, the CLI, a plugin) share one store layout and one logout: a plugin
 * never needs to know how sessions are kept. Resolve it as `host.resolve('sessions')`.
 */
export interface SessionService {
  /** The session of the browser making this request (its cookie), if any and still live. */
  current(ctx: RouteContext): Promise<Session | undefined>
  /**
   * Sign the browser in: a fresh cookie secret every time (no session fixation). The same
   * user keeps the session id (and its clients); a different user ends the previous session.
   */
  start(ctx: RouteContext, init: SessionInit): Promise<Session>
  get(sid: string): Promise<Session | undefined>
  /**
   * End a session: delete it, revoke the tokens of its grants made without `offline_access`,
   * send back-channel logout tokens. `undefined` when no such session is live.
   */
  end(sid: string, requestId?: string): Promise<EndedSession | undefined>
  /** Every live session of a user. */
  listBySubject(sub: string): Promise<Session[]>
  /** Client ids that got tokens in the session. */
  clientsOf(sid: string): Promise<string[]>
  /** Remove the session cookie from the browser (the end-session endpoint does this). */
  clearCookie(ctx: RouteContext): void
}

/** Remembered consent (SPEC §10), per user and client. Resolve it as `host.resolve('consent')`. */
export interface ConsentService {
  /** Whether the user already approved every one of `scope` for the client. */
  covers(sub: string, clientId: string, scope: readonly string[]): Promise<boolean>
  /** Remember an approval (adds to what was approved before). */
  grant(sub: string, clientId: string, scope: readonly string[], requestId?: string): Promise<void>
  /** Forget the approval and revoke every refresh token the client holds for the user. */
  revoke(sub: string, clientId: string, requestId?: string): Promise<void>
}

/** Named services plugins can resolve from the host (the awilix container's cradle). */
export interface Services {
  acr: AcrParser
  store: Store
  users: UserService
  tokens: TokenVerifier
  refreshTokens: RefreshTokens
  tokenIssuer: TokenIssuer
  config: HostConfig
  log: Logger
  /** Present when `@grantd/grant-authorization-code` is loaded. */
  authorization?: AuthorizationService
  /** Client authentication for plugin endpoints, exactly as at the token endpoint. */
  clientAuth: ClientAuthService
  /** Every login-page hook plugins registered with `host.interaction()`, in load order. */
  interactions: readonly InteractionHandler[]
  /** SSO sessions (SPEC §10). */
  sessions: SessionService
  /** Remembered consent (SPEC §10). */
  consent: ConsentService
  /** Every client: config file and store (RFC 7591 registrations). */
  clients: ClientDirectory
  [name: string]: unknown
}

/** What a plugin's `register` receives: the one way to add behaviour to the core. */
export interface PluginHost<Options = unknown> {
  readonly name: string
  readonly options: Options
  readonly config: HostConfig
  readonly log: Logger
  /** Add a grant type to the token endpoint; a type registered twice is a start error. */
  grant(definition: GrantTypeDefinition): void
  /** Handle one `acr_values` prefix; a prefix registered twice is a start error. */
  acr(handler: AcrHandler): void
  /** Hook into the login page (needs `@grantd/grant-authorization-code`). */
  interaction(handler: InteractionHandler): void
  /** Add an endpoint below the issuer; a method and path registered twice is a start error. */
  route(method: HttpMethod, path: string, handler: RouteHandler): void
  /** Provide the user service (one per server). */
  users(service: UserService): void
  /** Provide the store (one per server). */
  store(store: Store): void
  /** Offer a named service to plugins loaded later (they declare a dependency on you). */
  provide(name: string, value: unknown): void
  /** Resolve a core or plugin service. Lazy: call it from handlers, not at register time, for core services. */
  resolve<K extends keyof Services & string>(name: K): Services[K]
  /** Runs on shutdown after requests drain, in reverse load order. */
  onClose(hook: () => Promise<void> | void): void
  /**
   * Add fields to the discovery document for an issuer (an endpoint the plugin serves,
   * what it supports). Fields the core sets itself (`issuer`, `token_endpoint`, …) win.
   */
  discovery(fields: (issuer: string) => JsonObject): void
  /**
   * Take part in a configuration reload (SIGHUP, SPEC §13). The hook gets this plugin's
   * new options (already validated by `options`) and prepares everything that can fail:
   * a throw refuses the whole reload and the running config keeps serving. It returns the
   * step that switches over; those steps run together, synchronously, once every plugin
   * and the core have prepared, so no request sees half of a reload. `host.config.clients`
   * is updated in place by the core: a plugin that only reads it needs no hook.
   */
  onReload(hook: ReloadHook<Options>): void
  /**
   * Add claims to tokens and userinfo, for every grant (built-in and custom). Registered
   * claims ({@link REGISTERED_CLAIMS}) cannot be set: naming one in `options.claims` is a
   * start error; returning one fails the request with `server_error` (never a token with
   * a changed claim).
   */
  claims(hook: ClaimsHook, options?: ClaimsHookOptions): void
  /**
   * Sender-constrain tokens (RFC 9449 DPoP; RFC 8705 mTLS the same way): the hook checks the
   * proof at the token endpoint, binds what is issued (`cnf`), and checks the binding at the
   * resource endpoints the core owns (userinfo). Two hooks owning one `cnf` member or one
   * authorization scheme is a start error.
   */
  senderConstraint(constraint: SenderConstraint): void
}

/** Claims the core owns in tokens and userinfo; a claims hook may never set them. */
export const REGISTERED_CLAIMS: ReadonlySet<string> = new Set([
  'iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'client_id', 'scope', 'cnf', 'sid', 'auth_time', 'nonce', 'acr', 'amr', 'at_hash',
  // grantd's own: the grant family (revocation) and the ID token's authorized party.
  'gid', 'azp',
])

/** What a {@link ClaimsHook} is asked about. */
export interface ClaimsHookInput {
  readonly kind: 'access_token' | 'id_token' | 'userinfo'
  readonly client: Client
  /** The user, for user-bound tokens (absent for client_credentials). */
  readonly user?: User
  /** The scope of what is issued: the access token's (narrowed to its resource), the grant's for an ID token. */
  readonly scope: readonly string[]
  /** The `grant_type` that issued it; absent at userinfo (the access token does not record it). */
  readonly grantType?: string
  /** The resource id the access token is for (its `aud`), when it is for a configured resource. */
  readonly resource?: string
  /** The acr context of the grant (tenant, idp, raw values). */
  readonly context: AcrContext
}

/** Returns extra claims (or nothing); see {@link PluginHost.claims}. */
export type ClaimsHook = (input: ClaimsHookInput) => JsonObject | undefined | void | Promise<JsonObject | undefined | void>

/** What a claims hook declares at start. */
export interface ClaimsHookOptions {
  /** Names the hook may return, checked at start against {@link REGISTERED_CLAIMS}. */
  readonly claims?: readonly string[]
}

/* ------------------------------------------------------- sender constraints */

/**
 * RFC 7800 `cnf` of a sender-constrained token: `{ jkt }` (RFC 9449 §6), `{ "x5t#S256" }`
 * (RFC 8705 §3.1). Only the core sets it, from the {@link SenderConstraint}s: it is a
 * registered claim no grant or claims hook can set.
 */
export type Confirmation = JsonObject

/** What a {@link SenderConstraint} is asked at the token endpoint. */
export interface SenderTokenRequest {
  /** The request (headers such as `DPoP`; for mTLS, the TLS socket). Set response headers here (`DPoP-Nonce`). */
  readonly ctx: RouteContext
  /** The authenticated client. */
  readonly client: Client
  /** The `grant_type` of the request (already known to be loaded and allowed for the client). */
  readonly grantType: string
  /** The URL the request was sent to, without query: `issuer` + path (what DPoP's `htu` names). */
  readonly url: string
}

/** A binding a {@link SenderConstraint} proved at the token endpoint. */
export interface SenderBinding {
  /** Members of the issued access token's `cnf` (the core merges those of every hook). */
  readonly cnf: Confirmation
  /** The response's `token_type` (RFC 9449 §5: `DPoP`); absent keeps `Bearer` (RFC 8705 §3 does). */
  readonly tokenType?: string
  /**
   * Bind the refresh token issued with this response too (RFC 9449 §5: public clients'; a confidential
   * client's refresh token is already bound to its credentials). The core stores `cnf` with the refresh
   * record and refuses a redemption that does not prove the same binding (`invalid_grant`).
   */
  readonly bindRefreshToken?: boolean
}

/** What a {@link SenderConstraint} is asked at a protected resource the core owns (userinfo). */
export interface SenderResourceRequest {
  readonly ctx: RouteContext
  /** The authorization scheme the token came with, lower-cased (`bearer` also for a form-body token, RFC 6750 §2.2). */
  readonly scheme: string
  /** The access token as presented (DPoP's `ath` is its hash). */
  readonly token: string
  /** Its verified claims; `cnf` when bound. */
  readonly claims: AccessTokenClaims
  /** The URL the request was sent to, without query: `issuer` + path. */
  readonly url: string
}

/**
 * A sender-constraint hook (RFC 9449 DPoP, RFC 8705 mTLS), registered with
 * {@link PluginHost.senderConstraint}. The core runs it at the token endpoint after client
 * authentication and before the grant decides (a refused proof spends no code or refresh
 * token), and at userinfo after the access token verified. Throw `OAuthError` to refuse.
 */
export interface SenderConstraint {
  /** For logs and start errors. */
  readonly name: string
  /** Authorization schemes (RFC 9110 §11.4) tokens are presented with at resource endpoints, e.g. `DPoP`. */
  readonly schemes?: readonly string[]
  /** The `cnf` members this hook sets and checks (`jkt`, `x5t#S256`): a token carrying one is checked by it. */
  readonly confirmationMembers: readonly string[]
  /** Token endpoint: the binding the request proves, `undefined` when it proves none (then a plain Bearer token). */
  tokenRequest(request: SenderTokenRequest): Promise<SenderBinding | undefined> | SenderBinding | undefined
  /**
   * Resource endpoint: called when the token's `cnf` has one of {@link confirmationMembers} or the
   * request used one of {@link schemes}; throw `OAuthError` (401 with a `WWW-Authenticate` challenge) to refuse.
   */
  resourceRequest(request: SenderResourceRequest): Promise<void> | void
  /** `token_type` of a token bound by this hook, for introspection (RFC 9449 §6.2: `DPoP`); absent: `Bearer`. */
  readonly tokenType?: string
}
/** See {@link PluginHost.onReload}: prepare with the new options, return the commit step. */
export type ReloadHook<Options = unknown> = (options: Options) => Promise<(() => void) | void> | (() => void) | void

/**
 * A plugin: what its module default-exports (through {@link definePlugin}). `Options` is
 * the type `options` returns, and what `register` sees as `host.options`.
 */
export interface PluginDefinition<Options = unknown> {
  /** Unique; other plugins name it in `dependencies`. */
  readonly name: string
  /** Plugins that must be loaded (by name) for this one to work; checked at boot. */
  readonly dependencies?: readonly string[]
  /**
   * Validate and normalise the `options` object from the config file. Throw an Error
   * whose message names the offending key; the loader prefixes it with the plugin's path.
   */
  readonly options?: (raw: unknown) => Options
  /**
   * Called once at start, in config order, with the validated options. Register grants,
   * acr handlers, routes and services here; a throw stops the server with a one-line error.
   */
  register(host: PluginHost<Options>): void | Promise<void>
}

/**
 * Identity helper that gives plugin authors type inference and a stable shape:
 *
 * ```ts
 * export default definePlugin({
 *   name: 'grant-example',
 *   register(host) {
 *     host.grant({ type: 'urn:example:grant', parameters: ['ticket'], required: ['ticket'],
 *       async handle(req) { return { subject: 'u-1', scope: req.requestedScope ?? [] } } })
 *   },
 * })
 * ```
 */
export function definePlugin<Options = unknown>(definition: PluginDefinition<Options>): PluginDefinition<Options> {
  return definition
}
