import { OAuthError } from '../errors.js'
import type {
  Client, Confirmation, JsonObject, RefreshTokenRecord, RefreshTokens, SenderBinding, SenderConstraint, SenderResourceRequest, SenderTokenRequest,
} from '../interfaces.js'

/** What the token endpoint issues with: the merged binding of every hook that proved one. */
export interface IssueBinding {
  readonly cnf: Confirmation
  readonly tokenType: string
  readonly bindRefreshToken: boolean
}

/**
 * The sender-constraint hooks plugins registered (RFC 9449 DPoP; RFC 8705 mTLS could be
 * another). The core asks them at the token endpoint (before the grant decides) and at
 * userinfo, binds refresh tokens they ask to bind, and answers `cnf` / `token_type` at
 * introspection. No hook loaded: every method is a no-op, tokens are plain Bearer.
 */
export class SenderConstraints {
  private readonly hooks: SenderConstraint[] = []
  private readonly members = new Map<string, string>()
  private readonly schemes = new Map<string, SenderConstraint>()

  /** Register a hook; a `cnf` member or scheme owned twice is a start error (returned as a message). */
  add(hook: SenderConstraint): string | undefined {
    for (const m of hook.confirmationMembers) {
      const prior = this.members.get(m)
      if (prior) return `cnf member "${m}" is already checked by ${prior}`
    }
    for (const s of hook.schemes ?? []) {
      const prior = this.schemes.get(s.toLowerCase())
      if (prior || s.toLowerCase() === 'bearer') return `authorization scheme "${s}" is already handled${prior ? ` by ${prior.name}` : ''}`
    }
    for (const m of hook.confirmationMembers) this.members.set(m, hook.name)
    for (const s of hook.schemes ?? []) this.schemes.set(s.toLowerCase(), hook)
    this.hooks.push(hook)
    return undefined
  }

  get loaded(): readonly SenderConstraint[] {
    return this.hooks
  }

  /** Whether a hook handles this (lower-cased) authorization scheme at resource endpoints. */
  hasScheme(scheme: string): boolean {
    return this.schemes.has(scheme)
  }

  /** Token endpoint, before the grant runs: the binding of the request (`undefined`: a Bearer token). */
  async atTokenEndpoint(request: SenderTokenRequest): Promise<IssueBinding | undefined> {
    if (this.hooks.length === 0) return undefined
    const cnf: JsonObject = {}
    let tokenType: string | undefined
    let bindRefreshToken = false
    let any = false
    for (const hook of this.hooks) {
      const binding: SenderBinding | undefined = await hook.tokenRequest(request)
      if (!binding) continue
      any = true
      // A hook sets only the members it declared: one hook can never overwrite another's.
      for (const m of hook.confirmationMembers) if (binding.cnf[m] !== undefined) cnf[m] = binding.cnf[m]!
      tokenType ??= binding.tokenType
      bindRefreshToken ||= binding.bindRefreshToken === true
    }
    if (!any || Object.keys(cnf).length === 0) return undefined
    return { cnf, tokenType: tokenType ?? 'Bearer', bindRefreshToken }
  }

  /**
   * The refresh-token service a grant sees for one request: a bound refresh token redeems only
   * when the request proved the same binding (RFC 9449 §5), checked before the token is spent.
   */
  guardRefreshTokens(refreshTokens: RefreshTokens, binding: IssueBinding | undefined): RefreshTokens {
    return {
      issue: (record, ttl) => refreshTokens.issue(record, ttl),
      peek: (token) => refreshTokens.peek(token),
      revoke: (token, client) => refreshTokens.revoke(token, client),
      rotates: (client) => refreshTokens.rotates(client),
      redeem: (token: string, client: Client, check?: (record: RefreshTokenRecord) => Promise<void> | void) =>
        refreshTokens.redeem(token, client, async (record) => {
          checkRefreshBinding(record, binding)
          if (check) await check(record)
        }),
    }
  }

  /** Userinfo, after the token verified: every hook owning its `cnf` or the scheme it came with must agree. */
  async atResource(request: SenderResourceRequest): Promise<void> {
    const cnf = confirmationOf(request.claims.cnf)
    const asked = new Set<SenderConstraint>()
    const byScheme = this.schemes.get(request.scheme)
    if (byScheme) asked.add(byScheme)
    if (cnf) {
      for (const member of Object.keys(cnf)) {
        const owner = this.hooks.find((h) => h.confirmationMembers.includes(member))
        // Fail closed: a binding no loaded hook can check is never accepted as a plain Bearer token.
        if (!owner) throw new OAuthError('invalid_token', 'the access token is bound in a way this server cannot check', { status: 401, headers: { 'WWW-Authenticate': 'Bearer realm="grantd", error="invalid_token"' } })
        asked.add(owner)
      }
    }
    for (const hook of asked) await hook.resourceRequest(request)
  }

  /** RFC 9449 §6.2 / RFC 7662: the `token_type` of a token with this `cnf`. */
  tokenTypeOf(cnf: unknown): string {
    const c = confirmationOf(cnf)
    if (c) {
      for (const hook of this.hooks) if (hook.tokenType && hook.confirmationMembers.some((m) => m in c)) return hook.tokenType
    }
    return 'Bearer'
  }
}

function confirmationOf(value: unknown): Confirmation | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length > 0 ? (value as Confirmation) : undefined
}

/** Every member the refresh token is bound to must be proved again, with the same value. */
function checkRefreshBinding(record: RefreshTokenRecord, binding: IssueBinding | undefined): void {
  const bound = confirmationOf(record.cnf)
  if (!bound) return
  for (const [member, value] of Object.entries(bound)) {
    if (binding === undefined || JSON.stringify(binding.cnf[member]) !== JSON.stringify(value)) {
      throw new OAuthError('invalid_grant', 'the refresh token is bound to another key (RFC 9449 §5)', { detail: `refresh token cnf.${member} not proved` })
    }
  }
}
