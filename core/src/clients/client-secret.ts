import { hash as oneShotHash, randomBytes, scrypt, timingSafeEqual, type BinaryLike, type ScryptOptions } from 'node:crypto'

/**
 * Client secrets at rest: either a PHC-like scrypt string
 * (`$scrypt$ln=15,r=8,p=1$<salt>$<hash>`, base64url) or, for development, the secret
 * in clear. Both are compared in constant time; a clear secret is compared by digest
 * so lengths leak nothing either.
 */

const PREFIX = '$scrypt$'

function scryptAsync(secret: BinaryLike, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key)))
  })
}

export function isHashedSecret(value: string): boolean {
  return value.startsWith(PREFIX)
}

export interface ScryptParams {
  ln: number
  r: number
  p: number
  salt: Buffer
  hash: Buffer
}

export function parseHashedSecret(value: string): ScryptParams | undefined {
  const parts = value.slice(PREFIX.length).split('$')
  if (parts.length !== 3) return undefined
  const [paramText, saltText, hashText] = parts as [string, string, string]
  const params: Record<string, number> = {}
  for (const kv of paramText.split(',')) {
    const [k, v] = kv.split('=')
    if (!k || !v || !/^\d+$/.test(v)) return undefined
    params[k] = Number(v)
  }
  const { ln, r, p } = params
  if (ln === undefined || r === undefined || p === undefined || ln < 10 || ln > 20 || r < 1 || r > 32 || p < 1 || p > 16) return undefined
  const salt = Buffer.from(saltText, 'base64url')
  const hash = Buffer.from(hashText, 'base64url')
  if (salt.length < 16 || hash.length < 32) return undefined
  return { ln, r, p, salt, hash }
}

export async function hashSecret(secret: string, ln = 15): Promise<string> {
  const salt = randomBytes(16)
  const hash = await scryptAsync(secret, salt, 32, { N: 2 ** ln, r: 8, p: 1, maxmem: 256 * 1024 * 1024 })
  return `${PREFIX}ln=${ln},r=8,p=1$${salt.toString('base64url')}$${hash.toString('base64url')}`
}

/** One-shot SHA-256 (Node ≥ 20.12): half the cost of a Hash object for a short secret, on every token request. */
function digest(value: string): Buffer {
  return oneShotHash('sha256', value, 'buffer')
}

/**
 * A verifier for one client's secret. Scrypt is deliberately slow, so after one
 * successful check the digest of the accepted secret is remembered and later requests
 * compare digests in constant time; a wrong secret always pays the full scrypt cost.
 */
export class SecretVerifier {
  private readonly clearDigest: Buffer | undefined
  private readonly scryptParams: ScryptParams | undefined
  private verifiedDigest: Buffer | undefined

  constructor(stored: string) {
    if (isHashedSecret(stored)) {
      const params = parseHashedSecret(stored)
      if (!params) throw new Error('malformed $scrypt$ secret hash')
      this.scryptParams = params
    } else {
      this.clearDigest = digest(stored)
    }
  }

  /** Whether the secret is kept as a `$scrypt$` hash (a wrong guess costs a full scrypt). */
  get hashed(): boolean {
    return this.scryptParams !== undefined
  }

  /**
   * The cheap check: true when `presented` is a clear secret's value or a hashed secret
   * already accepted once, compared by digest in constant time. False means "not known to
   * be right": only {@link verify} can say more, at the full scrypt cost.
   */
  matchesKnown(presented: string): boolean {
    const presentedDigest = digest(presented)
    const known = this.clearDigest ?? this.verifiedDigest
    return known !== undefined && timingSafeEqual(presentedDigest, known)
  }

  async verify(presented: string): Promise<boolean> {
    const presentedDigest = digest(presented)
    if (this.clearDigest) return timingSafeEqual(presentedDigest, this.clearDigest)
    if (this.verifiedDigest && timingSafeEqual(presentedDigest, this.verifiedDigest)) return true
    const params = this.scryptParams!
    const key = await scryptAsync(presented, params.salt, params.hash.length, {
      N: 2 ** params.ln,
      r: params.r,
      p: params.p,
      maxmem: 256 * 1024 * 1024,
    })
    const ok = timingSafeEqual(key, params.hash)
    if (ok) this.verifiedDigest = presentedDigest
    return ok
  }
}

/** The cost of a guess against a hashed secret: N·r·p (scrypt's work and memory scale with it). */
function scryptCost(params: ScryptParams): number {
  return 2 ** params.ln * params.r * params.p
}

/**
 * A verifier nobody's secret matches, as costly as the costliest of `stored` (hashed
 * secrets; clear ones are ignored), or `$scrypt$ln=15,r=8,p=1` (what `hashSecret` makes)
 * when none is hashed. Checking a secret for an unknown client with it costs what a wrong
 * secret for a known one costs, so timing does not tell which client_ids exist.
 */
export function decoyVerifier(stored: readonly string[]): SecretVerifier {
  let costliest: ScryptParams | undefined
  for (const value of stored) {
    if (!isHashedSecret(value)) continue
    const params = parseHashedSecret(value)
    if (params && (!costliest || scryptCost(params) > scryptCost(costliest))) costliest = params
  }
  const { ln, r, p, hash } = costliest ?? { ln: 15, r: 8, p: 1, hash: Buffer.alloc(32) }
  return new SecretVerifier(`${PREFIX}ln=${ln},r=${r},p=${p}$${randomBytes(16).toString('base64url')}$${randomBytes(hash.length).toString('base64url')}`)
}
