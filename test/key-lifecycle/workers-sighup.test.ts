/**
 * SPEC §13 with `--workers N`: SIGHUP to the primary reloads every worker (the primary passes
 * the signal on; Node's default would end it and orphan the group), same primary PID.
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findRedis } from '../helpers/redis.js'
import { basic, postForm, startCli } from '../helpers/server.js'

const dir = mkdtempSync(join(tmpdir(), 'grantd-keylife-workers-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('--workers 2: SIGHUP reaches every worker, a client added by it is served by all', async (t) => {
  const redis = await findRedis()
  if (!redis) { t.skip('no Redis available (see notice above)', () => {}); return }
  t.teardown(() => redis.stop())
  const file = join(dir, 'grantd.json')
  const write = (ids: string[]) => writeFileSync(file, JSON.stringify({
    issuer: 'http://127.0.0.1:4000',
    log: { level: 'info' },
    store: { use: '@grantd/store-redis', options: { url: redis.url, prefix: `grantd-keylife-workers-${process.pid}:` } },
    plugins: ['@grantd/grant-client-credentials'],
    clients: ids.map((id) => ({ client_id: id, client_secret: `${id}-secret`, grant_types: ['client_credentials'], scope: 'api' })),
  }))
  write(['svc'])
  const child = await startCli(file, { args: ['--workers', '2'] })
  t.teardown(() => child.stop('SIGKILL'))
  const deadline = (ms: number) => Date.now() + ms
  for (const end = deadline(15_000); !/grantd workers listening/.test(child.output());) {
    if (Date.now() > end) throw new Error(child.output())
    await new Promise((r) => setTimeout(r, 50))
  }
  const pid = child.proc.pid
  write(['svc', 'svc2'])
  child.proc.kill('SIGHUP')
  for (const end = deadline(15_000); (child.output().match(/"configuration reloaded"/g) ?? []).length < 2;) {
    if (Date.now() > end) throw new Error(`not every worker reloaded: ${child.output().slice(-2000)}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  t.match(child.output(), /reloading: signalling every worker/)
  // New connections land on either worker: every one of them knows the new client.
  for (let i = 0; i < 8; i++) {
    const res = await postForm(`${child.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc2', 'svc2-secret'), connection: 'close' })
    t.equal(res.status, 200, res.text)
  }
  t.equal(child.proc.pid, pid)
  t.equal(child.proc.exitCode, null, 'the primary keeps running')
})
