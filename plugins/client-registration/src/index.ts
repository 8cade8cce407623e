import { timingSafeEqual } from 'node:crypto'
import {
  definePlugin, hashSecret, OAuthError, randomToken, readJson, SecretVerifier, secretKey,
  type ClientDirectory, type JsonObject, type PluginHost, type RouteContext, type StoredClientRecord,
} from '@grantd/core'
import { publicMetadata, requestedMetadata, SERVER_OWNED } from './metadata.js'
import { parseRegistrationOptions, type RegistrationOptions } from './options.js'

export { parseRegistrationOptions, type RegistrationOptions } from './options.js'

export const REGISTRATION_PATH = '/connect/register'
const RATE_WINDOW_SECONDS = 3600

/** RFC 6750 §2.1 b64token. */
function bearer(ctx: RouteContext): string | undefined {
  const match = /^Bearer +([A-Za-z0-9\-._~+/]{1,2048}=*) *$/i.exec(ctx.get('authorization'))
  return match?.[1]
}

/** RFC 6750 §3: no error code when no token was sent, `invalid_token` for a wrong one. */
function unauthorized(sent: boolean, description: string): OAuthError {
  return new OAuthError('invalid_token', description, {
    status: 401,
    headers: { 'WWW-Authenticate': sent ? `Bearer realm="grantd", error="invalid_token"` : 'Bearer realm="grantd"' },
  })
}

/** SHA-256 digests compared in constant time: neither length nor content leaks. */
function sameDigest(presentedDigest: string, stored: unknown): boolean {
  if (typeof stored !== 'string') return false
  const a = Buffer.from(presentedDigest)
  const b = Buffer.from(stored)
  return a.length === b.length && timingSafeEqual(a, b)
}

const needsSecret = (method: unknown): boolean => method === 'client_secret_basic' || method === 'client_secret_post'

/**
 * OAuth 2.0 Dynamic Client Registration (RFC 7591) and its management protocol (RFC 7592).
 * The plugin speaks HTTP; the clients themselves live in the host's client directory
 * (`host.resolve('clients')`), which validates them like config-file clients, keeps them
 * in the store and serves them to every process.
 */
export default definePlugin<RegistrationOptions>({
  name: 'client-registration',
  options: parseRegistrationOptions,
  register(host: PluginHost<RegistrationOptions>) {
    const options = host.options
    const initialDigests = options.initialAccessTokens.map((t) => secretKey(t))
    const directory = (): ClientDirectory => host.resolve('clients')
    host.resolve('clients').allowPrivateNetworkUris(options.allowPrivateNetworkUris)

    host.discovery((issuer) => ({ registration_endpoint: `${issuer}${REGISTRATION_PATH}` }))

    function noStore(ctx: RouteContext): void {
      // RFC 7591 §3.2.1: responses carry credentials.
      ctx.set('Cache-Control', 'no-store')
      ctx.set('Pragma', 'no-cache')
    }

    /** RFC 7591 §3: the initial access token, unless registration is open. */
    function checkInitialToken(ctx: RouteContext): void {
      if (options.open) return
      const token = bearer(ctx)
      if (token === undefined) throw unauthorized(ctx.get('authorization') !== '', 'an initial access token is required')
      const digest = secretKey(token)
      // Every configured token is compared, so timing does not say which one (or whether any) is close.
      let ok = false
      for (const d of initialDigests) ok = sameDigest(digest, d) || ok
      if (!ok) throw unauthorized(true, 'the initial access token is not valid')
    }

    /** SPEC §9: anonymous callers cannot create unbounded state. */
    async function checkRate(ctx: RouteContext): Promise<void> {
      const count = await host.resolve('store').increment(`registration-rate:${secretKey(ctx.state.clientIp)}`, RATE_WINDOW_SECONDS)
      if (count > options.maxRegistrationsPerAddress) {
        throw new OAuthError('invalid_request', 'too many registrations from this address; try again later', { status: 429, headers: { 'Retry-After': String(RATE_WINDOW_SECONDS) } })
      }
    }

    function respond(ctx: RouteContext, status: number, clientId: string, record: StoredClientRecord, accessToken: string, secret?: string): void {
      const { metadata, registration } = record
      ctx.status = status
      ctx.type = 'application/json'
      ctx.body = {
        client_id: clientId,
        ...(secret !== undefined ? { client_secret: secret } : {}),
        ...(typeof registration.client_id_issued_at === 'number' ? { client_id_issued_at: registration.client_id_issued_at } : {}),
        // RFC 7591 §3.2.1: 0 = the secret does not expire.
        ...(needsSecret(metadata.token_endpoint_auth_method) ? { client_secret_expires_at: 0 } : {}),
        registration_access_token: accessToken,
        registration_client_uri: `${ctx.state.issuer}${REGISTRATION_PATH}/${encodeURIComponent(clientId)}`,
        ...publicMetadata(metadata),
      }
    }

    /** RFC 7591 §3.1: register; the server assigns client_id (and the secret). */
    host.route('post', REGISTRATION_PATH, async (ctx) => {
      noStore(ctx)
      checkInitialToken(ctx)
      const body = await readJson(ctx)
      await checkRate(ctx)
      if (body.client_id !== undefined) throw new OAuthError('invalid_client_metadata', 'client_id is assigned by the server')
      if (body.client_secret !== undefined) throw new OAuthError('invalid_client_metadata', 'client_secret is issued by the server')
      const metadata = requestedMetadata(body, options)
      const clientId = randomToken(16)
      const secret = needsSecret(metadata.token_endpoint_auth_method) ? randomToken(32) : undefined
      if (secret !== undefined) metadata.client_secret = await hashSecret(secret)
      const accessToken = randomToken(32)
      const registration: JsonObject = { rat: secretKey(accessToken), client_id_issued_at: Math.floor(Date.now() / 1000) }
      await directory().save(clientId, metadata, registration)
      ctx.state.clientId = clientId
      host.log.info({ event: 'client.registered', client_id: clientId }, 'client registered')
      respond(ctx, 201, clientId, { metadata, registration }, accessToken, secret)
    })

    /**
     * RFC 7592 §2: the registration access token proves the caller; an unknown client, a
     * config client and a wrong token all answer 401 alike.
     */
    async function authorizeManagement(ctx: RouteContext): Promise<{ clientId: string; record: StoredClientRecord; token: string }> {
      noStore(ctx)
      let clientId: string
      try {
        clientId = decodeURIComponent(ctx.path.slice(REGISTRATION_PATH.length + 1))
      } catch {
        throw unauthorized(true, 'the registration access token is not valid for this client')
      }
      const token = bearer(ctx)
      if (token === undefined) throw unauthorized(ctx.get('authorization') !== '', 'a registration access token is required')
      const digest = secretKey(token)
      const record = clientId.length > 0 && clientId.length <= 128 ? await directory().read(clientId) : undefined
      if (!record || !sameDigest(digest, record.registration.rat)) throw unauthorized(true, 'the registration access token is not valid for this client')
      ctx.state.clientId = clientId
      return { clientId, record, token }
    }

    const managed = `${REGISTRATION_PATH}/:client_id`

    /** RFC 7592 §2.1: read. */
    host.route('get', managed, async (ctx) => {
      const { clientId, record, token } = await authorizeManagement(ctx)
      respond(ctx, 200, clientId, record, token)
    })

    /** RFC 7592 §2.2: replace the metadata; client_id never changes, the secret only when one is newly needed. */
    host.route('put', managed, async (ctx) => {
      const { clientId, record, token } = await authorizeManagement(ctx)
      const body = await readJson(ctx)
      if (body.client_id !== clientId) throw new OAuthError('invalid_client_metadata', 'client_id must be sent and equal the registered one (RFC 7592 §2.2)')
      const stored = record.metadata.client_secret
      if (body.client_secret !== undefined) {
        // §2.2: a client_secret sent must be the current one; a client never chooses its own.
        const matches = typeof body.client_secret === 'string' && typeof stored === 'string' && await new SecretVerifier(stored).verify(body.client_secret)
        if (!matches) throw new OAuthError('invalid_client_metadata', 'client_secret does not match the issued secret')
      }
      const rest: Record<string, unknown> = { ...body }
      for (const k of SERVER_OWNED) delete rest[k]
      const metadata = requestedMetadata(rest, options)
      let secret: string | undefined
      if (needsSecret(metadata.token_endpoint_auth_method)) {
        if (typeof stored === 'string') metadata.client_secret = stored
        else {
          secret = randomToken(32)
          metadata.client_secret = await hashSecret(secret)
        }
      }
      await directory().save(clientId, metadata, record.registration)
      host.log.info({ event: 'client.updated', client_id: clientId }, 'registered client updated')
      respond(ctx, 200, clientId, { metadata, registration: record.registration }, token, secret)
    })

    /** RFC 7592 §2.3: delete; the client's credentials and tokens stop working. */
    host.route('delete', managed, async (ctx) => {
      const { clientId } = await authorizeManagement(ctx)
      await directory().remove(clientId)
      host.log.info({ event: 'client.deleted', client_id: clientId }, 'registered client deleted')
      ctx.status = 204
      ctx.body = null
    })
  },
})
