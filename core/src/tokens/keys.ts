import { KeyObject, type webcrypto } from 'node:crypto'
type CryptoKey = webcrypto.CryptoKey
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose'
import { ConfigError } from '../errors.js'
import type { ClientConfig } from '../config.js'
import type { SigningAlg } from '../interfaces.js'
export type { SigningAlg }
export const SIGNING_ALGS: readonly SigningAlg[] = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA']

/**
 * A key's state (SPEC §13): `current` signs; `next` (published ahead of signing) and
 * `retired` (published until the tokens it signed expire) are only published.
 */
export type KeyStatus = 'next' | 'current' | 'retired'
export const KEY_STATUSES: readonly KeyStatus[] = ['next', 'current', 'retired']

export interface SigningKey {
  readonly kid: string
  readonly alg: SigningAlg
  readonly status: KeyStatus
  readonly privateKey: CryptoKey
  /** The same private key as a node:crypto KeyObject, made once here: what jws.ts signs with. */
  readonly keyObject: KeyObject
  readonly publicJwk: JWK
}

/** OIDC Core §15.1 / Discovery §3: RS256 must always be available for ID tokens. */
export const ID_TOKEN_DEFAULT_ALG: SigningAlg = 'RS256'

/**
 * The server's signing keys. Every key is published; only `current` keys sign: the
 * current key of each alg for that alg. Access tokens default to the first key's alg, ID
 * tokens to RS256 (else that alg), unless a client names another. A key file without statuses keeps its old meaning: the first
 * key of each alg is current, later keys of that alg are published only (see effectiveStatuses).
 */
export class KeySet {
  /** The current key of the first key's alg (else the first current key): access tokens' default. */
  readonly signing: SigningKey
  /** Every published key, in file order, with its status. */
  readonly keys: readonly SigningKey[]
  /** Only the keys that sign (status current). */
  readonly current: readonly SigningKey[]
  readonly jwks: { keys: JWK[] }
  /** Serialised once: the JWKS endpoint answers with these bytes. */
  readonly jwksJson: string
  /** Algs a token can be signed with now (current keys): discovery and client checks. */
  readonly algs: readonly SigningAlg[]
  /** Algs of every published key: what verification accepts (a retired key's tokens stay valid). */
  readonly publishedAlgs: readonly SigningAlg[]
  readonly ephemeral: boolean

  constructor(keys: readonly SigningKey[], ephemeral: boolean) {
    if (keys.length === 0) throw new ConfigError('keys: the key set is empty')
    this.keys = [...keys]
    this.current = keys.filter((k) => k.status === 'current')
    if (this.current.length === 0) throw new ConfigError('keys: no key has status "current", so nothing can sign (promote one: grantd keys promote --kid KID --file F)')
    // Access tokens' default alg is the first key's, whatever its status: a rotation inside
    // that alg (next → current → retired) never moves the default to another alg.
    this.signing = this.current.find((k) => k.alg === keys[0]!.alg) ?? this.current[0]!
    this.jwks = { keys: keys.map((k) => k.publicJwk) }
    this.jwksJson = JSON.stringify(this.jwks)
    this.algs = [...new Set(this.current.map((k) => k.alg))]
    this.publishedAlgs = [...new Set(keys.map((k) => k.alg))]
    this.ephemeral = ephemeral
  }

  /**
   * Ephemeral keys. Without an alg: ES256 (first, so it signs access tokens) and RS256
   * (ID tokens' default, OIDC Core §15.1).
   */
  static async generate(alg?: SigningAlg): Promise<KeySet> {
    const algs: SigningAlg[] = alg ? [alg] : ['ES256', ID_TOKEN_DEFAULT_ALG]
    const keys: SigningKey[] = []
    for (const a of algs) keys.push(await toSigningKey(await generatePrivateJwk(a), 'keys', 'current'))
    return new KeySet(keys, true)
  }

  /** The current key with this alg: the one that signs tokens a client asked to get in it. */
  forAlg(alg: string): SigningKey | undefined {
    return this.current.find((k) => k.alg === alg)
  }

  static async fromFile(file: string): Promise<KeySet> {
    let parsed: unknown
    try {
      parsed = JSON.parse(await readFile(file, 'utf8'))
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      throw new ConfigError(`keys.file: cannot read ${file} (${code ?? (err as Error).message})`)
    }
    return KeySet.fromJwks(parsed, 'keys.file')
  }

  /** A parsed private JWK set, each key with an optional grantd `status` member. */
  static async fromJwks(parsed: unknown, where: string): Promise<KeySet> {
    const keys = typeof parsed === 'object' && parsed !== null ? (parsed as { keys?: unknown }).keys : undefined
    if (!Array.isArray(keys) || keys.length === 0) throw new ConfigError(`${where}: expected a JWK set {"keys": [...]} with at least one private key`)
    const statuses = effectiveStatuses(keys as unknown[], where)
    const out: SigningKey[] = []
    for (const [i, jwk] of keys.entries()) out.push(await toSigningKey(jwk as JWK, `${where} keys[${i}]`, statuses[i]!))
    const kids = new Set(out.map((k) => k.kid))
    if (kids.size !== out.length) throw new ConfigError(`${where}: two keys share a kid`)
    return new KeySet(out, false)
  }
}

/**
 * Each key's status: its `status` member, or, for a key without one, today's meaning of
 * a key file without statuses: `current` when it is the first key of its alg that is not
 * next or retired, else `retired` (published, never signs). Two current keys of one alg
 * would make "which one signs" a guess: refused.
 */
export function effectiveStatuses(keys: readonly unknown[], where: string): KeyStatus[] {
  const signingAlg = new Map<string, number>()
  return keys.map((raw, i) => {
    const jwk = (typeof raw === 'object' && raw !== null ? raw : {}) as JWK & { status?: unknown }
    let status: KeyStatus
    if (jwk.status !== undefined) {
      if (!(KEY_STATUSES as readonly unknown[]).includes(jwk.status)) throw new ConfigError(`${where} keys[${i}].status: expected one of ${KEY_STATUSES.join(', ')}`)
      status = jwk.status as KeyStatus
    } else {
      status = signingAlg.has(String(algFor(jwk))) ? 'retired' : 'current'
    }
    if (status === 'current') {
      const alg = String(algFor(jwk))
      const prior = signingAlg.get(alg)
      if (prior !== undefined) throw new ConfigError(`${where} keys[${i}]: a second current ${alg} key (keys[${prior}] already signs ${alg}); give one "status": "retired" or "next"`)
      signingAlg.set(alg, i)
    }
    return status
  })
}

/**
 * Boot check: an alg a client asks for (`id_token_signed_response_alg`,
 * `access_token_signed_response_alg`) must have a key, else the start fails naming it.
 */
export function checkClientAlgs(clients: readonly ClientConfig[], keys: KeySet): void {
  clients.forEach((c, i) => {
    for (const field of ['id_token_signed_response_alg', 'access_token_signed_response_alg'] as const) {
      const alg = c[field]
      if (alg !== undefined && !keys.forAlg(alg)) {
        throw new ConfigError(`clients[${i}].${field}: no signing key has alg ${alg} (the keys have ${keys.algs.join(', ')}); add one with grantd keys generate --alg ${alg}`)
      }
    }
  })
}

/** The boot warning for a key set without RS256 (OIDC Core §15.1), saying how to add one; undefined when it has one. */
export function missingRs256Warning(keys: KeySet): string | undefined {
  if (keys.forAlg(ID_TOKEN_DEFAULT_ALG)) return undefined
  return `no RS256 key: ID tokens default to ${keys.signing.alg}, and clients that expect OpenID Connect's default RS256 (OIDC Core §15.1) reject them; ` +
    'add one: grantd keys add --alg RS256 --file <keys.file>, then grantd keys promote --kid <its kid> --file <keys.file> and send grantd SIGHUP ' +
    '(or grantd keys generate --alg RS256 --out rs256.json, then copy its key into keys.file\'s "keys" after the first key: the first keeps signing access tokens)'
}

/** The JWS alg a private JWK signs with: its `alg`, else the one its key type implies. */
export function algFor(jwk: JWK): SigningAlg | undefined {
  if (jwk.alg) return (SIGNING_ALGS as readonly string[]).includes(jwk.alg) ? (jwk.alg as SigningAlg) : undefined
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256'
  if (jwk.kty === 'EC' && jwk.crv === 'P-384') return 'ES384'
  if (jwk.kty === 'RSA') return 'RS256'
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA'
  return undefined
}

async function toSigningKey(jwk: JWK, path: string, status: KeyStatus): Promise<SigningKey> {
  if (typeof jwk !== 'object' || jwk === null || !jwk.d) throw new ConfigError(`${path}: not a private JWK`)
  const alg = algFor(jwk)
  if (!alg) throw new ConfigError(`${path}: unsupported key (expected one of ${SIGNING_ALGS.join(', ')})`)
  let privateKey: CryptoKey
  try {
    privateKey = (await importJWK(jwk, alg)) as CryptoKey
  } catch (err) {
    throw new ConfigError(`${path}: ${(err as Error).message}`)
  }
  const pub = publicMembers(jwk)
  const kid = jwk.kid ?? (await calculateJwkThumbprint(pub))
  if (jwk.use !== undefined && jwk.use !== 'sig') throw new ConfigError(`${path}.use: a signing key has "use": "sig"`)
  // The published JWK is rebuilt from a whitelist: `status` (grantd's own member) and private members never reach the JWKS.
  return { kid, alg, status, privateKey, keyObject: KeyObject.from(privateKey), publicJwk: { ...pub, kid, alg, use: 'sig' } }
}

/** A whitelist of public members per key type, so no private member can reach the JWKS. */
function publicMembers(jwk: JWK): JWK {
  switch (jwk.kty) {
    case 'EC': return { kty: 'EC', crv: jwk.crv!, x: jwk.x!, y: jwk.y! }
    case 'OKP': return { kty: 'OKP', crv: jwk.crv!, x: jwk.x! }
    case 'RSA': return { kty: 'RSA', n: jwk.n!, e: jwk.e! }
    default: throw new ConfigError(`unsupported key type ${String(jwk.kty)}`)
  }
}

export async function generatePrivateJwk(alg: SigningAlg): Promise<JWK> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}), ...(alg.startsWith('RS') || alg.startsWith('PS') ? { modulusLength: 2048 } : {}) })
  const jwk = await exportJWK(privateKey)
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey))
  return { ...jwk, kid, alg, use: 'sig' }
}

/**
 * `grantd keys generate`: write a private JWK set (mode 0600), one key per alg in this
 * order (the first signs access tokens).
 */
export async function writePrivateJwks(file: string, algs: SigningAlg | readonly SigningAlg[]): Promise<JWK[]> {
  const jwks: JWK[] = []
  for (const alg of typeof algs === 'string' ? [algs] : algs) jwks.push(await generatePrivateJwk(alg))
  await mkdir(dirname(file), { recursive: true })
  await writeFile(file, JSON.stringify({ keys: jwks }, null, 2) + '\n', { mode: 0o600, flag: 'wx' })
  return jwks
}
