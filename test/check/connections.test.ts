/**
 * SPEC §13: `grantd check` connects to the store and the user service, so "config ok"
 * no longer hides an unreachable Redis; `--offline` skips the connections.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI, freePort, ROOT } from '../helpers/server.js'
import { findRedis } from '../helpers/redis.js'

const dir = mkdtempSync(join(tmpdir(), 'grantd-check-conn-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const DOWN_USERS = join(ROOT, 'test', 'fixtures', 'core', 'down-users.mjs')

function config(name: string, extra: Record<string, unknown>): string {
  const file = join(dir, name)
  writeFileSync(file, JSON.stringify({
    users: { use: '@grantd/users-static', options: { users: [] } },
    plugins: ['@grantd/grant-client-credentials'],
    clients: [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' }],
    ...extra,
  }))
  return file
}

function check(file: string, ...args: string[]) {
  return spawnSync(process.execPath, [CLI, 'check', '--config', file, ...args], { encoding: 'utf8', timeout: 30_000 })
}

t.test('a reachable Redis and user service: both answered', async (t) => {
  const redis = await findRedis()
  if (!redis) { t.skip('no Redis available (see notice above)', () => {}); return }
  t.teardown(() => redis.stop())
  const res = check(config('up.json', { store: { use: '@grantd/store-redis', options: { url: redis.url, prefix: 'grantd-ops-check:' } } }))
  t.equal(res.status, 0, res.stderr)
  t.match(res.stdout, /^config ok: /m)
  t.match(res.stdout, /^store: redis answered in \d+ ms$/m)
  t.match(res.stdout, /^users: @grantd\/users-static answered in \d+ ms$/m)
})

t.test('an unreachable Redis fails the check with one line; --offline does not connect', async (t) => {
  const port = await freePort()
  const file = config('down.json', { store: { use: '@grantd/store-redis', options: { url: `redis://:hunter2@127.0.0.1:${port}`, prefix: 'grantd-ops-check:' } } })
  const started = Date.now()
  const res = check(file)
  t.equal(res.status, 1)
  t.equal(res.stdout, '', 'no "config ok" when the store cannot be reached')
  t.equal(res.stderr, 'grantd: store redis: cannot connect (not connected: connection refused)\n')
  t.ok(Date.now() - started < 10_000, 'bounded in time')
  t.notMatch(res.stderr, /hunter2|maxRetriesPerRequest|option/)

  const offline = check(file, '--offline')
  t.equal(offline.status, 0, offline.stderr)
  t.match(offline.stdout, /^config ok: /m)
  t.match(offline.stdout, /^store, users: not contacted \(--offline\)$/m)
})

t.test('a user service that cannot reach its backend fails the check: through ping(), else through a findById probe', async (t) => {
  const viaPing = check(config('users-ping.json', { users: { use: DOWN_USERS, options: {} } }))
  t.equal(viaPing.status, 1)
  t.equal(viaPing.stdout, '')
  t.equal(viaPing.stderr, `grantd: users ${DOWN_USERS}: cannot connect (database is down)\n`)
  const viaProbe = check(config('users-probe.json', { users: { use: DOWN_USERS, options: { ping: false } } }))
  t.equal(viaProbe.status, 1)
  t.equal(viaProbe.stderr, `grantd: users ${DOWN_USERS}: cannot connect (database is down)\n`)
  t.equal(check(config('users-offline.json', { users: { use: DOWN_USERS, options: {} } }), '--offline').status, 0)
})

t.test('the memory store and no user service: nothing to reach, the check passes', async (t) => {
  const res = check(config('memory.json', { users: undefined }))
  t.equal(res.status, 0, res.stderr)
  t.match(res.stdout, /^store: memory answered in \d+ ms$/m)
  t.match(res.stdout, /^users: \(none configured\) answered in \d+ ms$/m)
})
