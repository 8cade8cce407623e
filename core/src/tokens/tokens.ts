import { hash, randomBytes, randomFillSync, randomUUID } from 'node:crypto'
import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose'
import { JwsSigner } from './jws.js'
import { ID_TOKEN_DEFAULT_ALG, type KeySet } from './keys.js'
import type {
  AccessTokenClaims, Client, IdTokenOptions, JsonObject, Store, TokenIssuer, TokenSettings, TokenVerifier, User,
} from '../interfaces.js'

/** Claims a grant plugin may not set on an access token: the core owns them (RFC 9068 §2.2). */
const RESERVED = new Set(['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'client_id', 'scope', 'gid', 'auth_time', 'acr', 'cnf'])

export interface AccessTokenInput {
  issuer: string
  client: Client
  subject: string
  scope: string
  audience: string | readonly string[]
  ttl: number
  grantId?: string
  claims?: JsonObject
  authTime?: number
  acr?: string
  /** RFC 7800 confirmation from the sender-constraint hooks (RFC 9449 §6.1 `jkt`); only the core sets it. */
  cnf?: JsonObject
}

export interface IdTokenInput {
  issuer: string
  client: Client
  subject: string
  claims: JsonObject
  options: IdTokenOptions
  accessToken?: string
  ttl: number
}

function decodeClaims(token: string): JWTPayload | undefined {
  const part = token.split('.')[1]
  if (part === undefined) return undefined
  try {
    const value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown
    return typeof value === 'object' && value !== null ? (value as JWTPayload) : undefined
  } catch {
    return undefined
  }
}

/*
 * Random values come from a pool filled by the CSPRNG 4 KiB at a time (as Node's randomUUID
 * does): a flow draws ~7 of them, and `randomBytes` per value costs ~2.2 µs CPU against
 * ~0.13 µs from the pool. Every byte is handed out once, then the pool is refilled.
 */
const POOL_SIZE = 4096
const pool = Buffer.allocUnsafeSlow(POOL_SIZE)
let poolOffset = POOL_SIZE

/** Random opaque values: 256 bits by default, base64url. */
export function randomToken(bytes = 32): string {
  if (bytes > POOL_SIZE / 4) return randomBytes(bytes).toString('base64url')
  if (poolOffset + bytes > POOL_SIZE) {
    randomFillSync(pool)
    poolOffset = 0
  }
  const value = pool.toString('base64url', poolOffset, poolOffset + bytes)
  // Not left behind in the pool once handed out.
  pool.fill(0, poolOffset, poolOffset + bytes)
  poolOffset += bytes
  return value
}

/** Storage keys derived from secrets (codes, refresh tokens) are their SHA-256, never the secret. */
export function secretKey(secret: string): string {
  // One-shot crypto.hash: 1.25 → 0.52 µs per call (bench/components.ts).
  return hash('sha256', secret, 'base64url')
}

/**
 * Sign a claims set as a compact JWS (RFC 7515 §7.1) through node:crypto (jws.ts); jose
 * verifies. The core builds the claims itself from plain JSON values, so no deep clone or
 * re-check as jose's SignJWT does; its finite-number check on the time claims is kept.
 */
async function signClaims(payload: JWTPayload, signer: JwsSigner): Promise<string> {
  for (const claim of ['iat', 'nbf', 'exp'] as const) {
    const value = payload[claim]
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError(`"${claim}" claim must be a finite number`)
  }
  return signer.sign(JSON.stringify(payload))
}

/**
 * OIDC Core §3.1.3.6: left half of the hash of the access token, hash per the signing alg.
 * EdDSA names no hash; for Ed25519 (the only curve grantd signs with) it is SHA-512
 * (OpenID Connect Token Hash Algorithms 1.0, connect issue #1125).
 */
function atHash(accessToken: string, alg: string): string {
  const algorithm = alg.endsWith('384') ? 'sha384' : alg.endsWith('512') || alg === 'EdDSA' ? 'sha512' : 'sha256'
  const digest = hash(algorithm, accessToken, 'buffer')
  return digest.subarray(0, digest.length / 2).toString('base64url')
}

interface SignerPair { at: JwsSigner; id: JwsSigner; logout: JwsSigner }

/** Everything derived from one key set, swapped as one value when the keys change (SIGHUP, store rotation). */
interface KeyState {
  readonly keys: KeySet
  readonly verifyKeys: ReturnType<typeof createLocalJWKSet>
  /** Per alg, the current key of that alg as an access token and as an ID token signer. */
  readonly signers: ReadonlyMap<string, SignerPair>
  readonly defaultAccess: SignerPair
  readonly defaultId: SignerPair
  readonly verifyAlgs: string[]
}

function keyState(keys: KeySet): KeyState {
  const signers = new Map<string, SignerPair>()
  // Only current keys sign (SPEC §13); next and retired keys are published, so they verify.
  for (const key of keys.current) {
    if (signers.has(key.alg)) continue
    signers.set(key.alg, {
      at: new JwsSigner(key.keyObject, { alg: key.alg, kid: key.kid, typ: 'at+jwt' }),
      id: new JwsSigner(key.keyObject, { alg: key.alg, kid: key.kid, typ: 'JWT' }),
      // Back-Channel Logout 1.0 §2.4.
      logout: new JwsSigner(key.keyObject, { alg: key.alg, kid: key.kid, typ: 'logout+jwt' }),
    })
  }
  const defaultAccess = signers.get(keys.signing.alg)!
  return {
    keys,
    verifyKeys: createLocalJWKSet(keys.jwks),
    signers,
    defaultAccess,
    // OIDC Core §15.1: RS256 when a key has it, else the first key's alg.
    defaultId: signers.get(ID_TOKEN_DEFAULT_ALG) ?? defaultAccess,
    verifyAlgs: [...keys.publishedAlgs],
  }
}

/** Signs and verifies the server's JWTs; the only place tokens are minted. */
export class TokenService implements TokenVerifier, TokenIssuer {
  private state: KeyState

  constructor(
    keys: KeySet,
    private readonly store: Store,
    private readonly settings: TokenSettings,
  ) {
    this.state = keyState(keys)
  }

  /** The key set in use. */
  get keys(): KeySet {
    return this.state.keys
  }

  /**
   * Switch to another key set in one assignment: a request that already picked its
   * signer finishes with it, the next one signs with the new set.
   */
  useKeys(keys: KeySet): void {
    this.state = keyState(keys)
  }

  /** The client's `access_token_signed_response_alg` / `id_token_signed_response_alg` (boot-checked to have a key). */
  private signerFor(client: Client, kind: 'at' | 'id' | 'logout'): JwsSigner {
    const state = this.state
    const alg = kind === 'at' ? client.access_token_signed_response_alg : client.id_token_signed_response_alg
    if (alg === undefined) return (kind === 'at' ? state.defaultAccess : state.defaultId)[kind]
    const pair = state.signers.get(alg)
    // Never a silent fallback to another alg: the client would reject the token anyway.
    if (!pair) throw new Error(`no signing key has alg ${alg} (client ${client.client_id})`)
    return pair[kind]
  }

  /** RFC 9068 access token. */
  async signAccessToken(input: AccessTokenInput): Promise<string> {
    const now = Math.floor(Date.now() / 1000)
    const payload: JWTPayload = {}
    if (input.claims) {
      for (const [k, v] of Object.entries(input.claims)) if (!RESERVED.has(k)) payload[k] = v
    }
    payload.iss = input.issuer
    payload.sub = input.subject
    payload.aud = typeof input.audience === 'string' ? input.audience : [...input.audience]
    payload.client_id = input.client.client_id
    payload.scope = input.scope
    payload.iat = now
    payload.exp = now + input.ttl
    payload.jti = randomUUID()
    if (input.grantId) payload.gid = input.grantId
    if (input.authTime !== undefined) payload.auth_time = input.authTime
    if (input.acr) payload.acr = input.acr
    if (input.cnf) payload.cnf = input.cnf
    return signClaims(payload, this.signerFor(input.client, 'at'))
  }

  async signIdToken(input: { issuer: string; client: Client; user: User; scope: readonly string[]; options: IdTokenOptions; accessToken?: string }, claims: JsonObject = {}): Promise<string> {
    const idInput: IdTokenInput = {
      issuer: input.issuer, client: input.client, subject: input.user.sub, claims, options: input.options, ttl: this.settings.idTokenTtl,
    }
    if (input.accessToken !== undefined) idInput.accessToken = input.accessToken
    return this.signId(idInput)
  }

  /** OIDC Core §2 ID token. */
  async signId(input: IdTokenInput): Promise<string> {
    const now = Math.floor(Date.now() / 1000)
    // Object.assign, not a spread: V8 makes the spread copy slow to extend (7 µs vs 1 µs per ID token, bench/components.ts).
    const payload: JWTPayload = Object.assign({}, input.claims)
    payload.iss = input.issuer
    payload.sub = input.subject
    payload.aud = input.client.client_id
    payload.azp = input.client.client_id
    payload.iat = now
    payload.exp = now + input.ttl
    payload.auth_time = input.options.authTime ?? now
    if (input.options.nonce !== undefined) payload.nonce = input.options.nonce
    if (input.options.acr) payload.acr = input.options.acr
    if (input.options.amr && input.options.amr.length > 0) payload.amr = [...input.options.amr]
    if (input.options.sid !== undefined) payload.sid = input.options.sid
    const signer = this.signerFor(input.client, 'id')
    if (input.accessToken) payload.at_hash = atHash(input.accessToken, signer.alg)
    return signClaims(payload, signer)
  }

  /**
   * Back-Channel Logout 1.0 §2.4: `typ: logout+jwt`, the backchannel-logout event, `sub`
   * and `sid`, and never a `nonce` (so it cannot pass for an ID token).
   */
  async signLogoutToken(input: { issuer: string; client: Client; sub: string; sid: string }): Promise<string> {
    const now = Math.floor(Date.now() / 1000)
    const payload: JWTPayload = {
      iss: input.issuer, sub: input.sub, aud: input.client.client_id, iat: now, exp: now + 120, jti: randomUUID(),
      events: { 'http://schemas.openid.net/event/backchannel-logout': {} }, sid: input.sid,
    }
    // The client's ID token alg: the RP verifies a logout token as it verifies its ID tokens.
    return signClaims(payload, this.signerFor(input.client, 'logout'))
  }

  /**
   * RP-Initiated Logout 1.0 §2: an `id_token_hint` is checked for signature and issuer, not
   * expiry (an RP logs out long after its ID token expired). `undefined` when it fails.
   */
  async verifyIdTokenHint(token: string, issuer: string): Promise<JWTPayload | undefined> {
    if (token.length > 8192) return undefined
    try {
      // The current time is set to the token's own iat, so exp and nbf never refuse it.
      const claims = decodeClaims(token)
      const currentDate = typeof claims?.iat === 'number' && Number.isFinite(claims.iat) ? new Date(claims.iat * 1000) : undefined
      const state = this.state
      const { payload, protectedHeader } = await jwtVerify(token, state.verifyKeys, { issuer, algorithms: state.verifyAlgs, ...(currentDate ? { currentDate } : {}) })
      // Not an access token or a logout token passed off as an ID token.
      if (protectedHeader.typ !== undefined && protectedHeader.typ !== 'JWT') return undefined
      if (typeof payload.sub !== 'string' || payload.aud === undefined) return undefined
      return payload
    } catch {
      return undefined
    }
  }

  async verifyAccessToken(token: string, issuer: string): Promise<AccessTokenClaims | undefined> {
    if (token.length > 8192) return undefined
    let payload: JWTPayload
    try {
      const state = this.state
      ;({ payload } = await jwtVerify(token, state.verifyKeys, { issuer, typ: 'at+jwt', algorithms: state.verifyAlgs }))
    } catch {
      return undefined
    }
    const claims = payload as AccessTokenClaims
    if (typeof claims.jti !== 'string' || typeof claims.sub !== 'string' || typeof claims.client_id !== 'string' || typeof claims.scope !== 'string' || typeof claims.exp !== 'number') return undefined
    if ((await this.store.get(`atr:${claims.jti}`)) !== undefined) return undefined
    if (typeof claims.gid === 'string' && (await this.store.isFamilyRevoked(claims.gid))) return undefined
    return claims
  }

  async revokeAccessToken(claims: AccessTokenClaims): Promise<void> {
    const ttl = claims.exp - Math.floor(Date.now() / 1000)
    if (ttl > 0) await this.store.put(`atr:${claims.jti}`, '1', ttl)
  }
}
