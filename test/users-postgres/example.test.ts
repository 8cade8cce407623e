/** examples/postgres.json runs as documented (its own schema here, on the test database). */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { decodeJwt } from 'jose'
import { PostgresUsers, parsePostgresUsersOptions } from '@grantd/users-postgres'
import { basic, memoryLogger, postForm, ROOT, startServer } from '../helpers/server.js'
import { dropSchema, findPostgres, uniqueSchema } from '../helpers/postgres.js'

const pgsql = await findPostgres()
if (!pgsql) {
  t.pass('skipped: no PostgreSQL')
} else {
  t.teardown(() => pgsql.stop())
  t.test('examples/postgres.json: migrate, add a user, sign in with the password grant', async (t) => {
    const example = JSON.parse(readFileSync(join(ROOT, 'examples', 'postgres.json'), 'utf8')) as Record<string, unknown> & { users: { options: Record<string, unknown> } }
    const schema = uniqueSchema('example')
    t.teardown(() => dropSchema(pgsql.url, schema))
    const options = { ...example.users.options, connectionString: pgsql.url, schema }
    const admin = new PostgresUsers(parsePostgresUsersOptions(options), memoryLogger())
    t.teardown(() => admin.close())
    await admin.management.migrate!()
    const alice = await admin.management.add({ username: 'alice', password: 'wonderland', claims: { name: 'Alice' } })
    const srv = await startServer({ ...example, port: 0, users: { ...example.users, options } })
    t.teardown(() => srv.close())
    const res = await postForm(`${srv.url}/connect/token`, { grant_type: 'password', username: 'Alice', password: 'wonderland', scope: 'openid profile' }, { authorization: basic('ro', 'ro-secret') })
    t.equal(res.status, 200)
    t.equal(decodeJwt(res.json.id_token as string).sub, alice.sub)
    t.equal(decodeJwt(res.json.id_token as string).name, 'Alice')
  })
}
