import { createHash } from 'node:crypto'
import { decodeJwt, jwtVerify } from 'jose'
import { OAuthError, StoreUnavailableError } from '../errors.js'
import { readForm, type FormParams } from '../http/form-body.js'
import type { Client, RouteContext, Store } from '../interfaces.js'
import type { ClientSource } from './clients.js'
import type { SecretVerifier } from './client-secret.js'
import { DEFAULT_THROTTLE, FailureCounter, type ThrottleSettings } from '../ops/throttle.js'
import { secretKey } from '../tokens/tokens.js'

export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
export const ASSERTION_ALGS: readonly string[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']
const BASIC_CHALLENGE = { 'WWW-Authenticate': 'Basic realm="grantd"' }

/** Parameters consumed by client authentication; grants never see them. */
export const CLIENT_AUTH_PARAMS = ['client_id', 'client_secret', 'client_assertion', 'client_assertion_type'] as const

export interface ClientAuthInput {
  authorization: string | undefined
  params: FormParams
  /** Audiences a `client_assertion` may name (RFC 7523 §3): the issuer and the endpoint URL. */
  audiences: readonly string[]
  /** The requester's address (`ctx.state.clientIp`), for the per-address limit on client secrets. */
  clientIp?: string
}

/** One text for both limits (client_id, address): the answer never says which one tripped. */
export const CLIENT_AUTH_THROTTLED = 'too many failed client authentication attempts; try again later'

function invalidClient(basic: boolean, detail: string): OAuthError {
  return new OAuthError('invalid_client', 'client authentication failed', { detail, headers: basic ? BASIC_CHALLENGE : {} })
}

/** RFC 6749 §2.3.1 + Appendix B: each half is form-urlencoded before base64. */
function formDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '))
  } catch {
    return undefined
  }
}

export function parseBasic(header: string): { id: string; secret: string } | undefined {
  const match = /^Basic +([A-Za-z0-9+/=_-]{1,2048}) *$/i.exec(header)
  if (!match) return undefined
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  const id = formDecode(decoded.slice(0, colon))
  const secret = formDecode(decoded.slice(colon + 1))
  if (id === undefined || secret === undefined || id === '') return undefined
  return { id, secret }
}

/**
 * Authenticates the client of a token, introspection or revocation request, in the
 * SPEC §5 order: Basic, secret in the body, `client_assertion`, then `client_id` alone
 * for public clients. Using two methods at once is `invalid_request`.
 */
export class ClientAuthenticator {
  private readonly perClient: FailureCounter
  private readonly perAddress: FailureCounter
  /** Secret checks under way, by client_id and digest of the presented secret. */
  private readonly inFlight = new Map<string, Promise<'ok' | 'wrong' | 'locked'>>()

  constructor(private readonly clients: ClientSource, private readonly store: Store, private readonly throttle: ThrottleSettings = DEFAULT_THROTTLE) {
    this.perClient = new FailureCounter(store, throttle.maxFailuresPerClient, throttle.windowSeconds)
    this.perAddress = new FailureCounter(store, throttle.maxFailuresPerAddress, throttle.windowSeconds)
  }

  async authenticate(input: ClientAuthInput): Promise<Client> {
    const { params } = input
    const header = input.authorization
    const usesBasic = header !== undefined && /^basic/i.test(header.trimStart())
    const bodySecret = params.get('client_secret')
    const assertion = params.get('client_assertion')
    const assertionType = params.get('client_assertion_type')
    const bodyId = params.get('client_id')
    const methods = (usesBasic ? 1 : 0) + (bodySecret !== undefined ? 1 : 0) + (assertion !== undefined || assertionType !== undefined ? 1 : 0)
    if (methods > 1) throw new OAuthError('invalid_request', 'use exactly one client authentication method')

    if (usesBasic) {
      const creds = parseBasic(header!)
      if (!creds) throw invalidClient(true, 'malformed Basic credentials')
      if (bodyId !== undefined && bodyId !== creds.id) throw new OAuthError('invalid_request', 'client_id does not match the Authorization header')
      return this.checkSecret(creds.id, creds.secret, 'client_secret_basic', true, input.clientIp)
    }
    if (bodySecret !== undefined) {
      if (bodyId === undefined) throw new OAuthError('invalid_request', 'client_secret requires client_id')
      return this.checkSecret(bodyId, bodySecret, 'client_secret_post', false, input.clientIp)
    }
    if (assertion !== undefined || assertionType !== undefined) {
      if (assertionType !== JWT_BEARER_ASSERTION) throw new OAuthError('invalid_request', `client_assertion_type must be ${JWT_BEARER_ASSERTION}`)
      if (assertion === undefined) throw new OAuthError('invalid_request', 'client_assertion is missing')
      return this.checkAssertion(assertion, bodyId, input.audiences)
    }
    if (bodyId === undefined) throw new OAuthError('invalid_client', 'client authentication is missing', { detail: 'no credentials' })
    const registered = await this.clients.lookup(bodyId)
    if (!registered || registered.client.token_endpoint_auth_method !== 'none') throw invalidClient(false, `client ${bodyId} is unknown or not public`)
    return registered.client
  }

  /**
   * Client secrets (RFC 6749 §2.3.1) under SPEC §9's limits: per client_id and per client
   * address, every guess is reserved in the store (one atomic increment) before any hash
   * is computed, so N concurrent guesses get at most the limit checked; over a limit, even
   * the right secret is refused. A secret already accepted (or a clear one) is compared by
   * digest without a reservation: it cannot be a guess, and the verified-digest cache keeps
   * the happy path free of scrypt. An unknown client, a client without a secret and a
   * wrong clear secret pay a decoy scrypt, so every failure costs what a wrong hashed
   * secret costs and timing does not tell which client_ids exist.
   */
  private async checkSecret(id: string, secret: string, method: 'client_secret_basic' | 'client_secret_post', basic: boolean, clientIp: string | undefined): Promise<Client> {
    const registered = await this.clients.lookup(id)
    const verifier = registered?.secret
    const clientKey = this.perClient.enabled ? `throttle:client:${secretKey(id)}` : undefined
    const addressKey = clientIp !== undefined && this.perAddress.enabled ? `throttle:client-addr:${secretKey(clientIp)}` : undefined
    const locked = () => new OAuthError('invalid_client', CLIENT_AUTH_THROTTLED, {
      detail: 'client authentication throttled',
      headers: { 'Retry-After': String(this.throttle.windowSeconds), ...(basic ? BASIC_CHALLENGE : {}) },
    })

    let storeDown = false
    try {
      const [clientOver, addressOver] = await Promise.all([clientKey ? this.perClient.isOver(clientKey) : false, addressKey ? this.perAddress.isOver(addressKey) : false])
      if (clientOver || addressOver) throw locked()
    } catch (err) {
      // Unreachable store: a secret known to be right may still pass (it is no guess); nothing else can be counted, so nothing else is checked.
      if (!(err instanceof StoreUnavailableError)) throw err
      storeDown = true
    }
    if (verifier?.matchesKnown(secret)) return this.registeredFor(registered!.client, method, basic)
    if (storeDown) throw new StoreUnavailableError('client authentication: the brute-force counters are unreachable')

    // Identical guesses from one address in flight at once are one guess: one reservation,
    // one scrypt. A client whose hashed secret is not cached yet (a fresh process) may open
    // with a burst larger than its failure limit; those requests share the first check
    // instead of locking the client out.
    const flightKey = `${id}\u0000${clientIp ?? ''}\u0000${secretKey(secret)}`
    let outcome = this.inFlight.get(flightKey)
    if (!outcome) {
      outcome = this.guess(registered?.secret, secret, clientKey, addressKey)
      this.inFlight.set(flightKey, outcome)
      void outcome.then(() => this.inFlight.delete(flightKey), () => this.inFlight.delete(flightKey))
    }
    const result = await outcome
    if (result === 'locked') throw locked()
    if (result === 'wrong') throw invalidClient(basic, verifier ? 'wrong secret' : 'unknown client or client without a secret')
    return this.registeredFor(registered!.client, method, basic)
  }

  /** Reserve a guess, check it (or a decoy), settle the reservation. */
  private async guess(verifier: SecretVerifier | undefined, secret: string, clientKey: string | undefined, addressKey: string | undefined): Promise<'ok' | 'wrong' | 'locked'> {
    if (addressKey && !(await this.perAddress.reserve(addressKey))) return 'locked'
    if (clientKey && !(await this.perClient.reserve(clientKey))) return 'locked'
    let ok = false
    try {
      ok = verifier ? await verifier.verify(secret) : false
      if (!ok && !verifier?.hashed) await this.clients.decoy.verify(secret)
    } catch (err) {
      await this.giveBack(clientKey, addressKey).catch(() => undefined)
      throw err
    }
    if (!ok) return 'wrong'
    // The right secret: a success is no failure (and never resets the count, or a client that
    // authenticates every second would buy a guesser fresh attempts).
    await this.giveBack(clientKey, addressKey)
    return 'ok'
  }

  private async giveBack(clientKey: string | undefined, addressKey: string | undefined): Promise<void> {
    await Promise.all([clientKey ? this.perClient.release(clientKey) : undefined, addressKey ? this.perAddress.release(addressKey) : undefined])
  }

  private registeredFor(client: Client, method: 'client_secret_basic' | 'client_secret_post', basic: boolean): Client {
    if (client.token_endpoint_auth_method !== method) throw invalidClient(basic, `client is registered for ${client.token_endpoint_auth_method}`)
    return client
  }

  /** RFC 7523 §3 private_key_jwt. */
  private async checkAssertion(assertion: string, bodyId: string | undefined, audiences: readonly string[]): Promise<Client> {
    let iss: unknown
    try {
      iss = decodeJwt(assertion).iss
    } catch {
      throw invalidClient(false, 'client_assertion is not a JWT')
    }
    const id = bodyId ?? (typeof iss === 'string' ? iss : undefined)
    if (id === undefined) throw invalidClient(false, 'client_assertion has no iss')
    const registered = await this.clients.lookup(id)
    if (!registered?.keys || registered.client.token_endpoint_auth_method !== 'private_key_jwt') throw invalidClient(false, 'client not registered for private_key_jwt')
    let payload
    try {
      ;({ payload } = await jwtVerify(assertion, registered.keys, {
        issuer: id,
        subject: id,
        audience: [...audiences],
        algorithms: [...ASSERTION_ALGS],
        requiredClaims: ['exp', 'jti'],
        clockTolerance: 30,
      }))
    } catch (err) {
      throw invalidClient(false, `client_assertion rejected: ${(err as Error).message}`)
    }
    if (typeof payload.jti !== 'string' || payload.jti.length > 256) throw invalidClient(false, 'client_assertion jti malformed')
    // The replay cache must hold the jti for the assertion's whole lifetime, so lifetimes are bounded.
    const ttl = Math.max(1, (payload.exp ?? 0) - Math.floor(Date.now() / 1000) + 30)
    if (ttl > 3600) throw invalidClient(false, 'client_assertion lives longer than an hour')
    const jtiKey = `jti:${createHash('sha256').update(`${id}\u0000${payload.jti}`).digest('base64url')}`
    const fresh = await this.store.add(jtiKey, '1', ttl)
    if (!fresh) throw invalidClient(false, 'client_assertion jti was already used')
    return registered.client
  }
}

/**
 * Read a client-authenticated form POST (introspection, revocation): the parameters the
 * endpoint reads (`reads`) and the client authentication ones at most once, others
 * ignored (RFC 6749 §3.2), then the client, authenticated as at the token endpoint.
 */
export async function readAuthenticatedForm(ctx: RouteContext, clientAuth: ClientAuthenticator, reads: readonly string[] = []): Promise<{ params: FormParams; client: Client }> {
  const params = await readForm(ctx)
  params.check(CLIENT_AUTH_PARAMS)
  params.check(reads)
  const issuer = ctx.state.issuer
  const client = await clientAuth.authenticate({
    authorization: ctx.get('authorization') || undefined,
    params,
    audiences: [issuer, `${issuer}${ctx.path}`, `${issuer}/connect/token`],
    clientIp: ctx.state.clientIp,
  })
  ctx.state.clientId = client.client_id
  return { params, client }
}
