/**
 * A certified relying-party library (openid-client v6) discovers grantd and gets a
 * client_credentials token with each client authentication method; the JWT verifies
 * against the published JWKS (jose createRemoteJWKSet), also behind a TLS-terminating proxy.
 */
import t from 'tap'
import * as client from 'openid-client'
import { createRemoteJWKSet, customFetch as joseFetch, exportJWK, generateKeyPair, jwtVerify } from 'jose'
import { startServer } from '../helpers/server.js'

const ODD_ID = 'a b:c+d%e/é'
const ODD_SECRET = 's3 cr:et+%/é&='
const jwtKeys = await generateKeyPair('ES256')

const clients = [
  { client_id: ODD_ID, client_secret: ODD_SECRET, grant_types: ['client_credentials'], scope: 'api api:read' },
  { client_id: 'poster', client_secret: 'poster-secret', token_endpoint_auth_method: 'client_secret_post', grant_types: ['client_credentials'], scope: 'api' },
  { client_id: 'jwt', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ ...(await exportJWK(jwtKeys.publicKey)), kid: 'k1' }] }, grant_types: ['client_credentials'], scope: 'api' },
]

/** A token verified the way a resource server would: keys fetched from the discovered jwks_uri. */
async function verifyAccessToken(config: client.Configuration, token: string) {
  const meta = config.serverMetadata()
  const jwks = createRemoteJWKSet(new URL(meta.jwks_uri!))
  return jwtVerify(token, jwks, { issuer: meta.issuer, typ: 'at+jwt' })
}

t.test('openid-client discovers an http issuer (allowInsecureRequests) and gets tokens with every auth method', async (t) => {
  const srv = await startServer({ plugins: ['@grantd/grant-client-credentials'], clients })
  t.teardown(srv.close)
  const insecure = { execute: [client.allowInsecureRequests] }
  // Without the opt-in the library refuses a plain-http issuer.
  await t.rejects(client.discovery(new URL(srv.url), 'poster', undefined, client.ClientSecretPost('poster-secret')))

  const methods: Array<[string, string, client.ClientAuth]> = [
    ['client_secret_basic', ODD_ID, client.ClientSecretBasic(ODD_SECRET)],
    ['client_secret_post', 'poster', client.ClientSecretPost('poster-secret')],
    ['private_key_jwt', 'jwt', client.PrivateKeyJwt(jwtKeys.privateKey)],
  ]
  for (const [method, clientId, auth] of methods) {
    const config = await client.discovery(new URL(srv.url), clientId, undefined, auth, insecure)
    t.equal(config.serverMetadata().issuer, srv.url, `${method}: discovered issuer`)
    t.same(config.serverMetadata().grant_types_supported, ['client_credentials'])
    const tokens = await client.clientCredentialsGrant(config, { scope: 'api' })
    t.equal(tokens.token_type, 'bearer', `${method}: token_type (normalised by the library)`)
    t.equal(tokens.scope, 'api')
    t.equal(tokens.expires_in, 300)
    t.notOk(tokens.refresh_token)
    t.notOk(tokens.id_token)
    const { payload, protectedHeader } = await verifyAccessToken(config, tokens.access_token)
    t.equal(protectedHeader.typ, 'at+jwt')
    t.match(payload, { iss: srv.url, sub: clientId, client_id: clientId, scope: 'api', aud: clientId })
    t.ok(payload.exp! - payload.iat! === 300, `${method}: exp = iat + accessTokenTtl`)
    const introspected = await client.tokenIntrospection(config, tokens.access_token)
    t.equal(introspected.active, true, `${method}: introspection with the same client authentication`)
    t.equal(introspected.client_id, clientId)
  }

  // A wrong secret surfaces as the library's response error carrying invalid_client.
  const wrong = await client.discovery(new URL(srv.url), 'poster', undefined, client.ClientSecretPost('nope'), insecure)
  await t.rejects(client.clientCredentialsGrant(wrong, { scope: 'api' }), { name: 'ResponseBodyError', error: 'invalid_client', status: 401 })
  const noScope = await client.discovery(new URL(srv.url), 'poster', undefined, client.ClientSecretPost('poster-secret'), insecure)
  await t.rejects(client.clientCredentialsGrant(noScope), { name: 'ResponseBodyError', error: 'invalid_scope', status: 400 })
})

t.test('behind a TLS-terminating proxy: an https issuer, no insecure opt-in needed', async (t) => {
  const srv = await startServer({ proxy: { trust: true }, plugins: ['@grantd/grant-client-credentials'], clients })
  t.teardown(srv.close)
  const publicBase = 'https://id.example.com/auth'
  // The "proxy": https://id.example.com/auth/* → http://127.0.0.1:PORT/* with X-Forwarded-* headers.
  const proxy: client.CustomFetch = (url, options) => {
    const u = new URL(url)
    if (!url.startsWith(`${publicBase}/`)) throw new Error(`unexpected URL ${url}`)
    const headers = new Headers(options.headers)
    headers.set('x-forwarded-proto', 'https')
    headers.set('x-forwarded-host', 'id.example.com')
    headers.set('x-forwarded-prefix', '/auth')
    return fetch(`${srv.url}${u.pathname.slice('/auth'.length)}${u.search}`, { ...options, headers } as RequestInit)
  }
  const config = await client.discovery(new URL(publicBase), 'poster', undefined, client.ClientSecretPost('poster-secret'), { [client.customFetch]: proxy })
  config[client.customFetch] = proxy
  const meta = config.serverMetadata()
  t.equal(meta.issuer, publicBase)
  t.equal(meta.token_endpoint, `${publicBase}/connect/token`)
  const tokens = await client.clientCredentialsGrant(config, { scope: 'api' })
  const jwks = createRemoteJWKSet(new URL(meta.jwks_uri!), { [joseFetch]: (url, options) => proxy(url, options as never) })
  const verified = await jwtVerify(tokens.access_token, jwks, { issuer: publicBase, typ: 'at+jwt' })
  t.equal(verified.payload.iss, publicBase)
})
