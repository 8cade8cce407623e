/**
 * users-postgres configuration errors (SPEC §3: name the key path) and a database that is
 * unreachable at boot: one-line refusals, before anything listens.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI, freePort, startServer } from '../helpers/server.js'

const config = (options: unknown): Record<string, unknown> => ({
  users: { use: '@grantd/users-postgres', options },
  plugins: ['@grantd/grant-password'],
  clients: [{ client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password'], scope: 'api' }],
})

t.test('option errors name the key path', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ connectionSting: 'postgres://x' }, /^users\.options: connectionSting: unknown key$/],
    [{ connectionString: 5 }, /^users\.options: connectionString: expected a non-empty string, got number$/],
    [{ schema: 'a"; DROP TABLE x; --' }, /^users\.options: schema: expected a plain identifier/],
    [{ schema: 7 }, /^users\.options: schema: expected string, got number$/],
    [{ pool: [] }, /^users\.options: pool: expected object, got array$/],
    [{ pool: { max: 0 } }, /^users\.options: pool\.max: must be between 1 and 1000$/],
    [{ pool: { max: 2.5 } }, /^users\.options: pool\.max: expected integer, got number$/],
    [{ pool: { size: 3 } }, /^users\.options: pool\.size: unknown key$/],
    [{ queryTimeoutMs: '2s' }, /^users\.options: queryTimeoutMs: expected integer, got string$/],
    [{ hashCost: 9 }, /^users\.options: hashCost: must be between 10 and 20$/],
    ['postgres://x', /^users\.options: expected object, got string$/],
  ]
  for (const [options, expected] of cases) {
    await t.rejects(startServer(config(options)), { name: 'ConfigError', message: expected }, JSON.stringify(options))
  }
})

t.test('an unreachable database at boot: grantd start refuses in one line, without the password', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'grantd-pg-boot-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const port = await freePort() // nothing listens there
  const file = join(dir, 'grantd.json')
  writeFileSync(file, JSON.stringify(config({ connectionString: `postgres://grantd:hunter2-secret@127.0.0.1:${port}/grantd`, pool: { connectionTimeoutMs: 500 } })))
  const run = spawnSync(process.execPath, [CLI, 'start', '--config', file, '--port', '0'], { encoding: 'utf8', timeout: 20_000 })
  t.equal(run.status, 1)
  t.match(run.stderr, /^grantd: users-postgres: cannot check the schema: .*ECONNREFUSED.*\n$/)
  t.notMatch(run.stderr + run.stdout, /hunter2/, 'the connection string password is never printed')
  const migrate = spawnSync(process.execPath, [CLI, 'users', 'migrate', '--config', file], { encoding: 'utf8', timeout: 20_000 })
  t.equal(migrate.status, 1)
  t.match(migrate.stderr, /^grantd: users-postgres: cannot reach PostgreSQL: .*\n$/)
  t.notMatch(migrate.stderr, /hunter2/)
})
