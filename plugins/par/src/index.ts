import { randomBytes } from 'node:crypto'
import {
  definePlugin, OAuthError, option, secretKey,
  type AuthorizationParameters, type AuthorizationService, type Client, type PluginHost, type RequestUriResolver, type RouteContext,
} from '@grantd/core'
import { AuthorizationParams, parseAuthorizationRequest, RedirectableError, redirectUriAllowed, UnredirectableError } from '@grantd/grant-authorization-code'

export interface ParOptions {
  /** Seconds a pushed request stays redeemable (RFC 9126 §2.2 `expires_in`). */
  expiresIn: number
  /** Every client must push its authorization requests (RFC 9126 §5 `require_pushed_authorization_requests`). */
  required: boolean
  /** Pushes a public client may make per client address per `expiresIn` window (SPEC §9: anonymous state is capped). */
  publicPushesPerAddress: number
}

const DEFAULTS: ParOptions = { expiresIn: 60, required: false, publicPushesPerAddress: 30 }

export function parseParOptions(raw: unknown): ParOptions {
  const o = option.object(raw ?? {}, '(options)')
  option.only(o, '(options)', Object.keys(DEFAULTS))
  return {
    expiresIn: option.optional(o.expiresIn, 'expiresIn', (v, p) => option.integer(v, p, 1, 600), DEFAULTS.expiresIn),
    required: option.optional(o.required, 'required', option.boolean, DEFAULTS.required),
    publicPushesPerAddress: option.optional(o.publicPushesPerAddress, 'publicPushesPerAddress', (v, p) => option.integer(v, p, 1, 100_000), DEFAULTS.publicPushesPerAddress),
  }
}

export const PAR_PATH = '/connect/par'
/** RFC 9126 §2.2: the request_uri is a URN of this namespace with a random, unguessable tail. */
export const REQUEST_URI_PREFIX = 'urn:ietf:params:oauth:request_uri:'
const REQUEST_URI = /^urn:ietf:params:oauth:request_uri:[A-Za-z0-9_-]{43}$/
/** They authenticate the push (SPEC §5) and are not part of the authorization request. */
const CLIENT_AUTH_PARAMS = new Set(['client_id', 'client_secret', 'client_assertion', 'client_assertion_type'])

/** What the store holds under the hash of a request_uri: no secret in clear (SPEC §9). */
interface PushedRequest {
  client_id: string
  /** Seconds since the epoch; the store's TTL is the first guard, this the second. */
  exp: number
  params: Array<[string, string]>
}

const unknownRequestUri = (): OAuthError =>
  new OAuthError('invalid_request_uri', 'the request_uri is unknown, expired, already used or was not issued to this client')

function readPushed(raw: string | undefined): PushedRequest | undefined {
  if (raw === undefined) return undefined
  try {
    const record = JSON.parse(raw) as PushedRequest
    if (typeof record.client_id !== 'string' || typeof record.exp !== 'number' || !Array.isArray(record.params)) return undefined
    return record
  } catch {
    return undefined
  }
}

/**
 * OAuth 2.0 Pushed Authorization Requests (RFC 9126). The client POSTs its authorization
 * request to `/connect/par`, authenticated exactly as at the token endpoint, and gets a
 * one-time `request_uri` to send the browser with. The request is validated here exactly as
 * `/connect/authorize` would (grant-authorization-code's own parser), so errors reach the
 * client as JSON, and again when the request_uri is redeemed.
 */
export default definePlugin<ParOptions>({
  name: 'par',
  dependencies: ['grant-authorization-code'],
  options: parseParOptions,
  register(host: PluginHost<ParOptions>) {
    const { expiresIn, required, publicPushesPerAddress } = host.options
    const store = () => host.resolve('store')
    const keyOf = (requestUri: string): string => `par:${secretKey(requestUri)}`

    /** RFC 9126 §2.1: validate as the authorization endpoint would; answer as the token endpoint does. */
    function validate(ctx: RouteContext, client: Client, pushed: AuthorizationParameters): void {
      const query = new AuthorizationParams()
      for (const [name, value] of pushed) query.add(name, value)
      try {
        // The authenticated client, wherever it lives (config or registered at run time).
        parseAuthorizationRequest(query, new Map([[client.client_id, client]]), host.resolve('acr'), ctx.state.issuer, redirectUriAllowed, host.config.resources)
      } catch (err) {
        // The client and redirect_uri problems a browser would see as a page (RFC 9126 §2.3: invalid_request).
        if (err instanceof UnredirectableError) throw new OAuthError('invalid_request', err.message)
        if (err instanceof RedirectableError) throw err.error
        throw err
      }
      // The browser endpoint answers an oversize state without one; here the client can be told (IdentityServer-style limits).
      query.get('state')
    }

    /** SPEC §9: a public client authenticates by client_id alone, so its pushes are anonymous state. */
    async function capPublicPushes(ctx: RouteContext, client: Client): Promise<void> {
      if (client.confidential) return
      const window = Math.floor(Date.now() / 1000 / expiresIn)
      const count = await store().increment(`par-rate:${secretKey(`${ctx.state.clientIp}\u0000${window}`)}`, expiresIn)
      if (count > publicPushesPerAddress) {
        throw new OAuthError('invalid_request', 'too many pushed authorization requests, try again later', { status: 429, headers: { 'Retry-After': String(expiresIn) } })
      }
    }

    /** POST /connect/par, RFC 9126 §2: parse, authenticate the client, validate, store, answer 201. */
    async function push(ctx: RouteContext): Promise<void> {
      ctx.set('Cache-Control', 'no-store')
      ctx.set('Pragma', 'no-cache')
      // Repeats and lengths of the request's own parameters are the authorization endpoint's rules, checked in validate().
      const { params, client } = await host.resolve('clientAuth').readForm(ctx)
      // RFC 9126 §2.1: "request_uri" MUST NOT be provided in this case.
      if (params.count('request_uri') > 0) throw new OAuthError('invalid_request', 'request_uri must not be pushed')
      const pushed: Array<[string, string]> = [['client_id', client.client_id]]
      for (const name of params.names()) {
        if (CLIENT_AUTH_PARAMS.has(name)) continue
        for (const value of params.all(name)) pushed.push([name, value])
      }
      validate(ctx, client, pushed)
      await capPublicPushes(ctx, client)

      const requestUri = `${REQUEST_URI_PREFIX}${randomBytes(32).toString('base64url')}`
      const record: PushedRequest = { client_id: client.client_id, exp: Math.floor(Date.now() / 1000) + expiresIn, params: pushed }
      await store().put(keyOf(requestUri), JSON.stringify(record), expiresIn)
      ctx.status = 201
      ctx.body = { request_uri: requestUri, expires_in: expiresIn }
    }

    const resolver: RequestUriResolver = {
      name: 'par',
      /** RFC 9126 §4: one-time, bound to the client that pushed it, refused after `expires_in`. */
      async resolve(requestUri, client) {
        if (!REQUEST_URI.test(requestUri)) throw unknownRequestUri()
        const key = keyOf(requestUri)
        const now = Math.floor(Date.now() / 1000)
        // Another client presenting it does not spend it: its owner can still use it.
        const seen = readPushed(await store().get(key))
        if (!seen || seen.exp <= now || seen.client_id !== client.client_id) throw unknownRequestUri()
        // Atomic get-and-delete: of two browsers racing with one request_uri, one wins.
        const spent = readPushed(await store().consume(key))
        if (!spent || spent.exp <= now || spent.client_id !== client.client_id) throw unknownRequestUri()
        return spent.params
      },
      requires: (client) => required || client.require_pushed_authorization_requests === true,
    }
    let authorization: AuthorizationService | undefined
    try {
      authorization = host.resolve('authorization')
    } catch {
      authorization = undefined
    }
    if (!authorization) throw new Error('list @grantd/grant-authorization-code before @grantd/par in plugins')
    authorization.useRequestUris(resolver)

    host.route('post', PAR_PATH, push)
    host.discovery((issuer) => ({
      pushed_authorization_request_endpoint: `${issuer}${PAR_PATH}`,
      ...(required ? { require_pushed_authorization_requests: true } : {}),
    }))
  },
})
