/**
 * Sessions across processes (SPEC §8, §10): two grantd CLI processes on one Redis prefix.
 * A logout at B ends a session made at A (and B sends its back-channel logout); the CLI's
 * `grantd sessions end` and `grantd consent revoke` reach the running processes through the store.
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { CLI, basic, freePort, postForm, startCli, type RunningServer } from '../helpers/server.js'
import { findRedis } from '../helpers/redis.js'
import { authorizeUrl, CookieJar, get, loginForm, post, WEB_REDIRECT } from '../authorization-code/flow.js'
import { claimsOf, endSessionUrl, signedInWeb, silentlyAuthorized, THIRD_REDIRECT } from './setup.js'
import { startReceiver, waitFor } from './receiver.js'

const redis = await findRedis()
if (!redis) {
  t.skip('no Redis available (see notice above)', () => {})
} else {
  const dir = mkdtempSync(join(tmpdir(), 'grantd-sessions-'))
  const keys = join(dir, 'signing.json')
  const gen = spawnSync(process.execPath, [CLI, 'keys', 'generate', '--alg', 'ES256', '--out', keys], { encoding: 'utf8' })
  if (gen.status !== 0) throw new Error(gen.stderr)
  const rp = await startReceiver()
  const portA = await freePort()
  const prefix = `grantd-sessions:${randomBytes(4).toString('hex')}:`
  const config = join(dir, 'grantd.json')
  writeFileSync(config, JSON.stringify({
    issuer: `http://127.0.0.1:${portA}`,
    log: { level: 'info' },
    keys: { file: keys },
    cookies: { keys: ['shared-cookie-key-0123456789'] },
    store: { use: '@grantd/store-redis', options: { url: redis.url, prefix } },
    users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-alice', username: 'alice', password: 'wonderland', claims: { name: 'Alice' } }] } },
    plugins: ['@grantd/grant-authorization-code', '@grantd/grant-refresh-token'],
    clients: [
      { client_id: 'web', client_secret: 'web-secret', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [WEB_REDIRECT], scope: 'openid profile offline_access api', require_pkce: true, backchannel_logout_uri: rp.url },
      { client_id: 'nopkce', client_secret: 'nopkce-secret', grant_types: ['authorization_code'], redirect_uris: [WEB_REDIRECT], scope: 'openid' },
      { client_id: 'third', client_secret: 'third-secret', require_consent: true, grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [THIRD_REDIRECT], scope: 'openid offline_access' },
    ],
  }))
  const a = await startCli(config, { port: portA, env: { REDIS_URL: redis.url } })
  const b = await startCli(config, { env: { REDIS_URL: redis.url } })
  t.teardown(async () => {
    await Promise.all([a.stop(), b.stop()])
    await rp.close()
    rmSync(dir, { recursive: true, force: true })
    await redis.stop()
  })
  const at = (url: string) => ({ url }) as RunningServer
  // Asynchronous: the back-channel receiver lives in this process and must keep answering.
  const cli = (...args: string[]) => new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const proc = spawn(process.execPath, [CLI, ...args, '--config', config], { env: { ...process.env, REDIS_URL: redis.url }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    proc.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    proc.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    proc.on('exit', (status) => resolve({ status, stdout, stderr }))
  })

  t.test('a logout at B ends a session made at A, and B sends the back-channel logout', async (t) => {
    const { jar, tokens } = await signedInWeb(at(a.url))
    t.ok(await silentlyAuthorized(at(a.url), jar))
    rp.tokens.length = 0
    const out = await get(endSessionUrl(at(b.url), { id_token_hint: tokens.id_token! }), jar)
    t.equal(out.status, 200)
    t.notOk(await silentlyAuthorized(at(a.url), jar), 'gone at A')
    t.equal(rp.tokens.length, 1, 'B notified the client that got tokens at A')
    t.equal(claimsOf(rp.tokens[0]!).sid, claimsOf(tokens.id_token!).sid)
  })

  t.test('grantd sessions end --sub reaches the running processes and notifies', async (t) => {
    const one = await signedInWeb(at(a.url))
    const two = await signedInWeb(at(b.url))
    rp.tokens.length = 0
    const other = await cli('sessions', 'end', '--sub', 'u-alice', '--client', 'nopkce')
    t.equal(other.status, 0, other.stderr)
    t.match(other.stdout, /ended 0 sessions of u-alice/, '--client limits to sessions the client got tokens in')
    const res = await cli('sessions', 'end', '--sub', 'u-alice', '--client', 'web')
    t.equal(res.status, 0, res.stderr)
    t.match(res.stdout, /ended 2 sessions of u-alice/)
    t.match(res.stderr, /"event":"session.ended"/)
    t.notOk(await silentlyAuthorized(at(a.url), one.jar))
    t.notOk(await silentlyAuthorized(at(b.url), two.jar))
    t.ok(await waitFor(() => rp.tokens.length === 2, 3000), 'one logout token per session')
    const bad = await cli('sessions', 'end')
    t.equal(bad.status, 2)
    t.match(bad.stderr, /--sub SUB is required/)
    const unknown = await cli('sessions', 'end', '--sub', 'u-alice', '--client', 'nobody')
    t.equal(unknown.status, 1)
    t.match(unknown.stderr, /no client "nobody"/)
  })

  t.test('grantd consent revoke --sub --client: the page shows again and refresh tokens die', async (t) => {
    const jar = new CookieJar()
    const ask = () => get(authorizeUrl(at(a.url), { response_type: 'code', client_id: 'third', redirect_uri: THIRD_REDIRECT, scope: 'openid offline_access', state: 's' }), jar)
    const login = loginForm((await ask()).body)
    const consent = await post(login.action, { ...login.fields, username: 'alice', password: 'wonderland' }, jar)
    const form = loginForm(consent.body)
    const allowed = await post(form.action, { ...form.fields, decision: 'allow' }, jar)
    const auth = { authorization: basic('third', 'third-secret') }
    const tokens = await postForm(`${b.url}/connect/token`, { grant_type: 'authorization_code', code: allowed.location!.searchParams.get('code')!, redirect_uri: THIRD_REDIRECT }, auth)
    t.equal(tokens.status, 200)
    t.equal((await ask()).status, 302, 'remembered')
    const res = await cli('consent', 'revoke', '--sub', 'u-alice', '--client', 'third')
    t.equal(res.status, 0, res.stderr)
    t.match(res.stdout, /revoked consent of u-alice for third/)
    t.equal((await ask()).status, 200, 'asks again')
    const refresh = await postForm(`${a.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: tokens.json.refresh_token as string }, auth)
    t.equal(refresh.json.error, 'invalid_grant')
    const missing = await cli('consent', 'revoke', '--sub', 'u-alice')
    t.equal(missing.status, 2)
  })

  // SIGHUP now reloads the config (SPEC §13, test/key-lifecycle/sighup.test.ts); it still never ends the process.
  t.test('SIGHUP reloads, logged, and the process keeps serving', async (t) => {
    b.proc.kill('SIGHUP')
    t.ok(await waitFor(() => /configuration reloaded/.test(b.output()), 15_000), 'logged')
    const health = await fetch(`${b.url}/healthz`)
    t.equal(health.status, 200, 'still serving')
    t.equal(b.proc.exitCode, null)
  })
}
