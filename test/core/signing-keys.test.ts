/**
 * keys.file beyond the common cases (jwks-keys.test.ts): files whose JSON is not a JWK
 * set at all fail with an error naming keys.file, and the less common algorithms
 * (ES384, PS256) sign tokens that verify against the published JWKS.
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose'
import { generatePrivateJwk } from '@grantd/core'
import { basic, postForm, startServer } from '../helpers/server.js'

const dir = mkdtempSync(join(tmpdir(), 'grantd-signing-keys-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const config = (file: string) => ({
  issuer: 'http://issuer.test',
  keys: { file },
  plugins: ['@grantd/grant-client-credentials'],
  clients: [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' }],
})

t.test('JSON that is not a JWK set → a start error naming keys.file', async (t) => {
  for (const [name, content] of [['null', 'null'], ['array', '[]'], ['string', '"keys"'], ['number', '42'], ['keys-object', '{"keys":{}}'], ['keys-null', '{"keys":null}']] as const) {
    const file = join(dir, `${name}.json`)
    writeFileSync(file, content)
    await t.rejects(startServer(config(file)), { name: 'ConfigError', message: /^keys\.file: expected a JWK set/ }, name)
  }
  const mismatched = join(dir, 'mismatch.json')
  const ec = await generatePrivateJwk('ES256')
  writeFileSync(mismatched, JSON.stringify({ keys: [{ ...ec, alg: 'RS256' }] }))
  await t.rejects(startServer(config(mismatched)), { name: 'ConfigError', message: /^keys\.file keys\[0\]: / }, 'an alg that does not fit the key')
})

t.test('ES384 and PS256 keys sign tokens that verify against the JWKS', async (t) => {
  for (const alg of ['ES384', 'PS256'] as const) {
    const file = join(dir, `${alg}.json`)
    const jwk = await generatePrivateJwk(alg)
    writeFileSync(file, JSON.stringify({ keys: [jwk] }))
    const srv = await startServer(config(file))
    const res = await postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc', 'svc-secret') })
    t.equal(res.status, 200, res.text)
    const jwks = (await (await fetch(`${srv.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet
    t.same(jwks.keys.map((k) => [k.alg, k.kid, 'd' in k]), [[alg, jwk.kid, false]])
    const { protectedHeader } = await jwtVerify(String(res.json.access_token), createLocalJWKSet(jwks), { issuer: 'http://issuer.test', typ: 'at+jwt' })
    t.equal(protectedHeader.alg, alg)
    await srv.close()
  }
})
