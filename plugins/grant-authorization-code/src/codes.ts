import {
  OAuthError, randomToken, secretKey, type AcrContext, type Grant, type GrantRequest, type Logger, type ResourceDefinition, type Store,
} from '@grantd/core'
import { isValidVerifier, verifierMatches, type PkceMethod } from './pkce.js'

/** What a code stands for; stored under the code's SHA-256, never the code itself. */
export interface CodeRecord {
  client_id: string
  redirect_uri: string
  scope: readonly string[]
  sub: string
  auth_time: number
  iss: string
  context: AcrContext
  nonce?: string
  acr?: string
  amr?: readonly string[]
  idp?: string
  code_challenge?: string
  code_challenge_method?: PkceMethod
  /** RFC 8707 resources of the authorization request. */
  resources?: readonly string[]
  /** The SSO session the code was issued in (SPEC §10). */
  sid?: string
  /** That session's expiry when the code was issued: the token endpoint records the grant without reading the session first. */
  sid_exp?: number
}

function invalidGrant(description: string, detail?: string): OAuthError {
  return new OAuthError('invalid_grant', description, detail !== undefined ? { detail } : {})
}

/**
 * Authorization codes (RFC 6749 §4.1, §10.5). A code is `<grant id>.<256 random bits>`:
 * the grant id starts the family every token issued from the code belongs to, so a
 * replay can revoke all of them with one `revokeFamily` (§4.1.2: "SHOULD revoke (when
 * possible) all tokens previously issued based on that authorization code").
 */
export class AuthorizationCodes {
  constructor(
    private readonly store: () => Store,
    private readonly codeTtl: number,
    /** How long a revoked family is remembered: as long as any of its tokens could live. */
    private readonly revocationTtl: number,
    private readonly log: Logger,
    /** Config `resources` (RFC 8707), to refuse a `resource` the code does not cover before spending it. */
    private readonly resources: ReadonlyMap<string, ResourceDefinition> = new Map(),
  ) {}

  async issue(record: CodeRecord): Promise<string> {
    const family = randomToken(16)
    const code = `${family}.${randomToken(32)}`
    await this.store().put(`ac:${secretKey(code)}`, JSON.stringify(record), this.codeTtl, { family })
    return code
  }

  /**
   * The `authorization_code` grant's decision. Checks run before the code is consumed,
   * so a request with a wrong verifier or redirect_uri cannot burn a victim's code. Then a
   * "used" marker is written and the code consumed atomically: of N concurrent
   * redemptions exactly one wins, and every other one — concurrent or later — finds the
   * marker (or loses the consume) and revokes the family.
   */
  async redeem(req: GrantRequest): Promise<Grant> {
    const { client, params } = req
    const code = params.code!
    const family = familyOf(code)
    if (!family) throw invalidGrant('the authorization code is invalid or expired', 'malformed code')
    const store = this.store()
    const key = secretKey(code)
    // Two independent reads, sent together (one round trip on Redis); the consume below is the atomic gate.
    const [revoked, raw] = await Promise.all([store.isFamilyRevoked(family), store.get(`ac:${key}`, { family })])
    if (revoked) throw invalidGrant('the authorization code is invalid or expired', 'family revoked')

    if (raw === undefined) {
      if ((await store.get(`acu:${key}`, { family })) !== undefined) return this.replayed(family, client.client_id)
      throw invalidGrant('the authorization code is invalid or expired', 'unknown or expired code')
    }
    const record = JSON.parse(raw) as CodeRecord
    if (record.client_id !== client.client_id) throw invalidGrant('the authorization code was issued to another client')
    if (record.iss !== req.issuer) throw invalidGrant('the authorization code was issued by another issuer')
    // RFC 6749 §4.1.3: identical to the authorization request's redirect_uri.
    if (params.redirect_uri !== record.redirect_uri) throw invalidGrant('redirect_uri does not match the authorization request')
    const verifier = params.code_verifier
    if (record.code_challenge !== undefined && record.code_challenge_method !== undefined) {
      if (verifier === undefined) throw invalidGrant('code_verifier is required (PKCE)')
      if (!isValidVerifier(verifier)) throw invalidGrant('code_verifier must be 43-128 characters of [A-Za-z0-9-._~]')
      if (!verifierMatches(verifier, { challenge: record.code_challenge, method: record.code_challenge_method })) throw invalidGrant('code_verifier does not match the code_challenge')
    } else if (verifier !== undefined) {
      // RFC 9700 §2.1.1: a verifier for a code issued without a challenge is a downgrade attempt.
      throw invalidGrant('code_verifier sent for a code issued without code_challenge')
    }
    // RFC 8707 §2.2: a resource outside the authorization is refused before the code is spent (the core checks it again).
    if (req.resource !== undefined && !this.covers(record, req.resource)) throw new OAuthError('invalid_target', 'the resource was not part of the authorization')

    // The "used" marker is left in the same atomic step as the consume; losing a
    // concurrent redemption makes this request the second use.
    const leave = { key: `acu:${key}`, value: family, ttlSeconds: this.codeTtl }
    if ((await store.consume(`ac:${key}`, { family, leave })) === undefined) return this.replayed(family, client.client_id)

    const user = await req.services.users.findById(record.sub, record.context)
    if (!user) throw invalidGrant('the user is no longer active')
    return {
      subject: record.sub,
      user,
      scope: record.scope,
      grantId: family,
      ...(record.sid !== undefined ? { sid: record.sid, ...(typeof record.sid_exp === 'number' ? { sessionExp: record.sid_exp } : {}) } : {}),
      context: record.context,
      // The token endpoint's `resource` must be one of these (or of the scopes' resources when none was named).
      resources: record.resources ?? [],
      session: { ...(record.amr ? { amr: [...record.amr] } : {}), ...(record.idp ? { idp: record.idp } : {}) },
      idToken: {
        authTime: record.auth_time,
        ...(record.nonce !== undefined ? { nonce: record.nonce } : {}),
        ...(record.acr !== undefined ? { acr: record.acr } : {}),
        ...(record.amr !== undefined ? { amr: record.amr } : {}),
      },
    }
  }

  /** The code's resources, or when it named none, the resources owning its scopes. */
  private covers(record: CodeRecord, resource: string): boolean {
    if (record.resources && record.resources.length > 0) return record.resources.includes(resource)
    return this.resources.get(resource)?.scopes.some((s) => record.scope.includes(s)) ?? false
  }

  private async replayed(family: string, clientId: string): Promise<never> {
    this.log.warn({ client_id: clientId, grant: family }, 'authorization code used twice: revoking every token issued from it')
    await this.store().revokeFamily(family, this.revocationTtl)
    throw invalidGrant('the authorization code was already used')
  }
}

function familyOf(code: string): string | undefined {
  if (code.length > 128) return undefined
  const match = /^([A-Za-z0-9_-]{22})\.[A-Za-z0-9_-]{43}$/.exec(code)
  return match ? match[1] : undefined
}
