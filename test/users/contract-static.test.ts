/** @grantd/users-static passes the user-service contract suite (SPEC §12). */
import t from 'tap'
import { hashSecret } from '@grantd/core'
import { MemoryStore } from '@grantd/store-memory'
import { StaticUsers, parseStaticUsersOptions } from '@grantd/users-static'
import { userServiceContract } from '../helpers/user-service-contract.js'

userServiceContract(t, 'users-static', async (users) => {
  const store = new MemoryStore()
  const options = parseStaticUsersOptions({
    users: await Promise.all(users.map(async (u) => ({
      sub: `u-${u.key}`,
      username: u.username,
      // A cheap cost keeps the suite quick; the decoy takes the costliest configured hash.
      ...(u.password !== undefined ? { password: await hashSecret(u.password, 12) } : {}),
      ...(u.tenant !== undefined ? { tenant: u.tenant } : {}),
      claims: u.claims,
      active: !u.disabled,
      links: (u.links ?? []).map((l) => ({ idp: l.idp, sub: l.subject })),
    }))),
  })
  return {
    service: new StaticUsers(options.users, () => store),
    subOf: (key) => `u-${key}`,
    close: () => store.close(),
  }
})
