import t from 'tap'
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose'
import { startServer, postForm, basic } from '../helpers/server.js'

const config = {
  issuer: 'http://issuer.test',
  plugins: ['@grantd/grant-client-credentials'],
  clients: [
    { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api api:read' },
  ],
}

t.test('client_credentials issues a verifiable RFC 9068 token', async (t) => {
  const srv = await startServer(config)
  t.teardown(srv.close)
  const res = await postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc', 'svc-secret') })
  t.equal(res.status, 200)
  t.equal(res.headers.get('cache-control'), 'no-store')
  t.equal(res.headers.get('pragma'), 'no-cache')
  t.equal(res.json.token_type, 'Bearer')
  t.equal(res.json.expires_in, 300)
  t.equal(res.json.scope, 'api')
  t.notOk('refresh_token' in res.json)
  t.notOk('id_token' in res.json)
  const jwks = (await (await fetch(`${srv.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet
  const { payload, protectedHeader } = await jwtVerify(res.json.access_token as string, createLocalJWKSet(jwks), { issuer: 'http://issuer.test', typ: 'at+jwt' })
  t.equal(protectedHeader.alg, 'ES256')
  t.equal(payload.client_id, 'svc')
  t.equal(payload.sub, 'svc')
  t.equal(payload.scope, 'api')
  t.type(payload.jti, 'string')
})
