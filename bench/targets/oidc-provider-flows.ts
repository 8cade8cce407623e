/**
 * node-oidc-provider 9 for the user-facing flows (bench/flows.ts): the authorization code
 * flow with PKCE and a login form, and refresh_token with rotation, on its default memory
 * adapter. Work is made equal to grantd's: JWT access tokens (ES256, through a default
 * resource whose `accessTokenFormat` is 'jwt', as in targets/oidc-provider.ts), ID tokens
 * signed with BENCH_ID_ALG, refresh tokens rotated on every use, and one login POST per
 * flow whose password check is a constant-time comparison of SHA-256 digests (grantd's
 * users-static with a clear password does the same). The interaction page is a small
 * HTML form; the login POST finishes login and consent in one step.
 * Input: PORT, BENCH_JWKS (private JWK set: ES256 and RS256), BENCH_ID_ALG (ES256|RS256),
 * BENCH_REDIRECT_URI, BENCH_OIDC_REDIS (`1`: every model in Redis at REDIS_URL through
 * targets/oidc-provider-redis-adapter.ts, the data model of oidc-provider's own example).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import Provider from 'oidc-provider'
import RedisAdapter from './oidc-provider-redis-adapter.js'

const port = Number(process.env.PORT)
const issuer = `http://127.0.0.1:${port}`
const jwks = JSON.parse(process.env.BENCH_JWKS ?? '') as { keys: Array<Record<string, string>> }
const idAlg = process.env.BENCH_ID_ALG ?? 'ES256'
const redirectUri = process.env.BENCH_REDIRECT_URI ?? 'http://127.0.0.1:5000/callback'
const RESOURCE = 'urn:grantd:bench:api'
const ALICE = { sub: 'u-alice', username: 'alice', claims: { name: 'Alice', email: 'alice@example.com', email_verified: true } }
const passwordDigest = createHash('sha256').update('wonderland').digest()

const provider = new Provider(issuer, {
  ...(process.env.BENCH_OIDC_REDIS === '1' ? { adapter: RedisAdapter } : {}),
  clients: [{
    client_id: 'web',
    client_secret: 'web-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [redirectUri],
    scope: 'openid profile email offline_access api',
    id_token_signed_response_alg: idAlg,
  }],
  jwks,
  cookies: { keys: ['bench-cookie-key-0123456789abcdef'] },
  scopes: ['openid', 'profile', 'email', 'offline_access', 'api'],
  claims: { openid: ['sub'], profile: ['name'], email: ['email', 'email_verified'] },
  ttl: { AccessToken: 300, IdToken: 300, AuthorizationCode: 60, RefreshToken: 2592000, Interaction: 600, Session: 3600, Grant: 2592000 },
  rotateRefreshToken: true,
  pkce: { required: () => true },
  findAccount: async (_ctx: unknown, sub: string) => (sub === ALICE.sub ? { accountId: sub, claims: async () => ({ sub, ...ALICE.claims }) } : undefined),
  interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx: unknown, resource: string) => {
        if (resource !== RESOURCE) throw new Error('unknown resource')
        return { scope: 'api', audience: RESOURCE, accessTokenTTL: 300, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } }
      },
    },
  },
})
provider.on('server_error', (_ctx: unknown, err: Error) => { process.stderr.write(`server_error: ${err.stack}\n`) })

function readBody(req: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))))
    req.on('error', reject)
  })
}

function checkPassword(username: string, password: string): boolean {
  const digest = createHash('sha256').update(password).digest()
  return timingSafeEqual(digest, passwordDigest) && username === ALICE.username
}

async function interaction(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const details = await provider.interactionDetails(req, res)
  if (req.method === 'GET') {
    res.setHeader('content-type', 'text/html; charset=utf-8')
    res.setHeader('cache-control', 'no-store')
    res.end(`<!doctype html><title>Sign in</title><form method="post" action="/interaction/${details.uid}/login"><input name="username"><input name="password" type="password"><button>Sign in</button></form>`)
    return
  }
  const form = await readBody(req)
  if (!checkPassword(form.get('username') ?? '', form.get('password') ?? '')) {
    res.statusCode = 400
    res.end('bad credentials')
    return
  }
  const params = details.params as { client_id: string; scope: string }
  const grant = new provider.Grant({ accountId: ALICE.sub, clientId: params.client_id })
  grant.addOIDCScope(params.scope)
  grant.addResourceScope(RESOURCE, 'api')
  const grantId = await grant.save()
  await provider.interactionFinished(req, res, { login: { accountId: ALICE.sub }, consent: { grantId } }, { mergeWithLastSubmission: false })
}

const callback = provider.callback()
createServer((req, res) => {
  if (req.url?.startsWith('/interaction/')) {
    interaction(req, res).catch((err: Error) => { process.stderr.write(`interaction: ${err.stack}\n`); res.statusCode = 500; res.end() })
    return
  }
  callback(req, res)
}).listen(port, '127.0.0.1')
process.on('SIGTERM', () => process.exit(0))
