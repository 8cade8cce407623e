/**
 * SPEC §2 environment: PORT picks the port when --port is absent, and REDIS_URL replaces
 * the Redis store's `url` from the config file.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI, freePort } from '../helpers/server.js'
import { findRedis } from '../helpers/redis.js'

async function startWithEnv(config: string, env: Record<string, string>, port: number) {
  const proc = spawn(process.execPath, [CLI, 'start', '--config', config], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString() })
  const deadline = Date.now() + 15_000
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`grantd exited: ${out}`)
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break
    } catch { /* not up yet */ }
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`grantd did not start: ${out}`) }
    await new Promise((r) => setTimeout(r, 50))
  }
  return { proc, stop: async () => { proc.kill('SIGTERM'); await once(proc, 'exit') } }
}

const dir = mkdtempSync(join(tmpdir(), 'grantd-env-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('PORT is used when --port is absent', async (t) => {
  const config = join(dir, 'plain.json')
  writeFileSync(config, JSON.stringify({ port: 1, log: { level: 'warn' }, plugins: ['@grantd/grant-client-credentials'], clients: [] }))
  const port = await freePort()
  const srv = await startWithEnv(config, { PORT: String(port) }, port)
  t.teardown(srv.stop)
  t.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200, 'listening on $PORT, not the config port')
})

const redis = await findRedis()
if (!redis) {
  t.skip('no Redis available (see notice above)', () => {})
} else {
  t.test('REDIS_URL replaces the Redis store url of the config file', async (t) => {
    const deadPort = await freePort()
    const config = join(dir, 'redis.json')
    writeFileSync(config, JSON.stringify({
      log: { level: 'warn' },
      store: { use: '@grantd/store-redis', options: { url: `redis://127.0.0.1:${deadPort}`, prefix: 'grantd-env-test:' } },
      plugins: ['@grantd/grant-client-credentials'],
      clients: [],
    }))
    const port = await freePort()
    const srv = await startWithEnv(config, { PORT: String(port), REDIS_URL: redis.url }, port)
    t.teardown(async () => { await srv.stop(); await redis.stop() })
    t.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200, 'ready: the store talks to REDIS_URL, not the dead url in the file')
  })
}
