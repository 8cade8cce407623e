/**
 * node-oidc-provider 9 as the reference: client_credentials (client_secret_basic) issuing
 * ES256 JWT access tokens. It only issues JWTs for client_credentials through a resource
 * server (RFC 8707 resource indicators) whose `accessTokenFormat` is 'jwt'; the default
 * resource makes a plain `grant_type=client_credentials&scope=api` request get one.
 * Input: PORT, BENCH_JWK (a private ES256 JWK as JSON).
 */
import { createServer } from 'node:http'
import Provider from 'oidc-provider'

const port = Number(process.env.PORT)
const issuer = `http://127.0.0.1:${port}`
const jwk = JSON.parse(process.env.BENCH_JWK ?? '') as Record<string, string>
const RESOURCE = 'urn:grantd:bench:api'

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'svc',
    client_secret: 'svc-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: 'api',
    // The only key is ES256, so the ID token default (RS256) must follow it even though none is issued.
    id_token_signed_response_alg: 'ES256',
  }],
  jwks: { keys: [jwk] },
  scopes: ['api'],
  ttl: { ClientCredentials: 300 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
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

createServer(provider.callback()).listen(port, '127.0.0.1')
process.on('SIGTERM', () => process.exit(0))
