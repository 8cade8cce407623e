/**
 * Redis Sentinel (issue 5): a master, a replica and one Sentinel, each the test's own
 * `redis-server` on a loopback port. The store contract suite runs through
 * `sentinels` + `name`; then grantd, configured the same way, lives through a Sentinel
 * failover: requests during the switch answer 200 or 503 (never 500), and afterwards a
 * refresh token issued before the failover rotates at the promoted replica.
 */
import t from 'tap'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { connect, parseOptions, RedisStore } from '@grantd/store-redis'
import { storeContract } from '../helpers/store-contract.js'
import { hasRedisServerBinary } from '../helpers/redis.js'
import { basic, freePort, postForm, startServer } from '../helpers/server.js'

const cli = (port: number, ...args: string[]): string =>
  spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', timeout: 5000 }).stdout?.trim() ?? ''

async function until(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

if (!hasRedisServerBinary() || spawnSync('redis-cli', ['--version']).status !== 0) {
  if (process.env.CI === 'true') throw new Error('redis-server and redis-cli are required under CI')
  process.stderr.write('\n!!!!! redis-server/redis-cli not on PATH: Redis Sentinel tests SKIPPED !!!!!\n\n')
  t.skip('redis-server missing', () => {})
} else {
  const dir = mkdtempSync(join(tmpdir(), 'grantd-sentinel-'))
  const [master, replica, sentinel] = [await freePort(), await freePort(), await freePort()] as [number, number, number]
  const common = ['--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no']
  const procs: ChildProcess[] = [
    spawn('redis-server', ['--port', String(master), ...common, '--dbfilename', 'master.rdb'], { stdio: 'ignore' }),
    spawn('redis-server', ['--port', String(replica), ...common, '--dbfilename', 'replica.rdb', '--replicaof', '127.0.0.1', String(master)], { stdio: 'ignore' }),
  ]
  // Sentinel rewrites its config file, so it gets its own.
  const sentinelConf = join(dir, 'sentinel.conf')
  writeFileSync(sentinelConf, [
    `port ${sentinel}`, 'bind 127.0.0.1', `dir ${dir}`,
    `sentinel monitor grantd 127.0.0.1 ${master} 1`,
    'sentinel down-after-milliseconds grantd 1000',
    'sentinel failover-timeout grantd 5000',
  ].join('\n') + '\n')
  procs.push(spawn('redis-server', [sentinelConf, '--sentinel'], { stdio: 'ignore' }))
  const stores: RedisStore[] = []
  t.teardown(async () => {
    for (const s of stores) await s.close()
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })

  await until('the replica to sync', () => cli(replica, 'info', 'replication').includes('master_link_status:up'))
  await until('Sentinel to see the replica', () => /\bnum-slaves\s+1\b/.test(cli(sentinel, 'sentinel', 'master', 'grantd').replace(/\n/g, ' ')))
  const sentinels = [{ host: '127.0.0.1', port: sentinel }]
  const masterPort = (): string => cli(sentinel, 'sentinel', 'get-master-addr-by-name', 'grantd').split('\n')[1] ?? ''

  storeContract(t, 'redis-sentinel', async () => {
    const prefix = `grantd-test:${randomBytes(4).toString('hex')}:`
    const store = new RedisStore(connect(parseOptions({ sentinels, name: 'grantd', prefix })), prefix)
    stores.push(store)
    return store
  })

  t.test('a replica refusing writes (READONLY) is "unavailable", not a bug', async (t) => {
    const store = new RedisStore(connect(parseOptions({ url: `redis://127.0.0.1:${replica}`, prefix: 'ro:' })), 'ro:')
    stores.push(store)
    const err = await store.put('k', 'v', 60).then(() => undefined, (e: unknown) => e)
    t.equal((err as Error | undefined)?.name, 'StoreUnavailableError', 'READONLY maps to StoreUnavailableError (503)')
    t.match((err as Error).message, /READONLY/, 'and says why')
  })

  t.test('grantd on Sentinel lives through a failover', async (t) => {
    const srv = await startServer({
      store: { use: '@grantd/store-redis', options: { sentinels, name: 'grantd', prefix: `grantd-st-${randomBytes(4).toString('hex')}:`, commandTimeoutMs: 1000 } },
      users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-1', username: 'alice', password: 'wonderland' }] } },
      plugins: ['@grantd/grant-password', '@grantd/grant-refresh-token'],
      clients: [{ client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password', 'refresh_token'], scope: 'api offline_access' }],
    })
    t.teardown(srv.close)
    const auth = { authorization: basic('ro', 'ro-secret') }
    const passwordGrant = { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'api offline_access' }
    const first = await postForm(`${srv.url}/connect/token`, passwordGrant, auth)
    t.equal(first.status, 200, 'a refresh token is issued through the master')
    // Replication is asynchronous: wait until the replica has it before promoting the replica.
    t.equal(cli(master, 'wait', '1', '2000'), '1', 'the replica acknowledged the writes')

    t.equal(masterPort(), String(master), 'Sentinel names the first master')
    t.match(cli(sentinel, 'sentinel', 'failover', 'grantd'), /OK/, 'failover started')
    const statuses = new Set<number>()
    const started = Date.now()
    let ok = false
    while (!ok && Date.now() - started < 20_000) {
      const res = await postForm(`${srv.url}/connect/token`, passwordGrant, auth)
      statuses.add(res.status)
      ok = res.status === 200 && masterPort() === String(replica)
      if (!ok) await new Promise((r) => setTimeout(r, 100))
    }
    t.ok(ok, `the promoted replica takes writes after ${Date.now() - started} ms`)
    t.match(cli(replica, 'role'), /^master/, 'the former replica is the master now')
    t.same([...statuses].filter((s) => s !== 200 && s !== 503), [], `during the switch only 200 or 503 (${[...statuses].join(', ')})`)
    const rotated = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: first.json.refresh_token as string }, auth)
    t.equal(rotated.status, 200, 'the refresh token issued before the failover rotates at the new master')
    t.equal((await fetch(`${srv.url}/readyz`)).status, 200, 'readyz 200')
    t.notMatch(srv.log.lines.join('\n'), /server_error|unhandled/i, 'no server_error logged')
  })
}
