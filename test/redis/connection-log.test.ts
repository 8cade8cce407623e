/**
 * SPEC §13: the log says when the store connection is lost and when it is back, one line
 * each however many reconnect attempts happen, in grantd's words (no ioredis option names,
 * no password from the URL). The test runs its own redis-server; the shared one is never touched.
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, startCli, type ChildServer } from '../helpers/server.js'
import { hasRedisServerBinary, spawnRedis } from '../helpers/redis.js'

type Line = Record<string, unknown>
const lines = (child: ChildServer): Line[] => child.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line)
const count = (child: ChildServer, msg: RegExp): number => lines(child).filter((l) => msg.test(String(l.msg))).length
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function readyz(url: string): Promise<number> {
  try {
    return (await fetch(`${url}/readyz`, { headers: { connection: 'close' } })).status
  } catch {
    return 0
  }
}

async function until(what: string, probe: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

/** Words that belong to ioredis, not to grantd's log. */
const IOREDIS_WORDS = /maxRetriesPerRequest|enableOfflineQueue|retryStrategy|reconnectOnError|Refer to|hunter2/

if (!hasRedisServerBinary()) {
  if (process.env.CI === 'true') throw new Error('redis-server is required under CI')
  process.stderr.write('\n!!!!! redis-server not on PATH: Redis connection-log tests SKIPPED !!!!!\n\n')
  t.skip('redis-server missing', () => {})
} else {
  const dir = mkdtempSync(join(tmpdir(), 'grantd-connlog-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))

  function config(port: number): string {
    const file = join(dir, `grantd-${port}.json`)
    writeFileSync(file, JSON.stringify({
      store: { use: '@grantd/store-redis', options: { url: `redis://:hunter2@127.0.0.1:${port}`, prefix: 'grantd-ops-connlog:' } },
      plugins: ['@grantd/grant-client-credentials'],
      clients: [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' }],
    }))
    return file
  }

  t.test('Redis goes away for a few seconds: one "lost" line, one "restored" line', async (t) => {
    const port = await freePort()
    // requirepass so the URL's password is in use (and must not reach the log).
    let redis = await spawnRedis(port, ['--requirepass', 'hunter2'])
    t.teardown(() => redis.stop())
    const child = await startCli(config(port))
    t.teardown(() => child.stop('SIGKILL'))
    await until('ready', async () => (await readyz(child.url)) === 200)

    await redis.stop()
    await until('503 while Redis is down', async () => (await readyz(child.url)) === 503)
    // Several seconds of reconnect attempts (100 ms to 1 s apart; each probe waits for one), probes failing meanwhile.
    for (let i = 0; i < 3; i++) {
      t.equal(await readyz(child.url), 503)
      await sleep(250)
    }
    redis = await spawnRedis(port, ['--requirepass', 'hunter2'])
    await until('ready again', async () => (await readyz(child.url)) === 200)
    await sleep(300)

    t.equal(count(child, /^store connection lost/), 1, 'exactly one "lost" line')
    t.equal(count(child, /^store connection restored$/), 1, 'exactly one "restored" line')
    t.equal(count(child, /redis connection error/), 0, 'no per-retry lines')
    const lost = lines(child).find((l) => /^store connection lost/.test(String(l.msg)))!
    t.match(lost, { level: 40, store: 'redis', server: `127.0.0.1:${port}` })
    const restored = lines(child).find((l) => l.msg === 'store connection restored')!
    t.match(restored, { level: 30, store: 'redis', server: `127.0.0.1:${port}`, downSeconds: Number })
    t.ok((restored.downSeconds as number) >= 3, `down for ${String(restored.downSeconds)} s`)
    t.notMatch(child.output(), IOREDIS_WORDS, 'no ioredis option names, no password')
  })

  t.test('Redis down at start: one "not reachable" line, then one "restored" when it comes', async (t) => {
    const port = await freePort()
    const child = await startCli(config(port))
    t.teardown(() => child.stop('SIGKILL'))
    t.equal(await readyz(child.url), 503)
    await sleep(2000)
    const redis = await spawnRedis(port, ['--requirepass', 'hunter2'])
    t.teardown(() => redis.stop())
    await until('ready', async () => (await readyz(child.url)) === 200)
    await sleep(300)
    t.equal(count(child, /^store not reachable/), 1)
    t.equal(count(child, /^store connection lost/), 0)
    t.equal(count(child, /^store connection restored$/), 1)
    t.notMatch(child.output(), IOREDIS_WORDS)
    // A clean stop closes the connection on purpose: that is not "lost".
    t.equal(await child.stop('SIGTERM'), 0)
    t.equal(count(child, /^store connection lost/), 0, 'closing on shutdown is not reported as lost')
  })
}
