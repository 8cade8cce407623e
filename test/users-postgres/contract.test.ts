/** @grantd/users-postgres passes the user-service contract suite (SPEC §12) against a real PostgreSQL. */
import t from 'tap'
import { PostgresUsers, parsePostgresUsersOptions } from '@grantd/users-postgres'
import { dropSchema, findPostgres, uniqueSchema } from '../helpers/postgres.js'
import { memoryLogger } from '../helpers/server.js'
import { userServiceContract } from '../helpers/user-service-contract.js'

const pgsql = await findPostgres()
if (!pgsql) {
  t.pass('skipped: no PostgreSQL')
} else {
  t.teardown(() => pgsql.stop())
  userServiceContract(t, 'users-postgres', async (users) => {
    const schema = uniqueSchema('contract')
    // hashCost 12 keeps the suite quick; the decoy hash uses the same cost.
    const service = new PostgresUsers(parsePostgresUsersOptions({ connectionString: pgsql.url, schema, hashCost: 12 }), memoryLogger())
    await service.management.migrate!()
    await service.start()
    const subs = new Map<string, string>()
    for (const u of users) {
      const made = await service.management.add({
        username: u.username,
        ...(u.tenant !== undefined ? { tenant: u.tenant } : {}),
        claims: u.claims,
        ...(u.password !== undefined ? { password: u.password } : {}),
      })
      subs.set(u.key, made.sub)
      if (u.disabled) await service.management.setDisabled({ sub: made.sub }, true)
      for (const link of u.links ?? []) await service.management.link({ sub: made.sub }, link.idp, link.subject)
    }
    return {
      service,
      subOf: (key) => subs.get(key)!,
      close: async () => {
        await service.close()
        await dropSchema(pgsql.url, schema)
      },
    }
  })
}
