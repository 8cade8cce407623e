/**
 * `grantd users …` (SPEC §12) through the real CLI against a real PostgreSQL, and the
 * server's refusal to start on a schema older than it needs.
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { decodeJwt } from 'jose'
import { basic, CLI, postForm, startCli } from '../helpers/server.js'
import { dropSchema, findPostgres, uniqueSchema } from '../helpers/postgres.js'

const pgsql = await findPostgres()
if (!pgsql) {
  t.pass('skipped: no PostgreSQL')
} else {
  t.teardown(() => pgsql.stop())
  const dir = mkdtempSync(join(tmpdir(), 'grantd-users-cli-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const schema = uniqueSchema('cli')
  t.teardown(() => dropSchema(pgsql.url, schema))
  const config = join(dir, 'grantd.json')
  writeFileSync(config, JSON.stringify({
    users: { use: '@grantd/users-postgres', options: { connectionString: pgsql.url, schema, hashCost: 12 } },
    plugins: ['@grantd/grant-password', '@grantd/acr-tenant'],
    clients: [{ client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password'], scope: 'openid profile api' }],
  }))

  /** Run `grantd users ARGS --config F`, with `stdin` piped in (never on the command line). */
  const users = (args: string[], stdin?: string): Promise<{ status: number | null; stdout: string; stderr: string }> => new Promise((resolve) => {
    const proc = spawn(process.execPath, [CLI, 'users', ...args, '--config', config], { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    proc.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    proc.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    proc.on('exit', (status) => resolve({ status, stdout, stderr }))
    proc.stdin.end(stdin ?? '')
  })
  const db = new pg.Client({ connectionString: pgsql.url })
  await db.connect()
  t.teardown(() => db.end())

  t.test('the server refuses to start on a schema older than it needs, in one line', async (t) => {
    const run = spawnSync(process.execPath, [CLI, 'start', '--config', config, '--port', '0'], { encoding: 'utf8', timeout: 20_000 })
    t.equal(run.status, 1)
    t.match(run.stderr, /users-postgres: schema "grantd_cli_\w+" is at version 0 and this grantd needs version 1; run: grantd users migrate/)
    t.equal(run.stderr.trim().split('\n').length, 1, 'one line')
    const check = spawnSync(process.execPath, [CLI, 'check', '--config', config], { encoding: 'utf8', timeout: 20_000 })
    t.equal(check.status, 1, 'grantd check says the same')
    t.match(check.stderr, /is at version 0/)
    const add = await users(['add', '--username', 'x'])
    t.equal(add.status, 1, 'so do the user commands')
    t.match(add.stderr, /run: grantd users migrate/)
  })

  t.test('migrate is versioned and idempotent, also when two run at once', async (t) => {
    const [a, b] = await Promise.all([users(['migrate']), users(['migrate'])])
    t.equal(a.status, 0, a.stderr)
    t.equal(b.status, 0, b.stderr)
    t.match([a.stdout, b.stdout].sort().join(''), /schema is up to date \(version 1\)[\s\S]*schema migrated from version 0 to 1|schema migrated from version 0 to 1[\s\S]*up to date/)
    const again = await users(['migrate'])
    t.equal(again.status, 0)
    t.match(again.stdout, /users-postgres: schema is up to date \(version 1\)/)
    const versions = await db.query(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`)
    t.same(versions.rows.map((r) => r.version), [1], 'each step recorded once')
  })

  let aliceSub = ''
  t.test('add, list, set-password, disable, enable, link', async (t) => {
    const added = await users(['add', '--username', 'Alice', '--tenant', 'acme', '--claims', '{"name":"Alice","roles":["admin"]}', '--password-stdin'], 'first-password\n')
    t.equal(added.status, 0, added.stderr)
    const alice = JSON.parse(added.stdout) as { sub: string; username: string; tenant: string; disabled: boolean; claims: Record<string, unknown> }
    aliceSub = alice.sub
    t.match(alice, { username: 'alice', tenant: 'acme', disabled: false, claims: { name: 'Alice', roles: ['admin'] } }, 'stored case-folded')
    t.notMatch(added.stdout, /first-password|scrypt/, 'neither the password nor its hash is printed')

    const dup = await users(['add', '--username', 'ALICE', '--tenant', 'acme'])
    t.equal(dup.status, 1)
    t.match(dup.stderr, /^grantd: a user named "alice" already exists in tenant "acme"\n$/)
    t.equal((await users(['add', '--username', 'alice', '--tenant', 'globex'], '')).status, 0, 'the same name in another tenant is fine')
    t.equal((await users(['add', '--username', 'bob'])).status, 0, 'a user without a password (external sign-in only)')

    const row = await db.query(`SELECT password_hash FROM "${schema}".users WHERE sub = $1`, [aliceSub])
    t.match(row.rows[0].password_hash, /^\$scrypt\$ln=12,r=8,p=1\$/, 'stored as a $scrypt$ hash')
    const dump = await db.query(`SELECT row_to_json(u)::text AS j FROM "${schema}".users u`)
    t.notMatch(dump.rows.map((r) => r.j).join('\n'), /first-password/, 'no clear password in the table')

    const ambiguous = await users(['disable', '--username', 'alice'])
    t.equal(ambiguous.status, 1)
    t.match(ambiguous.stderr, /more than one user is named "alice": add --tenant, or use --sub/)
    t.equal((await users(['disable', '--username', 'nobody'])).status, 1)

    const set = await users(['set-password', '--username', 'alice', '--tenant', 'acme', '--password-stdin'], 'second-password\n')
    t.equal(set.status, 0, set.stderr)
    const noStdin = await users(['set-password', '--sub', aliceSub])
    t.equal(noStdin.status, 1)
    t.match(noStdin.stderr, /--password-stdin/)
    const onCommandLine = await users(['set-password', '--sub', aliceSub, '--password', 'x'])
    t.not(onCommandLine.status, 0, 'a --password flag does not exist')
    const empty = await users(['set-password', '--sub', aliceSub, '--password-stdin'], '\n')
    t.equal(empty.status, 1)
    t.match(empty.stderr, /empty password/)

    const disabled = await users(['disable', '--sub', aliceSub])
    t.equal(disabled.status, 0)
    t.match(JSON.parse(disabled.stdout), { disabled: true })
    const enabled = await users(['enable', '--username', 'alice', '--tenant', 'acme'])
    t.match(JSON.parse(enabled.stdout), { disabled: false })

    const linked = await users(['link', '--sub', aliceSub, '--idp', 'upstream', '--subject', 'up-1'])
    t.equal(linked.status, 0, linked.stderr)
    t.same(JSON.parse(linked.stdout).links, [{ idp: 'upstream', subject: 'up-1' }])
    const taken = await users(['link', '--username', 'bob', '--idp', 'upstream', '--subject', 'up-1'])
    t.equal(taken.status, 1)
    t.match(taken.stderr, /already linked to another user/)
    t.equal((await users(['link', '--sub', aliceSub, '--idp', 'upstream'])).status, 1, '--subject is required')

    const list = await users(['list'])
    t.equal(list.status, 0)
    t.equal(list.stdout.trim().split('\n').length, 3)
    const acme = await users(['list', '--tenant', 'acme'])
    t.same(acme.stdout.trim().split('\n').map((l) => JSON.parse(l).sub), [aliceSub])
    t.notMatch(list.stdout, /scrypt|password/, 'list shows no hash')

    const badClaims = await users(['add', '--username', 'x', '--claims', '[1]'])
    t.equal(badClaims.status, 1)
    t.match(badClaims.stderr, /--claims must be a JSON object/)
    const unknown = await users(['frobnicate'])
    t.equal(unknown.status, 1)
    t.match(unknown.stderr, /unknown users command "frobnicate"/)
  })

  t.test('the server starts once migrated and signs the CLI-made user in', async (t) => {
    const server = await startCli(config)
    t.teardown(() => server.stop())
    const login = (password: string, acr?: string) => postForm(`${server.url}/connect/token`, {
      grant_type: 'password', username: 'ALICE', password, scope: 'openid api', ...(acr ? { acr_values: acr } : {}),
    }, { authorization: basic('ro', 'ro-secret') })
    const ok = await login('second-password', 'tenant:acme')
    t.equal(ok.status, 200, ok.text)
    t.equal(decodeJwt(ok.json.access_token as string).sub, aliceSub)
    t.equal((await login('first-password', 'tenant:acme')).json.error, 'invalid_grant', 'the old password is gone')
    t.equal((await login('second-password')).json.error, 'invalid_grant', 'two users are named alice: a tenant is needed')
    t.notMatch(server.output(), /second-password|first-password/, 'no password in the logs')
  })

  t.test('users-static answers that it is read-only, in one line', async (t) => {
    const file = join(dir, 'static.json')
    writeFileSync(file, JSON.stringify({ users: { use: '@grantd/users-static', options: { users: [] } } }))
    for (const args of [['add', '--username', 'x'], ['list'], ['migrate'], ['disable', '--sub', 'u-1']]) {
      const run = spawnSync(process.execPath, [CLI, 'users', ...args, '--config', file], { encoding: 'utf8', timeout: 20_000 })
      t.equal(run.status, 1, args.join(' '))
      t.match(run.stderr, /^grantd: users: users-static is read-only: .*\n$/)
    }
    const none = join(dir, 'none.json')
    writeFileSync(none, JSON.stringify({}))
    const run = spawnSync(process.execPath, [CLI, 'users', 'list', '--config', none], { encoding: 'utf8', timeout: 20_000 })
    t.equal(run.status, 1)
    t.match(run.stderr, /names no user service/)
  })
}
