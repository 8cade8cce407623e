import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeJwt } from 'jose'
import { hashSecret, type Client } from '@grantd/core'
import { MemoryStore } from '@grantd/store-memory'
import { StaticUsers, parseStaticUsersOptions } from '@grantd/users-static'
import { basic, CLI, postForm, startServer } from '../helpers/server.js'

const client = { client_id: 'web', identity_providers: ['upstream'] } as unknown as Client

function users(options: unknown): Record<string, unknown> {
  return {
    users: { use: '@grantd/users-static', options },
    plugins: ['@grantd/grant-password'],
    clients: [{ client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password'], scope: 'api' }],
  }
}

t.test('option errors name the key path', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{}, /^users\.options: users: expected array, got undefined$/],
    [{ users: [], extra: 1 }, /^users\.options: extra: unknown key$/],
    [{ users: ['alice'] }, /^users\.options: users\[0\]: expected object, got string$/],
    [{ users: [{ username: 'a' }] }, /^users\.options: users\[0\]\.sub: expected string, got undefined$/],
    [{ users: [{ sub: 'a', username: 'a', password: 5 }] }, /^users\.options: users\[0\]\.password: expected string, got number$/],
    [{ users: [{ sub: 'a', username: 'a', pasword: 'x' }] }, /^users\.options: users\[0\]\.pasword: unknown key$/],
    [{ users: [{ sub: 'a', username: 'a', active: 'no' }] }, /users\[0\]\.active: expected boolean, got string/],
    [{ users: [{ sub: 'a', username: 'a', claims: [] }] }, /users\[0\]\.claims: expected object, got array/],
    [{ users: [{ sub: 'a', username: 'a', password: '$scrypt$ln=15$bad' }] }, /users\[0\]\.password: malformed \$scrypt\$ hash/],
    [{ users: [{ sub: 'a', username: 'a' }, { sub: 'a', username: 'b' }] }, /users\[1\]\.sub: duplicate "a"/],
    [{ users: [{ sub: 'a', username: 'Sam', tenant: 'acme' }, { sub: 'b', username: 'sam', tenant: 'acme' }] }, /users\[1\]\.username: duplicate "sam" in tenant "acme"/],
    [{ users: [{ sub: 'a', username: 'a', links: {} }] }, /users\[0\]\.links: expected array, got object/],
    [{ users: [{ sub: 'a', username: 'a', links: [{ idp: 'up' }] }] }, /users\[0\]\.links\[0\]\.sub: expected string, got undefined/],
    [{ users: [{ sub: 'a', username: 'a', links: [{ idp: 'up', sub: '1' }] }, { sub: 'b', username: 'b', links: [{ idp: 'up', sub: '1' }] }] }, /users\[1\]\.links\[0\]: up identity "1" is already linked to users\[0\]/],
  ]
  for (const [options, expected] of cases) {
    await t.rejects(startServer(users(options)), { name: 'ConfigError', message: expected }, JSON.stringify(options))
  }
  // The same username in two tenants is fine.
  const srv = await startServer(users({ users: [{ sub: 'a', username: 'sam', tenant: 'acme' }, { sub: 'b', username: 'sam', tenant: 'globex' }] }))
  await srv.close()
})

t.test('grantd check reports a bad users option on one line and exits non-zero', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'grantd-users-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'config.json')
  writeFileSync(file, JSON.stringify(users({ users: [{ sub: 'a', username: 'a', password: 5 }] })))
  const run = spawnSync(process.execPath, [CLI, 'check', '--config', file], { encoding: 'utf8', timeout: 20_000 })
  t.not(run.status, 0)
  t.match(run.stderr, /users\.options: users\[0\]\.password: expected string, got number/)
  t.equal(run.stderr.trim().split('\n').length, 1)
})

t.test('tenants: a username shared by two tenants needs tenant:', async (t) => {
  const srv = await startServer({
    ...users({ users: [
      { sub: 'u-sam-acme', username: 'sam', password: 'acme-pw', tenant: 'acme' },
      { sub: 'u-sam-globex', username: 'sam', password: 'globex-pw', tenant: 'globex' },
    ] }),
    plugins: ['@grantd/grant-password', '@grantd/acr-tenant'],
  })
  t.teardown(srv.close)
  const login = (password: string, acr?: string) => postForm(`${srv.url}/connect/token`, {
    grant_type: 'password', username: 'sam', password, scope: 'api', ...(acr ? { acr_values: acr } : {}),
  }, { authorization: basic('ro', 'ro-secret') })
  const acme = await login('acme-pw', 'tenant:acme')
  t.equal(acme.status, 200)
  t.equal(decodeJwt(acme.json.access_token as string).sub, 'u-sam-acme')
  const globex = await login('globex-pw', 'tenant:globex')
  t.equal(decodeJwt(globex.json.access_token as string).sub, 'u-sam-globex')
  t.equal((await login('acme-pw', 'tenant:globex')).json.error, 'invalid_grant', "acme's password is not globex's")
  t.equal((await login('acme-pw')).json.error, 'invalid_grant', 'ambiguous without a tenant')
})

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

t.test('an unknown user costs what a wrong password costs (scrypt hashes)', async (t) => {
  const service = new StaticUsers(parseStaticUsersOptions({ users: [
    { sub: 'u-alice', username: 'alice', password: await hashSecret('wonderland', 14) },
  ] }).users)
  const time = async (username: string, password: string) => {
    const started = performance.now()
    const user = await service.authenticate({ username, password, context: { raw: [] }, client })
    return { ms: performance.now() - started, user }
  }
  t.equal((await time('alice', 'wonderland')).user?.sub, 'u-alice')
  const known: number[] = []
  const unknown: number[] = []
  const unknownWithAlicePassword: number[] = []
  for (let i = 0; i < 5; i++) {
    known.push((await time('alice', `wrong-${i}`)).ms)
    unknown.push((await time(`nobody-${i}`, `wrong-${i}`)).ms)
    unknownWithAlicePassword.push((await time(`nobody-${i}`, 'wonderland')).ms)
  }
  t.comment(`median ms: wrong password ${median(known).toFixed(1)}, unknown user ${median(unknown).toFixed(1)}, unknown user + a real password ${median(unknownWithAlicePassword).toFixed(1)}`)
  // A plain map miss would take microseconds; the decoy hash must cost the same order as scrypt.
  t.ok(median(unknown) > median(known) * 0.4, 'unknown user pays for a hash')
  t.ok(median(unknownWithAlicePassword) > median(known) * 0.4, 'the decoy is not a real user\'s hash')
})

t.test('external identities: links, tenants, autoProvision', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const service = new StaticUsers(parseStaticUsersOptions({ users: [
    { sub: 'u-alice', username: 'alice', tenant: 'acme', links: [{ idp: 'upstream', sub: 'up-alice' }], claims: { name: 'Alice' } },
    { sub: 'u-dan', username: 'dan', active: false, links: [{ idp: 'upstream', sub: 'up-dan' }] },
  ] }).users, () => store)
  const external = (subject: string, options: { tenant?: string; autoProvision?: boolean; idp?: string } = {}) => service.authenticateExternal({
    idp: options.idp ?? 'upstream', subject, claims: { name: 'From Upstream', email: 'x@example.com', groups: ['admin'] },
    context: { raw: [], ...(options.tenant ? { tenant: options.tenant } : {}) }, client, provider: { autoProvision: options.autoProvision ?? false },
  })

  t.equal((await external('up-alice'))?.sub, 'u-alice', 'a linked identity maps to its user')
  t.equal((await external('up-alice', { tenant: 'acme' }))?.sub, 'u-alice')
  t.equal(await external('up-alice', { tenant: 'other' }), undefined, 'linked user of another tenant')
  t.equal(await external('up-alice', { idp: 'elsewhere' }), undefined, 'the link names its provider')
  t.equal(await external('up-dan'), undefined, 'inactive linked user')
  t.equal(await external('up-stranger'), undefined, 'no link, no autoProvision')

  const created = await external('up-stranger', { autoProvision: true, tenant: 'acme' })
  t.ok(created)
  t.match(created!.sub, /^upstream:[A-Za-z0-9_-]{22}$/)
  t.equal((await external('up-stranger', { autoProvision: true }))?.sub, created!.sub, 'stable sub')
  t.equal(await external('up-stranger', { autoProvision: true, tenant: 'globex' }), undefined, 'a provisioned user keeps its first tenant')
  const found = await service.findById(created!.sub, { raw: [] })
  t.equal(found?.tenant, 'acme')
  // Upstream claims outside OIDC Core §5.1 (groups) are not kept; which claims a scope releases is the core's filter (test/claims/).
  t.same(await service.claims(found!, ['openid', 'profile', 'email']), { name: 'From Upstream', email: 'x@example.com', tenant: 'acme' }, 'only standard claims are kept, plus the tenant')
  t.ok(await service.isActive(created!.sub, { raw: [] }))
  t.notOk(await service.isActive(created!.sub, { raw: [], tenant: 'globex' }))
  t.notOk(await service.isActive('u-dan', { raw: [] }), 'inactive configured user')
  t.notOk(await service.isActive('nobody', { raw: [] }))
  t.notOk(service.acceptsPasswordIdp(), 'users-static keeps no passwords for external providers')

  const alice = await service.findById('u-alice', { raw: [] })
  // Every claim of the user, whatever the scopes: the core releases only what a granted scope lists (SPEC §11).
  t.same(await service.claims(alice!, ['openid']), { name: 'Alice', preferred_username: 'alice', tenant: 'acme' }, 'all of the user\'s claims, for the core to filter')
  t.equal(await service.authenticate({ username: 'alice', password: '', context: { raw: [] }, client }), undefined, 'no password configured: no password sign-in')
})
