import { definePlugin } from '@grantd/core'
import { parseOptions } from './options.js'
import { PostgresUsers } from './service.js'

export { PostgresUsers, type PostgresUser } from './service.js'
export { parseOptions as parsePostgresUsersOptions, type PostgresUsersOptions } from './options.js'
export { normalizeUsername } from './username.js'
export { MIGRATIONS, REQUIRED_VERSION } from './migrations.js'

/**
 * `@grantd/users-postgres`: users, tenants and external links in PostgreSQL (SPEC §12).
 * Nothing connects at register time: the core calls `start()` before listening, which
 * checks the schema version (`grantd users migrate` creates and upgrades it).
 */
export default definePlugin({
  name: 'users-postgres',
  options: parseOptions,
  register(host) {
    const users = new PostgresUsers(host.options, host.log)
    host.users(users)
    host.onClose(() => users.close())
  },
})
