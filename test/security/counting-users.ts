/**
 * users-static with a witness: it counts the passwords it was asked to check and can hold
 * each check for `delayMs`, so a test can put a whole burst in flight at once and then ask
 * how many guesses reached the user service (`GET /test/password-checks`). The password
 * `!unavailable` makes it fail as an unreachable database would. Loaded from
 * config as a relative plugin path (test/security/throttle.test.ts).
 */
import { definePlugin, StoreUnavailableError, type PasswordLogin, type User } from '@grantd/core'
import { parseStaticUsersOptions, StaticUsers } from '@grantd/users-static'

interface CountingOptions {
  users: ReturnType<typeof parseStaticUsersOptions>['users']
  delayMs: number
}

class CountingUsers extends StaticUsers {
  checks = 0

  constructor(options: CountingOptions, store: ConstructorParameters<typeof StaticUsers>[1], private readonly delayMs: number) {
    super(options.users, store)
  }

  override async authenticate(login: PasswordLogin): Promise<User | undefined> {
    this.checks++
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs))
    // A user database that cannot answer (users-postgres down): the sign-in is no guess.
    if (login.password === '!unavailable') throw new StoreUnavailableError('user database unreachable')
    return super.authenticate(login)
  }
}

export default definePlugin<CountingOptions>({
  name: 'counting-users',
  options(raw) {
    const o = (raw ?? {}) as { users?: unknown; delayMs?: unknown }
    return { users: parseStaticUsersOptions({ users: o.users }).users, delayMs: typeof o.delayMs === 'number' ? o.delayMs : 0 }
  },
  register(host) {
    const users = new CountingUsers(host.options, () => host.resolve('store'), host.options.delayMs)
    host.users(users)
    host.route('get', '/test/password-checks', (ctx) => {
      ctx.body = { checks: users.checks }
    })
  },
})
