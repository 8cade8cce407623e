import type { webcrypto } from 'node:crypto'
type CryptoKey = webcrypto.CryptoKey
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose'
import { ConfigError } from './errors.js'

export type SigningAlg = 'ES256' | 'ES384' | 'RS256' | 'PS256' | 'EdDSA'
export const SIGNING_ALGS: readonly SigningAlg[] = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA']

export interface SigningKey {
  readonly kid: string
  readonly alg: SigningAlg
  readonly privateKey: CryptoKey
  readonly publicJwk: JWK
}

/**
 * The server's signing keys. The first key signs; every key is published, so rotation
 * is "add a key in front, later remove the old one".
 */
export class KeySet {
  readonly signing: SigningKey
  readonly jwks: { keys: JWK[] }
  /** Serialised once: the JWKS endpoint answers with these bytes. */
  readonly jwksJson: string
  readonly algs: readonly SigningAlg[]
  readonly ephemeral: boolean

  constructor(keys: readonly SigningKey[], ephemeral: boolean) {
    if (keys.length === 0) throw new ConfigError('keys: the key set is empty')
    this.signing = keys[0]!
    this.jwks = { keys: keys.map((k) => k.publicJwk) }
    this.jwksJson = JSON.stringify(this.jwks)
    this.algs = [...new Set(keys.map((k) => k.alg))]
    this.ephemeral = ephemeral
  }

  static async generate(alg: SigningAlg = 'ES256'): Promise<KeySet> {
    return new KeySet([await toSigningKey(await generatePrivateJwk(alg), 'keys')], true)
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
  return { kid, alg, privateKey, publicJwk: { ...pub, kid, alg, use: 'sig' } }
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

/** `grantd keys generate`: write a private JWK set (mode 0600). */
export async function writePrivateJwks(file: string, alg: SigningAlg): Promise<JWK> {
  const jwk = await generatePrivateJwk(alg)
  await mkdir(dirname(file), { recursive: true })
  await writeFile(file, JSON.stringify({ keys: [jwk] }, null, 2) + '\n', { mode: 0o600, flag: 'wx' })
  return jwk
}
