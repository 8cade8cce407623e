/**
 * grantd signs through node:crypto (core/src/tokens/jws.ts), not jose. Every alg it offers must
 * give tokens that the ecosystem accepts: jose, and a verifier that shares no code with it
 * (jsonwebtoken, with jwks-rsa reading the server's JWKS). jsonwebtoken has no EdDSA, so
 * EdDSA tokens are checked with WebCrypto's Ed25519 directly instead.
 *
 * The second half checks the signer alone: deterministic algs (RS256, EdDSA) must give
 * exactly jose's bytes; every alg must verify under jose over awkward payloads.
 */
import t from 'tap'
import { createPublicKey, webcrypto } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import jwt from 'jsonwebtoken'
import { JwksClient } from 'jwks-rsa'
import { CompactSign, compactVerify, createRemoteJWKSet, decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose'
import { generatePrivateJwk, KeySet, type SigningAlg } from '@grantd/core'
import { JwsSigner } from '../../core/src/tokens/jws.js'
import { ALICE, baseConfig, loginForCode, redeem, startFlowServer, WEB_REDIRECT } from '../authorization-code/flow.js'
import { basic, postForm } from '../helpers/server.js'

const ALGS: readonly SigningAlg[] = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA']
const dir = mkdtempSync(join(tmpdir(), 'grantd-jws-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

/** Verify with jsonwebtoken, the key fetched by jwks-rsa from the server's jwks_uri. */
async function verifyWithJsonwebtoken(token: string, jwksUri: string, alg: SigningAlg, issuer: string): Promise<jwt.JwtPayload> {
  const { kid } = decodeProtectedHeader(token)
  const key = await new JwksClient({ jwksUri, cache: false }).getSigningKey(kid)
  return jwt.verify(token, key.getPublicKey(), { algorithms: [alg as jwt.Algorithm], issuer, complete: false }) as jwt.JwtPayload
}

/** Ed25519 through WebCrypto directly (RFC 8037 §3.1), for the alg jsonwebtoken lacks. */
async function verifyEd25519(token: string, jwk: JWK): Promise<boolean> {
  const [h, p, s] = token.split('.') as [string, string, string]
  const key = await webcrypto.subtle.importKey('jwk', { kty: 'OKP', crv: 'Ed25519', x: jwk.x! }, { name: 'Ed25519' }, false, ['verify'])
  return webcrypto.subtle.verify({ name: 'Ed25519' }, key, Buffer.from(s, 'base64url'), Buffer.from(`${h}.${p}`))
}

t.test('every alg grantd offers: access and ID tokens verify under jose and jsonwebtoken/jwks-rsa', async (t) => {
  const jwks: JWK[] = []
  for (const alg of ALGS) jwks.push(await generatePrivateJwk(alg))
  const file = join(dir, 'all.json')
  writeFileSync(file, JSON.stringify({ keys: jwks }), { mode: 0o600 })
  const clients = ALGS.map((alg) => ({
    client_id: `c-${alg}`, client_secret: 'secret', grant_types: ['authorization_code', 'client_credentials'], redirect_uris: [WEB_REDIRECT],
    scope: 'openid profile api', id_token_signed_response_alg: alg, access_token_signed_response_alg: alg,
  }))
  const srv = await startFlowServer({ ...baseConfig({ plugins: ['@grantd/grant-authorization-code', '@grantd/grant-client-credentials'], clients }), keys: { file } })
  t.teardown(srv.close)
  const meta = (await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json()) as { jwks_uri: string; id_token_signing_alg_values_supported: string[] }
  t.same(meta.id_token_signing_alg_values_supported, ALGS)
  const remote = createRemoteJWKSet(new URL(meta.jwks_uri))

  for (const [i, alg] of ALGS.entries()) {
    const id = `c-${alg}`
    const cc = await postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic(id, 'secret') })
    t.equal(cc.status, 200, cc.text)
    const { code, verifier } = await loginForCode(srv, { client: id, scope: 'openid profile api' })
    const flow = await redeem(srv, code, verifier, { auth: { authorization: basic(id, 'secret') } })
    t.equal(flow.status, 200, flow.text)
    const tokens = [['client_credentials access token', String(cc.json.access_token), 'at+jwt'], ['code flow access token', String(flow.json.access_token), 'at+jwt'], ['ID token', String(flow.json.id_token), 'JWT']] as const
    for (const [what, token, typ] of tokens) {
      const { protectedHeader, payload } = await jwtVerify(token, remote, { issuer: srv.url, typ, algorithms: [alg] })
      t.match(protectedHeader, { alg, kid: jwks[i]!.kid, typ }, `${alg} ${what}: jose`)
      if (alg === 'EdDSA') {
        t.ok(await verifyEd25519(token, jwks[i]!), `${alg} ${what}: WebCrypto Ed25519`)
      } else {
        const other = await verifyWithJsonwebtoken(token, meta.jwks_uri, alg, srv.url)
        t.same(other, payload, `${alg} ${what}: jsonwebtoken + jwks-rsa read the same claims`)
      }
    }
    const idClaims = await jwtVerify(String(flow.json.id_token), remote, { issuer: srv.url, audience: id })
    t.equal(idClaims.payload.sub, ALICE.sub)
    // A flipped bit in the signature must fail under both verifiers: they really check it.
    const token = String(cc.json.access_token)
    const sig = Buffer.from(token.split('.')[2]!, 'base64url')
    sig[0]! ^= 1
    const tampered = `${token.split('.').slice(0, 2).join('.')}.${sig.toString('base64url')}`
    await t.rejects(jwtVerify(tampered, remote, { issuer: srv.url }), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' }, `${alg}: jose refuses a tampered signature`)
    if (alg === 'EdDSA') t.notOk(await verifyEd25519(tampered, jwks[i]!), `${alg}: WebCrypto refuses a tampered signature`)
    else await t.rejects(verifyWithJsonwebtoken(tampered, meta.jwks_uri, alg, srv.url), { message: 'invalid signature' }, `${alg}: jsonwebtoken refuses a tampered signature`)
  }
})

const PAYLOADS = [
  '{}',
  JSON.stringify({ sub: 'ünïcødé ✓ 𝄞', name: 'Zoë "quoted" \\ back\nline', empty: '' }),
  JSON.stringify({ big: 'x'.repeat(5000), n: [1, 2.5, -3e-7, null, true] }),
  JSON.stringify({ iss: 'https://id.example.com', aud: ['a', 'b'], exp: 2 ** 31, iat: 0 }),
]

t.test('the signer alone: jose verifies every alg; RS256 and EdDSA give jose\'s exact bytes', async (t) => {
  for (const alg of ALGS) {
    const jwk = await generatePrivateJwk(alg)
    const keys = await KeySetOf(jwk)
    const signingKey = keys.keys[0]!
    const signer = new JwsSigner(signingKey.keyObject, { alg, kid: signingKey.kid, typ: 'at+jwt' })
    const publicKey = await importJWK({ ...signingKey.publicJwk }, alg)
    for (const payload of PAYLOADS) {
      const token = signer.sign(payload)
      const { payload: out, protectedHeader } = await compactVerify(token, publicKey, { algorithms: [alg] })
      t.equal(Buffer.from(out).toString('utf8'), payload, `${alg}: the payload round-trips`)
      t.same(protectedHeader, { alg, kid: signingKey.kid, typ: 'at+jwt' })
      if (alg === 'RS256' || alg === 'EdDSA') {
        const reference = await new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader({ alg, kid: signingKey.kid, typ: 'at+jwt' }).sign(signingKey.privateKey)
        t.equal(token, reference, `${alg}: byte for byte what jose makes`)
      }
      if (alg.startsWith('ES')) {
        // RFC 7518 §3.4: R || S, 64 octets for P-256, 96 for P-384 (not DER).
        t.equal(Buffer.from(token.split('.')[2]!, 'base64url').length, alg === 'ES256' ? 64 : 96, `${alg}: raw R||S signature`)
      }
    }
  }
  t.throws(() => new JwsSigner(createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' }, format: 'jwk' }), { alg: 'EdDSA', kid: 'k', typ: 'JWT' }), /private key/)
})

async function KeySetOf(jwk: JWK): Promise<KeySet> {
  const file = join(dir, `one-${jwk.alg}.json`)
  writeFileSync(file, JSON.stringify({ keys: [jwk] }), { mode: 0o600 })
  return KeySet.fromFile(file)
}
