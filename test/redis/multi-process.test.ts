/**
 * Many processes, one server (SPEC §8): two grantd CLI processes share one Redis prefix,
 * one signing key file and one cookie key. A code issued by one redeems at the other, a
 * refresh token rotates at either, a family revocation and an access-token revocation
 * reach both, and a private_key_jwt assertion's jti is single-use across both.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { randomUUID } from 'node:crypto'
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT, type JSONWebKeySet } from 'jose'
import { CLI, basic, freePort, postForm, startCli, type RunningServer } from '../helpers/server.js'
import { findRedis } from '../helpers/redis.js'
import { loginForCode, redeem, WEB_REDIRECT } from '../authorization-code/flow.js'

const redis = await findRedis()
if (!redis) {
  t.skip('no Redis available (see notice above)', () => {})
} else {
  const dir = mkdtempSync(join(tmpdir(), 'grantd-multi-'))
  const keys = join(dir, 'signing.json')
  const gen = spawnSync(process.execPath, [CLI, 'keys', 'generate', '--alg', 'ES256', '--out', keys], { encoding: 'utf8' })
  if (gen.status !== 0) throw new Error(gen.stderr)
  const portA = await freePort()
  const prefix = `grantd-multi:${randomBytes(4).toString('hex')}:`
  const jwtClientKey = await generateKeyPair('ES256', { extractable: true })
  const issuer = `http://127.0.0.1:${portA}`
  const config = join(dir, 'grantd.json')
  writeFileSync(config, JSON.stringify({
    issuer,
    log: { level: 'warn' },
    keys: { file: keys },
    cookies: { keys: ['shared-cookie-key-0123456789'] },
    store: { use: '@grantd/store-redis', options: { url: redis.url, prefix } },
    users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-alice', username: 'alice', password: 'wonderland', claims: { name: 'Alice' } }] } },
    plugins: ['@grantd/grant-authorization-code', '@grantd/grant-refresh-token', '@grantd/grant-client-credentials'],
    clients: [
      { client_id: 'web', client_secret: 'web-secret', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [WEB_REDIRECT], scope: 'openid profile offline_access api', require_pkce: true },
      { client_id: 'jwt', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ ...(await exportJWK(jwtClientKey.publicKey)), kid: 'k1' }] }, grant_types: ['client_credentials'], scope: 'api' },
    ],
  }))
  const a = await startCli(config, { port: portA })
  const b = await startCli(config)
  t.teardown(async () => {
    await Promise.all([a.stop(), b.stop()])
    rmSync(dir, { recursive: true, force: true })
    await redis.stop()
  })
  const at = (url: string) => ({ url }) as RunningServer
  const auth = { authorization: basic('web', 'web-secret') }

  t.test('a code issued by one process redeems at the other', async (t) => {
    const { code, verifier } = await loginForCode(at(a.url), { scope: 'openid profile offline_access api' })
    const res = await redeem(at(b.url), code, verifier)
    t.equal(res.status, 200, 'process B redeems the code process A issued')
    const jwks = await (await fetch(`${a.url}/.well-known/jwks.json`)).json() as JSONWebKeySet
    const { payload } = await jwtVerify(res.json.access_token as string, createLocalJWKSet(jwks), { issuer: `http://127.0.0.1:${portA}` })
    t.equal(payload.sub, 'u-alice', 'B signs with the shared key and the shared issuer')
    const again = await redeem(at(a.url), code, verifier)
    t.equal(again.json.error, 'invalid_grant', 'the code is single-use across processes')
    const introspect = await postForm(`${b.url}/connect/introspect`, { token: res.json.access_token as string }, auth)
    t.equal(introspect.json.active, false, 'the replay revoked the tokens at the other process too')
  })

  t.test('a refresh token rotates at either process; family revocation reaches both', async (t) => {
    const { code, verifier } = await loginForCode(at(a.url), { scope: 'openid offline_access api' })
    const first = await redeem(at(a.url), code, verifier)
    t.equal(first.status, 200, 'A redeems the code')
    const r1 = first.json.refresh_token as string
    const atB = await postForm(`${b.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: r1 }, auth)
    t.equal(atB.status, 200, 'rotates at B')
    const r2 = atB.json.refresh_token as string
    const atA = await postForm(`${a.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: r2 }, auth)
    t.equal(atA.status, 200, 'rotates again at A')
    const r3 = atA.json.refresh_token as string
    const replay = await postForm(`${b.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: r1 }, auth)
    t.equal(replay.json.error, 'invalid_grant', 'replaying the first token at B is refused')
    const latest = await postForm(`${a.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: r3 }, auth)
    t.equal(latest.json.error, 'invalid_grant', 'and the family is revoked at A as well')
  })

  t.test('an access token revoked at one process is inactive at the other', async (t) => {
    const { code, verifier } = await loginForCode(at(a.url), { scope: 'openid api' })
    const tokens = await redeem(at(a.url), code, verifier)
    const accessToken = tokens.json.access_token as string
    t.equal((await postForm(`${b.url}/connect/introspect`, { token: accessToken }, auth)).json.active, true, 'active at B')
    t.equal((await postForm(`${a.url}/connect/revocation`, { token: accessToken, token_type_hint: 'access_token' }, auth)).status, 200, 'revoked at A')
    t.equal((await postForm(`${b.url}/connect/introspect`, { token: accessToken }, auth)).json.active, false, 'inactive at B')
    const info = await fetch(`${b.url}/connect/userinfo`, { headers: { authorization: `Bearer ${accessToken}` } })
    t.equal(info.status, 401, 'userinfo at B refuses it')
  })

  t.test('a private_key_jwt assertion used at one process is refused at the other (RFC 7523 §3 jti)', async (t) => {
    const now = Math.floor(Date.now() / 1000)
    const assertion = await new SignJWT({ iss: 'jwt', sub: 'jwt', aud: issuer, jti: randomUUID(), iat: now, exp: now + 60 })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .sign(jwtClientKey.privateKey)
    const form = { grant_type: 'client_credentials', scope: 'api', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }
    const first = await postForm(`${a.url}/connect/token`, form)
    t.equal(first.status, 200, 'A accepts the assertion')
    const replay = await postForm(`${b.url}/connect/token`, form)
    t.equal(replay.status, 401, 'B refuses the replay')
    t.equal(replay.json.error, 'invalid_client', 'as invalid_client')
  })
}
