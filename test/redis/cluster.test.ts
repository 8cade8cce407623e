/**
 * Redis Cluster (issue 5): three `redis-server --cluster-enabled yes` nodes on loopback,
 * joined with `redis-cli --cluster create`; the store contract suite and a refresh-token
 * family revocation through grantd run against it, then the nodes are stopped.
 */
import t from 'tap'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { connect, parseOptions, RedisStore } from '@grantd/store-redis'
import { storeContract } from '../helpers/store-contract.js'
import { hasRedisServerBinary } from '../helpers/redis.js'
import { basic, postForm, startServer } from '../helpers/server.js'

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

/** A cluster node needs its port and port+10000 (the cluster bus) free. */
async function clusterPorts(count: number): Promise<number[]> {
  const ports: number[] = []
  for (let tries = 0; ports.length < count && tries < 200; tries++) {
    const p = 20000 + Math.floor(Math.random() * 20000)
    if (ports.includes(p) || ports.includes(p + 10000) || ports.some((q) => q + 10000 === p)) continue
    if ((await portFree(p)) && (await portFree(p + 10000))) ports.push(p)
  }
  if (ports.length < count) throw new Error('no free ports for the cluster')
  return ports
}

if (!hasRedisServerBinary() || spawnSync('redis-cli', ['--version']).status !== 0) {
  if (process.env.CI === 'true') throw new Error('redis-server and redis-cli are required under CI')
  process.stderr.write('\n!!!!! redis-server/redis-cli not on PATH: Redis Cluster tests SKIPPED !!!!!\n\n')
  t.skip('redis-server missing', () => {})
} else {
  const dir = mkdtempSync(join(tmpdir(), 'grantd-cluster-'))
  const ports = await clusterPorts(3)
  const nodes: ChildProcess[] = ports.map((port) => spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes',
    '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir,
    '--save', '', '--appendonly', 'no', '--dbfilename', `dump-${port}.rdb`,
  ], { stdio: 'ignore' }))
  const stores: RedisStore[] = []
  t.teardown(async () => {
    for (const s of stores) await s.close()
    for (const n of nodes) if (n.exitCode === null) n.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })

  for (const port of ports) {
    const deadline = Date.now() + 10_000
    while (spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() !== 'PONG') {
      if (Date.now() > deadline) throw new Error(`cluster node ${port} did not start`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  const create = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 })
  if (create.status !== 0) throw new Error(`cluster create failed: ${create.stdout}${create.stderr}`)
  const deadline = Date.now() + 20_000
  while (!spawnSync('redis-cli', ['-p', String(ports[0]), 'cluster', 'info'], { encoding: 'utf8' }).stdout.includes('cluster_state:ok')) {
    if (Date.now() > deadline) throw new Error('cluster did not reach cluster_state:ok')
    await new Promise((r) => setTimeout(r, 200))
  }
  const cluster = ports.map((port) => ({ host: '127.0.0.1', port }))

  storeContract(t, 'redis-cluster', async () => {
    const prefix = `grantd-test:${randomBytes(4).toString('hex')}:`
    const store = new RedisStore(connect(parseOptions({ cluster, prefix })), prefix)
    stores.push(store)
    return store
  })

  t.test('refresh family revocation through grantd on a Cluster', async (t) => {
    const srv = await startServer({
      store: { use: '@grantd/store-redis', options: { cluster, prefix: `grantd-cl-${randomBytes(4).toString('hex')}:` } },
      users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-1', username: 'alice', password: 'wonderland' }] } },
      plugins: ['@grantd/grant-password', '@grantd/grant-refresh-token'],
      clients: [{ client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password', 'refresh_token'], scope: 'api offline_access' }],
    })
    t.teardown(srv.close)
    const auth = { authorization: basic('ro', 'ro-secret') }
    const first = await postForm(`${srv.url}/connect/token`, { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'api offline_access' }, auth)
    t.equal(first.status, 200)
    const r1 = first.json.refresh_token as string
    const second = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: r1 }, auth)
    t.equal(second.status, 200, 'rotation works on the cluster')
    const r2 = second.json.refresh_token as string
    const replay = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: r1 }, auth)
    t.equal(replay.status, 400)
    t.equal(replay.json.error, 'invalid_grant', 'a rotated-out token is refused')
    const descendant = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: r2 }, auth)
    t.equal(descendant.json.error, 'invalid_grant', 'and the whole family is revoked')
  })
}
