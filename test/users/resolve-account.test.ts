/**
 * users-static's `resolveAccount` (the account the core's brute-force limits count) names
 * exactly the user `authenticate` would check: NFKC + lower-cased usernames, the tenant
 * rules, ambiguity refused. Pure logic over the plugin's public class.
 */
import t from 'tap'
import { normalizeUsername, type Client } from '@grantd/core'
import { parseStaticUsersOptions, StaticUsers } from '@grantd/users-static'

const client = { client_id: 'ro' } as unknown as Client
const users = new StaticUsers(parseStaticUsersOptions({
  users: [
    { sub: 'u-alice', username: 'alice', password: 'wonderland', tenant: 'acme' },
    { sub: 'u-rene', username: 'rené', password: 'pâtisserie' },
    { sub: 'u-sam-a', username: 'sam', password: 'a', tenant: 'acme' },
    { sub: 'u-sam-g', username: 'Sam', password: 'g', tenant: 'globex' },
  ],
}).users)

const resolve = (username: string, tenant?: string) => users.resolveAccount({ username, context: { raw: [], ...(tenant ? { tenant } : {}) }, client })
const login = (username: string, password: string, tenant?: string) => users.authenticate({ username, password, context: { raw: [], ...(tenant ? { tenant } : {}) }, client })

t.test('normalizeUsername: NFKC, then lower case', async (t) => {
  t.equal(normalizeUsername('rene\u0301'), 'rené')
  t.equal(normalizeUsername('RENÉ'), 'rené')
  t.equal(normalizeUsername('\uff52\uff45\uff4e\u00e9'), 'rené', 'full-width letters fold to ASCII')
  t.equal(normalizeUsername('ﬁnn'), 'finn', 'ligatures decompose')
  t.not(normalizeUsername('alice '), 'alice', 'no trimming: spaces are part of the name')
})

t.test('resolveAccount names the user authenticate checks', async (t) => {
  t.equal(await resolve('alice'), 'u-alice', 'a unique name without tenant')
  t.equal(await resolve('ALICE', 'acme'), 'u-alice', 'her tenant and another case')
  t.equal(await resolve('alice', 'globex'), undefined, 'another tenant: no account')
  t.equal(await resolve('rene\u0301'), 'u-rene', 'decomposed spelling')
  t.equal(await resolve('\uff52\uff45\uff4e\u00e9'), 'u-rene', 'full-width spelling')
  t.equal(await resolve('sam'), undefined, 'a name two tenants share is ambiguous without a tenant')
  t.equal(await resolve('SAM', 'globex'), 'u-sam-g', 'and names one user with a tenant')
  t.equal(await resolve('nobody'), undefined, 'unknown')
  t.equal((await login('rene\u0301', 'pâtisserie'))?.sub, 'u-rene', 'authenticate matches the decomposed spelling too')
  t.equal((await login('\uff52\uff45\uff4e\u00e9', 'pâtisserie'))?.sub, 'u-rene', 'and the full-width one')
  t.equal((await login('sam', 'a')), undefined, 'and refuses the ambiguous name as resolveAccount does')
  t.equal((await login('sam', 'g', 'globex'))?.sub, 'u-sam-g')
})

t.test('usernames equal after NFKC + lower case are duplicates at config load', async (t) => {
  t.throws(() => parseStaticUsersOptions({ users: [{ sub: 'a', username: 'rené' }, { sub: 'b', username: 'RENE\u0301' }] }), /users\[1\]\.username: duplicate/)
})
