/**
 * Two grantd processes on one Redis behave as one DPoP server: a proof's jti spent at one
 * is a replay at the other, a nonce handed out by one is honoured by the other (same
 * cookies.keys, nothing stored), and a public client's DPoP-bound refresh token issued by
 * one redeems at the other only with its key.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { decodeJwt } from 'jose'
import { CLI, basic, freePort, postForm, startCli, type RunningServer } from '../helpers/server.js'
import { findRedis } from '../helpers/redis.js'
import { loginForCode, SPA_REDIRECT } from '../authorization-code/flow.js'
import { DPOP_CLIENTS, makeProof, proofKey } from './proofs.js'

const redis = await findRedis()
if (!redis) {
  t.skip('no Redis available (see notice above)', () => {})
} else {
  const dir = mkdtempSync(join(tmpdir(), 'grantd-dpop-'))
  const keys = join(dir, 'signing.json')
  const gen = spawnSync(process.execPath, [CLI, 'keys', 'generate', '--alg', 'ES256', '--out', keys], { encoding: 'utf8' })
  if (gen.status !== 0) throw new Error(gen.stderr)
  const portA = await freePort()
  const prefix = `grantd-dpop:${randomBytes(4).toString('hex')}:`
  // One public base URL for both (as behind a load balancer): htu names it whichever process answers.
  const issuer = `http://127.0.0.1:${portA}`
  const config = join(dir, 'grantd.json')
  writeFileSync(config, JSON.stringify({
    issuer,
    log: { level: 'warn' },
    keys: { file: keys },
    cookies: { keys: ['shared-cookie-key-0123456789'] },
    store: { use: '@grantd/store-redis', options: { url: redis.url, prefix } },
    users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-alice', username: 'alice', password: 'wonderland', claims: { name: 'Alice' } }] } },
    plugins: ['@grantd/grant-authorization-code', '@grantd/grant-refresh-token', '@grantd/grant-client-credentials', { use: '@grantd/dpop', options: { nonces: true } }],
    clients: DPOP_CLIENTS,
  }))
  const a = await startCli(config, { port: portA })
  const b = await startCli(config)
  t.teardown(async () => {
    await Promise.all([a.stop(), b.stop()])
    rmSync(dir, { recursive: true, force: true })
    await redis.stop()
  })
  const htu = `${issuer}/connect/token`
  const svc = { authorization: basic('svc', 'svc-secret') }
  const cc = { grant_type: 'client_credentials', scope: 'api' }

  t.test('a nonce from one process is honoured by the other; a jti spent at one is refused at the other', async (t) => {
    const key = await proofKey()
    const ask = await postForm(`${a.url}/connect/token`, cc, { ...svc, dpop: await makeProof(key, { htu }) })
    t.equal(ask.json.error, 'use_dpop_nonce')
    const nonce = ask.headers.get('dpop-nonce')!
    const proof = await makeProof(key, { htu, nonce })
    const atB = await postForm(`${b.url}/connect/token`, cc, { ...svc, dpop: proof })
    t.equal(atB.status, 200, `process B accepts A's nonce: ${atB.text}`)
    t.same(decodeJwt(atB.json.access_token as string).cnf, { jkt: key.jkt })
    const replay = await postForm(`${a.url}/connect/token`, cc, { ...svc, dpop: proof })
    t.equal(replay.status, 400)
    t.equal(replay.json.error, 'invalid_dpop_proof', 'the proof B accepted is a replay at A')
    const replayB = await postForm(`${b.url}/connect/token`, cc, { ...svc, dpop: proof })
    t.equal(replayB.json.error, 'invalid_dpop_proof', 'and at B itself')
  })

  t.test('a bound refresh token issued by one process redeems at the other only with its key', async (t) => {
    const key = await proofKey()
    const nonce = (await postForm(`${a.url}/connect/token`, cc, { ...svc, dpop: await makeProof(key, { htu }) })).headers.get('dpop-nonce')!
    const { code, verifier } = await loginForCode({ url: a.url } as RunningServer, { client: 'spa', scope: 'openid api offline_access' })
    const first = await postForm(`${a.url}/connect/token`, { grant_type: 'authorization_code', code, redirect_uri: SPA_REDIRECT, code_verifier: verifier, client_id: 'spa' },
      { dpop: await makeProof(key, { htu, nonce }) })
    t.equal(first.status, 200, first.text)
    const refresh = { grant_type: 'refresh_token', refresh_token: first.json.refresh_token as string, client_id: 'spa' }
    const other = await proofKey()
    const stolen = await postForm(`${b.url}/connect/token`, refresh, { dpop: await makeProof(other, { htu, nonce }) })
    t.equal(stolen.json.error, 'invalid_grant', 'another key at the other process')
    const mine = await postForm(`${b.url}/connect/token`, refresh, { dpop: await makeProof(key, { htu, nonce }) })
    t.equal(mine.status, 200, mine.text)
    t.same(decodeJwt(mine.json.access_token as string).cnf, { jkt: key.jkt })
  })
}
