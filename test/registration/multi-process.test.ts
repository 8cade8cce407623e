/**
 * Registered clients across processes (SPEC §14): process A (in this test) and process B
 * (a grantd CLI child) share one Redis prefix. A client registered at A is usable at B at
 * once; an update and a delete at A reach B within the client cache bound (5 s,
 * STORED_CLIENT_CACHE_SECONDS); Redis never holds a client secret or a registration access
 * token in clear.
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { spawnSync } from 'node:child_process'
import { basic, CLI, postForm, startCli, startServer } from '../helpers/server.js'
import { findRedis } from '../helpers/redis.js'
import { bearer, call, register, registrationConfig, signInRegistered } from './setup.js'
import { startReceiver } from '../sessions/receiver.js'

const CACHE_BOUND_MS = 5000

const redis = await findRedis()
if (!redis) {
  t.skip('no Redis available (see notice above)', () => {})
} else {
  const prefix = `grantd-registration:${randomBytes(4).toString('hex')}:`
  const config = registrationConfig({}, { log: { level: 'warn' }, store: { use: '@grantd/store-redis', options: { url: redis.url, prefix } } })
  delete config.issuer
  const dir = mkdtempSync(join(tmpdir(), 'grantd-registration-'))
  const file = join(dir, 'grantd.json')
  writeFileSync(file, JSON.stringify(config))
  const a = await startServer(config)
  const b = await startCli(file)
  const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await client.connect()
  t.teardown(async () => {
    await Promise.all([a.close(), b.stop()])
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
      if (keys.length > 0) await client.del(...keys)
      cursor = next
    } while (cursor !== '0')
    client.disconnect()
    rmSync(dir, { recursive: true, force: true })
    await redis.stop()
  })
  const clientCredentials = (base: string, id: string, secret: string, scope = 'api') =>
    postForm(`${base}/connect/token`, { grant_type: 'client_credentials', scope }, { authorization: basic(id, secret) })

  /** Poll until `done` holds; the time it took, or -1 past the deadline. */
  async function within(ms: number, done: () => Promise<boolean>): Promise<number> {
    const started = Date.now()
    while (Date.now() - started <= ms) {
      if (await done()) return Date.now() - started
      await new Promise((r) => setTimeout(r, 100))
    }
    return -1
  }

  t.test('register at A, use at B at once; update and delete at A reach B within the cache bound', async (t) => {
    const reg = await register(a.url, { grant_types: ['client_credentials'], scope: 'api openid' })
    const id = reg.client_id as string
    const secret = reg.client_secret as string
    const atB = await clientCredentials(b.url, id, secret)
    t.equal(atB.status, 200, 'process B serves the client process A just registered')
    t.equal((await clientCredentials(b.url, id, 'wrong-secret')).status, 401, 'with its secret only')
    t.equal((await call('GET', reg.registration_client_uri as string, undefined, bearer(reg.registration_access_token as string))).status, 200)
    t.equal((await call('GET', `${b.url}/connect/register/${id}`, undefined, bearer(reg.registration_access_token as string))).status, 200, 'B manages it too')

    // Narrow the scope at A: B follows within the bound.
    const put = await call('PUT', reg.registration_client_uri as string, { client_id: id, grant_types: ['client_credentials'], scope: 'openid' }, bearer(reg.registration_access_token as string))
    t.equal(put.status, 200)
    t.equal((await clientCredentials(a.url, id, secret)).json.error, 'invalid_scope', 'A at once')
    const narrowed = await within(CACHE_BOUND_MS + 1000, async () => (await clientCredentials(b.url, id, secret)).json.error === 'invalid_scope')
    t.ok(narrowed >= 0, `B refuses the removed scope after ${narrowed} ms`)

    const del = await call('DELETE', reg.registration_client_uri as string, undefined, bearer(reg.registration_access_token as string))
    t.equal(del.status, 204)
    t.equal((await clientCredentials(a.url, id, secret, 'openid')).status, 401, 'A at once')
    const gone = await within(CACHE_BOUND_MS + 1000, async () => (await clientCredentials(b.url, id, secret, 'openid')).status === 401)
    t.ok(gone >= 0, `B refuses the deleted client after ${gone} ms (bound ${CACHE_BOUND_MS} ms)`)
    t.equal((await call('GET', `${b.url}/connect/register/${id}`, undefined, bearer(reg.registration_access_token as string))).status, 401, 'its registration token is gone everywhere at once')
  })

  t.test('Redis holds neither client secrets nor registration access tokens in clear', async (t) => {
    const regs = [
      await register(a.url, { grant_types: ['client_credentials'], scope: 'api' }),
      await register(b.url, { grant_types: ['client_credentials'], scope: 'api', token_endpoint_auth_method: 'client_secret_post' }),
    ]
    const dump: string[] = []
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
      for (const k of keys) if ((await client.type(k)) === 'string') dump.push(`${k}\n${await client.get(k)}`)
      cursor = next
    } while (cursor !== '0')
    const text = dump.join('\n')
    for (const reg of regs) {
      t.ok(text.includes(reg.client_id as string), 'the client is stored (by its public id)')
      for (const field of ['client_secret', 'registration_access_token'] as const) {
        const value = reg[field] as string
        t.notOk(text.includes(value), `no ${field} in clear`)
        t.notOk(text.includes(Buffer.from(value).toString('base64')), `no ${field} in base64`)
      }
    }
    t.match(text, /"client_secret":"\$scrypt\$ln=15,r=8,p=1\$/, 'secrets are scrypt hashes')
    t.notOk(b.output().includes(regs[0]!.client_secret as string), 'nor in B\'s log')
  })

  t.test('back-channel logout reaches a registered client; a process that filters private targets refuses to call one', async (t) => {
    const rp = await startReceiver()
    t.teardown(rp.close)
    const strictConfig = registrationConfig({ allowPrivateNetworkUris: false }, { store: { use: '@grantd/store-redis', options: { url: redis.url, prefix } } })
    delete strictConfig.issuer
    const strict = await startServer(strictConfig)
    t.teardown(strict.close)
    const redirect = 'http://127.0.0.1:5000/bc-client'
    // Registered where loopback targets are allowed (a name that later resolves to a private address looks the same to the strict process).
    const reg = await register(a.url, { redirect_uris: [redirect], token_endpoint_auth_method: 'none', scope: 'openid', backchannel_logout_uri: rp.url })

    const atA = await signInRegistered(a.url, reg.client_id as string, redirect)
    const endedA = await fetch(`${a.url}/connect/endsession?id_token_hint=${atA.tokens.id_token}`, { headers: atA.jar.header(), redirect: 'manual' })
    t.equal(endedA.status, 200)
    t.equal(rp.tokens.length, 1, 'the session end found the registered client and sent it a logout token')

    const atS = await signInRegistered(strict.url, reg.client_id as string, redirect)
    const endedS = await fetch(`${strict.url}/connect/endsession?id_token_hint=${atS.tokens.id_token}`, { headers: atS.jar.header(), redirect: 'manual' })
    t.equal(endedS.status, 200)
    await new Promise((r) => setTimeout(r, 300))
    t.equal(rp.tokens.length, 1, 'no POST to a loopback target from the process that filters them')
    t.ok(strict.log.lines.some((l) => l.includes('back-channel logout not sent') && l.includes(reg.client_id as string)), 'logged, naming the client')

    // The CLI knows registered clients too.
    const cli = spawnSync(process.execPath, [CLI, 'consent', 'revoke', '--sub', 'u-alice', '--client', reg.client_id as string, '--config', file], { encoding: 'utf8' })
    t.equal(cli.status, 0, cli.stderr)
    t.match(cli.stdout, new RegExp(`revoked consent of u-alice for ${reg.client_id as string}`))
    const unknown = spawnSync(process.execPath, [CLI, 'consent', 'revoke', '--sub', 'u-alice', '--client', 'nobody', '--config', file], { encoding: 'utf8' })
    t.equal(unknown.status, 1)
    t.match(unknown.stderr, /no client "nobody" in the config or the store/)
  })
}
