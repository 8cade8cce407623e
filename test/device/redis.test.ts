/**
 * The device flow on Redis (SPEC §8, §9): two grantd processes share one Redis prefix —
 * the device authorizes at one and polls at the other, slow_down is remembered across
 * them, and neither the device code nor the user code is kept in clear.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { CLI, freePort, postForm, startCli } from '../helpers/server.js'
import { findRedis } from '../helpers/redis.js'
import { approveInBrowser, DEVICE_GRANT } from './flow.js'

const redis = await findRedis()
if (!redis) {
  t.skip('no Redis available (see notice above)', () => {})
} else {
  const dir = mkdtempSync(join(tmpdir(), 'grantd-device-'))
  const keys = join(dir, 'signing.json')
  const gen = spawnSync(process.execPath, [CLI, 'keys', 'generate', '--out', keys], { encoding: 'utf8' })
  if (gen.status !== 0) throw new Error(gen.stderr)
  const portA = await freePort()
  const prefix = `grantd-device:${randomBytes(4).toString('hex')}:`
  const config = join(dir, 'grantd.json')
  writeFileSync(config, JSON.stringify({
    issuer: `http://127.0.0.1:${portA}`,
    log: { level: 'warn' },
    keys: { file: keys },
    cookies: { keys: ['shared-cookie-key-0123456789'] },
    store: { use: '@grantd/store-redis', options: { url: redis.url, prefix } },
    users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-alice', username: 'alice', password: 'wonderland', claims: { name: 'Alice' } }] } },
    plugins: ['@grantd/grant-refresh-token', '@grantd/grant-authorization-code', { use: '@grantd/grant-device-code', options: { interval: 2 } }],
    clients: [
      { client_id: 'tv', client_name: 'Living Room TV', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'], scope: 'openid profile offline_access' },
    ],
  }))
  const a = await startCli(config, { port: portA })
  const b = await startCli(config)
  const client = new Redis(redis.url)
  t.teardown(async () => {
    await Promise.all([a.stop(), b.stop()])
    const stale = await client.keys(`${prefix}*`)
    if (stale.length > 0) await client.del(...stale)
    client.disconnect()
    rmSync(dir, { recursive: true, force: true })
    await redis.stop()
  })

  t.test('authorize at one process, poll at the other; slow_down is shared; codes are hashed', async (t) => {
    const started = await postForm(`${a.url}/connect/deviceauthorization`, { client_id: 'tv', scope: 'openid offline_access' })
    t.equal(started.status, 200)
    const d = started.json as Record<string, string>
    const poll = (url: string) => postForm(`${url}/connect/token`, { grant_type: DEVICE_GRANT, device_code: d.device_code!, client_id: 'tv' })

    t.equal((await poll(b.url)).json.error, 'authorization_pending', 'B knows the code A issued')
    const fast = await poll(a.url)
    t.equal(fast.json.error, 'slow_down', 'A knows B was just polled')
    t.match(fast.json.error_description, /7 seconds/, 'interval 2 + 5')
    const stillFast = await poll(b.url)
    t.equal(stillFast.json.error, 'slow_down', 'B applies the interval A raised')
    t.match(stillFast.json.error_description, /12 seconds/)

    // The user approves on the pages (served by A, the configured issuer); B hands out the tokens.
    await approveInBrowser({ verificationUri: d.verification_uri!, userCode: d.user_code! })
    const tokens = await poll(b.url)
    t.equal(tokens.status, 200, 'B redeems the approval made at A')
    t.ok(tokens.json.refresh_token && tokens.json.id_token)
    t.equal((await poll(a.url)).json.error, 'invalid_grant', 'single use across processes')

    // SPEC §9: no secret in clear, neither in keys nor in values, whatever the type of entry.
    const secrets = [d.device_code!, d.user_code!, d.user_code!.replace('-', '')]
    const found: string[] = []
    let cursor = '0'
    do {
      const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
      cursor = next
      for (const key of batch) {
        const dumped = (await client.dumpBuffer(key)) ?? Buffer.alloc(0)
        for (const s of secrets) if (key.includes(s) || dumped.includes(s)) found.push(`${key} holds ${s === d.device_code ? 'the device code' : 'the user code'}`)
      }
    } while (cursor !== '0')
    t.same(found, [], 'no device code or user code in clear in Redis')
    t.ok((await client.keys(`${prefix}device*`)).length > 0, 'the scan did see the device entries')
  })
}
