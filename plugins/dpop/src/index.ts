import { createHash } from 'node:crypto'
import { definePlugin, OAuthError, option, type RouteContext, type SenderBinding, type SenderResourceRequest, type SenderTokenRequest, type Store } from '@grantd/core'
import { NonceSource } from './nonce.js'
import { ASYMMETRIC_ALGS, checkProof, IAT_WINDOW_SECONDS, ProofError, type CheckedProof } from './proof.js'

export { checkProof, normalizeHtu, accessTokenHash, ProofError, ASYMMETRIC_ALGS, IAT_WINDOW_SECONDS } from './proof.js'
export { NonceSource } from './nonce.js'

export interface DpopOptions {
  /** `dpop_signing_alg_values_supported`: asymmetric JWS algorithms accepted for proofs. */
  algorithms: readonly string[]
  /** RFC 9449 §8–9: require a server-provided nonce in every proof (token endpoint and userinfo). */
  nonces: boolean
  /** Seconds per nonce window; a nonce is honoured for one to two windows. */
  nonceLifetime: number
  /** Secret the nonces derive from (every process of one deployment needs the same); default: `cookies.keys`. */
  nonceSecret?: string
}

const DEFAULT_ALGS = ['ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'RS256', 'EdDSA']

function parseOptions(raw: unknown): DpopOptions {
  const o = option.object(raw ?? {}, '(options)')
  option.only(o, '(options)', ['algorithms', 'nonces', 'nonceLifetime', 'nonceSecret'])
  let algorithms: readonly string[] = DEFAULT_ALGS
  if (o.algorithms !== undefined) {
    const list = option.stringArray(o.algorithms, 'algorithms')
    if (list.length === 0) option.fail('algorithms', 'expected at least one algorithm')
    // RFC 9449 §4.2: asymmetric only — `none` and MACs are a start error.
    list.forEach((a, i) => { if (!ASYMMETRIC_ALGS.includes(a)) option.fail(option.at('algorithms', i), `expected one of ${ASYMMETRIC_ALGS.join(', ')} (asymmetric only)`) })
    algorithms = [...new Set(list)]
  }
  const out: DpopOptions = {
    algorithms,
    nonces: option.optional(o.nonces, 'nonces', option.boolean, false),
    nonceLifetime: option.optional(o.nonceLifetime, 'nonceLifetime', (v, p) => option.integer(v, p, 30, 3600), 300),
  }
  if (o.nonceSecret !== undefined) {
    const secret = option.string(o.nonceSecret, 'nonceSecret')
    if (secret.length < 32) option.fail('nonceSecret', 'at least 32 characters')
    out.nonceSecret = secret
  }
  return out
}

/** RFC 9449 §4.3 step 1: exactly one `DPoP` header (Node would join two with a comma). */
function proofHeader(ctx: RouteContext): string | undefined {
  const raw = ctx.req.rawHeaders
  let found: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'dpop') {
      if (found !== undefined) throw new ProofError('more than one DPoP header')
      found = raw[i + 1]!
    }
  }
  return found
}

/**
 * `@grantd/dpop`: RFC 9449 sender-constrained tokens through the core's sender-constraint hook.
 * At the token endpoint a valid proof binds the access token (`cnf.jkt`, `token_type: DPoP`)
 * and a public client's refresh token to the proof's key; at userinfo a bound token needs
 * `Authorization: DPoP` and a proof by that key carrying `ath`.
 */
export default definePlugin<DpopOptions>({
  name: 'dpop',
  options: parseOptions,
  register(host) {
    const { algorithms } = host.options
    const nonces = host.options.nonces
      ? new NonceSource(host.options.nonceSecret !== undefined ? [host.options.nonceSecret] : host.config.cookieKeys, host.options.nonceLifetime)
      : undefined
    const algList = algorithms.join(' ')

    /** RFC 9449 §7.1 challenge at a resource. */
    const challenge = (error: string, description: string): Record<string, string> => ({
      'WWW-Authenticate': `DPoP algs="${algList}", error="${error}", error_description="${description.replace(/["\\]/g, '')}"`,
    })

    /** Record the proof's `jti` as used; a second use anywhere sharing the store is a replay (§11.1). */
    async function spend(proof: CheckedProof): Promise<boolean> {
      const store: Store = host.resolve('store')
      const key = `dpop:jti:${createHash('sha256').update(`${proof.jkt}:${proof.jti}`).digest('base64url')}`
      // Long enough to outlive every moment the proof's iat is still accepted.
      return store.add(key, '1', 2 * IAT_WINDOW_SECONDS + 5)
    }

    async function check(ctx: RouteContext, url: string, accessToken?: string): Promise<CheckedProof | undefined> {
      const value = proofHeader(ctx)
      if (value === undefined) return undefined
      const proof = await checkProof(value, {
        method: ctx.method,
        url,
        algorithms,
        ...(accessToken !== undefined ? { accessToken } : {}),
        ...(nonces ? { nonceValid: (n: string) => nonces.isValid(n) } : {}),
      })
      if (!(await spend(proof))) throw new ProofError('the DPoP proof was already used')
      return proof
    }

    host.discovery(() => ({ dpop_signing_alg_values_supported: [...algorithms] }))

    host.senderConstraint({
      name: 'dpop',
      schemes: ['DPoP'],
      confirmationMembers: ['jkt'],
      tokenType: 'DPoP',

      async tokenRequest({ ctx, client, url }: SenderTokenRequest): Promise<SenderBinding | undefined> {
        // §8: a fresh nonce with every answer, so clients keep up as windows roll over.
        if (nonces) ctx.set('DPoP-Nonce', nonces.current())
        let proof: CheckedProof | undefined
        try {
          proof = await check(ctx, url)
        } catch (err) {
          if (!(err instanceof ProofError)) throw err
          if (err.kind === 'nonce' && nonces) throw new OAuthError('use_dpop_nonce', err.message, { status: 400, headers: { 'DPoP-Nonce': nonces.current() } })
          throw new OAuthError('invalid_dpop_proof', err.message, { status: 400 })
        }
        if (!proof) {
          // §5.2 dpop_bound_access_tokens: this client's tokens are always sender-constrained.
          if (client.dpop_bound_access_tokens === true) throw new OAuthError('invalid_dpop_proof', 'a DPoP proof is required for this client', { status: 400 })
          return undefined
        }
        // §5: a confidential client's refresh token is bound to its credentials; a public client's to this key.
        return { cnf: { jkt: proof.jkt }, tokenType: 'DPoP', bindRefreshToken: !client.confidential }
      },

      async resourceRequest({ ctx, scheme, token, claims, url }: SenderResourceRequest): Promise<void> {
        const cnf = claims.cnf as { jkt?: unknown } | undefined
        const jkt = typeof cnf === 'object' && cnf !== null ? cnf.jkt : undefined
        if (scheme !== 'dpop') {
          // §7.2: a DPoP-bound token is never accepted as a Bearer token.
          throw new OAuthError('invalid_token', 'the access token is DPoP-bound: send it with Authorization: DPoP and a proof', { status: 401, headers: challenge('invalid_token', 'DPoP-bound token presented as Bearer') })
        }
        if (typeof jkt !== 'string') {
          throw new OAuthError('invalid_token', 'the access token is not DPoP-bound', { status: 401, headers: challenge('invalid_token', 'the access token is not DPoP-bound') })
        }
        if (nonces) ctx.set('DPoP-Nonce', nonces.current())
        let proof: CheckedProof | undefined
        try {
          proof = await check(ctx, url, token)
        } catch (err) {
          if (!(err instanceof ProofError)) throw err
          if (err.kind === 'nonce' && nonces) {
            throw new OAuthError('use_dpop_nonce', err.message, { status: 401, headers: { ...challenge('use_dpop_nonce', err.message), 'DPoP-Nonce': nonces.current() } })
          }
          throw new OAuthError('invalid_dpop_proof', err.message, { status: 401, headers: challenge('invalid_dpop_proof', err.message) })
        }
        if (!proof) throw new OAuthError('invalid_dpop_proof', 'a DPoP proof is required', { status: 401, headers: challenge('invalid_dpop_proof', 'a DPoP proof is required') })
        // §7.1: the proof's key is the one the token is bound to.
        if (proof.jkt !== jkt) throw new OAuthError('invalid_token', 'the DPoP proof key does not match the access token', { status: 401, headers: challenge('invalid_token', 'the DPoP proof key does not match the access token') })
      },
    })
  },
})
