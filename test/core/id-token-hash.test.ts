/**
 * ID tokens signed with each supported key type carry an `at_hash` computed with the
 * hash that belongs to the signing algorithm (OIDC Core §3.1.3.6): SHA-256 for ES256 and
 * RS256, SHA-512 for EdDSA with Ed25519 (OpenID Connect Token Hash Algorithms 1.0).
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose'
import { generatePrivateJwk, type SigningAlg } from '@grantd/core'
import { basic, postForm, startServer } from '../helpers/server.js'

const dir = mkdtempSync(join(tmpdir(), 'grantd-at-hash-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const HASH_FOR: Record<string, string> = { ES256: 'sha256', RS256: 'sha256', PS256: 'sha256', ES384: 'sha384', EdDSA: 'sha512' }

function leftHalf(value: string, hash: string): string {
  const digest = createHash(hash).update(value, 'ascii').digest()
  return digest.subarray(0, digest.length / 2).toString('base64url')
}

for (const alg of ['ES256', 'RS256', 'EdDSA', 'ES384'] as const satisfies readonly SigningAlg[]) {
  t.test(`${alg}: the ID token verifies and its at_hash uses ${HASH_FOR[alg]}`, async (t) => {
    const file = join(dir, `${alg}.json`)
    writeFileSync(file, JSON.stringify({ keys: [await generatePrivateJwk(alg)] }), { mode: 0o600 })
    const srv = await startServer({
      issuer: 'http://issuer.test',
      keys: { file },
      users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-alice', username: 'alice', password: 'wonderland', claims: { name: 'Alice' } }] } },
      plugins: ['@grantd/grant-password'],
      clients: [{ client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password'], scope: 'openid profile api' }],
    })
    t.teardown(srv.close)
    const res = await postForm(`${srv.url}/connect/token`, { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'openid profile api' }, { authorization: basic('ro', 'ro-secret') })
    t.equal(res.status, 200, res.text)
    const jwks = (await (await fetch(`${srv.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet
    const { payload, protectedHeader } = await jwtVerify(String(res.json.id_token), createLocalJWKSet(jwks), { issuer: 'http://issuer.test', audience: 'ro' })
    t.equal(protectedHeader.alg, alg)
    t.equal(payload.sub, 'u-alice')
    t.equal(payload.at_hash, leftHalf(String(res.json.access_token), HASH_FOR[alg]!))
    // The wrong hash would not match: the assertion above can tell them apart.
    t.not(leftHalf(String(res.json.access_token), 'sha256'), leftHalf(String(res.json.access_token), 'sha512'))
  })
}
