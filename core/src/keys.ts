import { KeyObject, type webcrypto } from 'node:crypto'
type CryptoKey = webcrypto.CryptoKey
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose'
import { ConfigError } from './errors.js'

import type { ClientConfig } from './config.js'
import type { SigningAlg } from './interfaces.js'
export type { SigningAlg }
export const SIGNING_ALGS: readonly SigningAlg[] = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA']

export interface SigningKey {
  readonly kid: string
  readonly alg: SigningAlg
  readonly privateKey: CryptoKey
  /** The same private key as a node:crypto KeyObject, made once here: what jws.ts signs with. */
  readonly keyObject: KeyObject
  readonly publicJwk: JWK
}

/** OIDC Core §15.1 / Discovery §3: RS256 must always be available for ID tokens. */
export const ID_TOKEN_DEFAULT_ALG: SigningAlg = 'RS256'

/**
 * The server's signing keys. The first key signs; every key is published, so rotation
 * is "add a key in front, later remove the old one".
 */
export class KeySet {
  readonly signing: SigningKey
  /** Every key, in file order. */
  readonly keys: readonly SigningKey[]
  readonly jwks: { keys: JWK[] }
  /** Serialised once: the JWKS endpoint answers with these bytes. */
  readonly jwksJson: string
  readonly algs: readonly SigningAlg[]
  readonly ephemeral: boolean

  constructor(keys: readonly SigningKey[], ephemeral: boolean) {
    if (keys.length === 0) throw new ConfigError('keys: the key set is empty')
    this.signing = keys[0]!
    this.keys = [...keys]
    this.jwks = { keys: keys.map((k) => k.publicJwk) }
    this.jwksJson = JSON.stringify(this.jwks)
    this.algs = [...new Set(keys.map((k) => k.alg))]
    this.ephemeral = ephemeral
  }

  /**
   * Ephemeral keys. Without an alg: ES256 (first, so it signs access tokens) and RS256
   * (ID tokens' default, OIDC Core §15.1).
   */
  static async generate(alg?: SigningAlg): Promise<KeySet> {
    const algs: SigningAlg[] = alg ? [alg] : ['ES256', ID_TOKEN_DEFAULT_ALG]
    const keys: SigningKey[] = []
    for (const a of algs) keys.push(await toSigningKey(await generatePrivateJwk(a), 'keys'))
    return new KeySet(keys, true)
  }

  /** The first key with this alg: the one that signs tokens a client asked to get in it. */
  forAlg(alg: string): SigningKey | undefined {
    return this.keys.find((k) => k.alg === alg)
  }

  static async fromFile(file: string): Promise<KeySet> {
    let parsed: unknown
    try {
      parsed = JSON.parse(await readFile(file, 'utf8'))
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      throw new ConfigError(`keys.file: cannot read ${file} (${code ?? (err as Error).message})`)
    }
    const keys = typeof parsed === 'object' && parsed !== null ? (parsed as { keys?: unknown }).keys : undefined
    if (!Array.isArray(keys) || keys.length === 0) throw new ConfigError('keys.file: expected a JWK set {"keys": [...]} with at least one private key')
    const out: SigningKey[] = []
    for (const [i, jwk] of keys.entries()) out.push(await toSigningKey(jwk as JWK, `keys.file keys[${i}]`))
    const kids = new Set(out.map((k) => k.kid))
    if (kids.size !== out.length) throw new ConfigError('keys.file: two keys share a kid')
    return new KeySet(out, false)
  }
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
    'add one: grantd keys generate --alg RS256 --out rs256.json, then copy its key into keys.file\'s "keys" after the first key (the first keeps signing access tokens)'
}

function algFor(jwk: JWK): SigningAlg | undefined {
  if (jwk.alg) return (SIGNING_ALGS as readonly string[]).includes(jwk.alg) ? (jwk.alg as SigningAlg) : undefined
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256'
  if (jwk.kty === 'EC' && jwk.crv === 'P-384') return 'ES384'
  if (jwk.kty === 'RSA') return 'RS256'
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA'
  return undefined
}

async function toSigningKey(jwk: JWK, path: string): Promise<SigningKey> {
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
  return { kid, alg, privateKey, keyObject: KeyObject.from(privateKey), publicJwk: { ...pub, kid, alg, use: 'sig' } }
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
