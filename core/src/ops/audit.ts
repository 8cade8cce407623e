import { createHmac, randomUUID } from 'node:crypto'
import type { Logger, UserService } from '../interfaces.js'
import { isSignInThrottled, normalizeUsername } from './throttle.js'

/** The audit events of SPEC §13: one JSON log line each, field `event`. */
export type AuditEvent =
  | 'token.issued' | 'token.refused'
  | 'login.succeeded' | 'login.failed' | 'login.locked'
  | 'client.auth_failed' | 'refresh.reuse_detected'
  | 'session.ended' | 'consent.granted' | 'consent.revoked' | 'consent.denied'

/**
 * What an audit line may carry. Only identifiers and outcomes: never a password, token,
 * code, secret or username (a username goes in as {@link UserHasher.hash}).
 */
export interface AuditFields {
  client_id?: string
  tenant?: string
  sub?: string
  /** A keyed hash of the folded username ({@link UserHasher}). */
  user?: string
  grant_type?: string
  /** The OAuth error code of a refusal. */
  error?: string
  sid?: string
  scope?: string
  client_ids?: string[]
  revoked_grants?: number
  /** The request the event happened in (`ctx.state.requestId`), when there is one. */
  request_id?: string | undefined
}

/*
 * The request id travels explicitly (ctx.state.requestId, PasswordLogin.requestId, the optional
 * requestId of sessions.end / consent.grant / consent.revoke), not through AsyncLocalStorage:
 * on Node 20 an AsyncLocalStorage turns on promise hooks for every promise of the process,
 * which cost 13 % of the server CPU per client_credentials request in the A/B bench.
 */

/** Ids a proxy may hand us: a bounded token charset (UUIDs, hex, base64url, `trace-span` forms). */
const REQUEST_ID = /^[A-Za-z0-9._:@-]{1,128}$/

/**
 * The request id: the `X-Request-Id` header when it comes from a trusted proxy and looks
 * like an id (bounded length and charset, so it cannot forge log fields or bloat lines),
 * else a fresh UUID.
 */
export function requestIdFor(header: string | string[] | undefined, trusted: boolean): string {
  if (trusted && typeof header === 'string' && REQUEST_ID.test(header)) return header
  return randomUUID()
}

/** Write one audit line (info level); pass the request's id as `request_id`. */
export function audit(log: Logger, event: AuditEvent, fields: AuditFields, msg?: string): void {
  const line: Record<string, unknown> = { event }
  for (const key in fields) {
    const value = fields[key as keyof AuditFields]
    if (value !== undefined) line[key] = value
  }
  log.info(line, msg ?? event)
}

const CLIENT_AUTH_FAILED = Symbol('grantd.audit.clientAuthFailed')

/** Mark a client-authentication refusal; the request's outermost middleware writes its `client.auth_failed` line. */
export function markClientAuthFailed(err: object, fields: AuditFields): void {
  Object.defineProperty(err, CLIENT_AUTH_FAILED, { value: fields, configurable: true })
}

/** The `client.auth_failed` fields of a marked error. */
export function clientAuthFailure(err: unknown): AuditFields | undefined {
  return typeof err === 'object' && err !== null ? (err as { [CLIENT_AUTH_FAILED]?: AuditFields })[CLIENT_AUTH_FAILED] : undefined
}

/**
 * Pseudonymous user ids for audit lines: HMAC-SHA256 of the folded username (the throttle's
 * fold, so `Alice` and `alice` are one user) under a key derived from the first cookie key.
 * Lines of one user correlate; the username cannot be read back without the key.
 */
export class UserHasher {
  private readonly key: Buffer

  constructor(secret: string) {
    this.key = createHmac('sha256', secret).update('grantd audit user v1').digest()
  }

  hash(username: string): string {
    return createHmac('sha256', this.key).update(normalizeUsername(username)).digest('base64url').slice(0, 22)
  }
}

/**
 * The user service with every `authenticate` audited: `login.succeeded`, `login.failed` or
 * `login.locked` (throttled), for the login form, the password grant and any plugin alike.
 * Wraps the throttled service (like the metrics), so a lock-out is seen as one.
 */
export function auditSignIns(users: UserService, log: Logger, hasher: UserHasher): UserService {
  const wrapped: UserService = {
    authenticate: async (login) => {
      const base = {
        client_id: login.client.client_id,
        request_id: login.requestId,
        ...(typeof login.context.tenant === 'string' ? { tenant: login.context.tenant } : {}),
      }
      let user
      try {
        user = await users.authenticate(login)
      } catch (err) {
        if (isSignInThrottled(err)) audit(log, 'login.locked', { ...base, user: hasher.hash(login.username) })
        throw err
      }
      if (user) audit(log, 'login.succeeded', { ...base, sub: user.sub, user: hasher.hash(login.username) })
      else audit(log, 'login.failed', { ...base, user: hasher.hash(login.username) })
      return user
    },
    authenticateExternal: (login) => users.authenticateExternal(login),
    findById: (sub, context) => users.findById(sub, context),
    claims: (user, scopes) => users.claims(user, scopes),
    isActive: (sub, context) => users.isActive(sub, context),
  }
  if (users.acceptsPasswordIdp) wrapped.acceptsPasswordIdp = (idp, client) => users.acceptsPasswordIdp!(idp, client)
  if (users.ping) wrapped.ping = () => users.ping!()
  if (users.resolveAccount) wrapped.resolveAccount = (login) => users.resolveAccount!(login)
  return wrapped
}
