/**
 * The one user-service contract suite (SPEC §12, STYLE "a contract suite per extension
 * point"): `@grantd/users-static`, `@grantd/users-postgres` and any user service a third
 * party writes must pass it. Call it from a tap test with a factory that builds a fresh
 * service holding exactly {@link CONTRACT_USERS} (see docs/plugins.md, "A user service").
 *
 * It talks to the service through the `UserService` interface only; HTTP behaviour (the
 * password grant, the login form, refresh after a disable) is each service's own tests'.
 */
import type { AcrContext, Client, JsonObject, UserService } from '@grantd/core'
import type { Test } from 'tap'

/** A user the factory must create. `password` absent: external sign-in only. */
export interface ContractUser {
  /** A label the suite uses to ask the factory for the user's `sub`. */
  readonly key: string
  readonly username: string
  readonly password?: string
  readonly tenant?: string
  readonly claims: JsonObject
  readonly disabled?: boolean
  readonly links?: ReadonlyArray<{ readonly idp: string; readonly subject: string }>
}

export const CONTRACT_USERS: readonly ContractUser[] = [
  { key: 'alice', username: 'alice', password: 'wonderland', tenant: 'acme', claims: { name: 'Alice', email: 'alice@example.com', email_verified: true } },
  { key: 'bob', username: 'bob', password: 'builder', claims: { name: 'Bob' } },
  { key: 'carol-acme', username: 'carol', password: 'carol-acme-pw', tenant: 'acme', claims: {} },
  { key: 'carol-globex', username: 'carol', password: 'carol-globex-pw', tenant: 'globex', claims: {} },
  { key: 'dave', username: 'dave', password: 'dave-pw', claims: {}, disabled: true },
  { key: 'jurgen', username: 'Jürgen', password: 'jurgen-pw', claims: {} },
  { key: 'erin', username: 'erin', claims: { email: 'erin@example.com' }, links: [{ idp: 'upstream', subject: 'up-erin' }] },
]

export interface ContractSubject {
  readonly service: UserService
  /** The `sub` the service gave the fixture user `key`. */
  subOf(key: string): string
  close(): Promise<void>
}

/** Build a service holding {@link CONTRACT_USERS}; passwords may be hashed at any cost the service accepts. */
export type ContractFactory = (users: readonly ContractUser[]) => Promise<ContractSubject>

const client = { client_id: 'contract', identity_providers: ['upstream'] } as unknown as Client
const ctx = (tenant?: string): AcrContext => ({ raw: tenant ? [`tenant:${tenant}`] : [], ...(tenant ? { tenant } : {}) })

export function userServiceContract(t: Test, name: string, factory: ContractFactory): void {
  let subject: ContractSubject
  t.before(async () => {
    subject = await factory(CONTRACT_USERS)
  })
  t.teardown(async () => {
    await subject?.close()
  })
  const sign = (username: string, password: string, tenant?: string) => subject.service.authenticate({ username, password, context: ctx(tenant), client })

  t.test(`${name}: a good password signs in, anything else does not`, async (t) => {
    const alice = await sign('alice', 'wonderland')
    t.equal(alice?.sub, subject.subOf('alice'))
    t.equal(alice?.tenant, 'acme', 'the user carries its tenant')
    t.equal(await sign('alice', 'wonderlanD'), undefined, 'wrong password')
    t.equal(await sign('alice', ''), undefined, 'empty password')
    t.equal(await sign('nobody', 'wonderland'), undefined, 'unknown user')
    t.equal(await sign('', ''), undefined, 'empty username')
    t.equal(await sign('erin', ''), undefined, 'a user without a password cannot sign in with one')
  })

  t.test(`${name}: usernames compare after NFKC and case folding`, async (t) => {
    const sub = subject.subOf('alice')
    t.equal((await sign('ALICE', 'wonderland'))?.sub, sub, 'upper case')
    t.equal((await sign('\uff41\uff4c\uff49\uff43\uff45', 'wonderland'))?.sub, sub, 'full-width letters (NFKC)')
    t.equal((await sign('JÜRGEN', 'jurgen-pw'))?.sub, subject.subOf('jurgen'), 'non-ASCII upper case')
    t.equal((await sign('ju\u0308rgen', 'jurgen-pw'))?.sub, subject.subOf('jurgen'), 'decomposed ü')
    t.equal(await sign('alice ', 'wonderland'), undefined, 'a trailing space is another name')
    t.equal(await sign('ALICE', 'WONDERLAND'), undefined, 'passwords are not case-folded')
  })

  t.test(`${name}: tenants`, async (t) => {
    t.equal((await sign('alice', 'wonderland', 'acme'))?.sub, subject.subOf('alice'), 'own tenant')
    t.equal(await sign('alice', 'wonderland', 'globex'), undefined, 'another tenant')
    t.equal(await sign('bob', 'builder', 'acme'), undefined, 'a user without a tenant does not sign in to one')
    t.equal((await sign('bob', 'builder'))?.sub, subject.subOf('bob'))
    t.equal(await sign('carol', 'carol-acme-pw'), undefined, 'without tenant: a name two users share matches nobody')
    t.equal(await sign('carol', 'carol-globex-pw'), undefined, 'whichever password is given')
    t.equal((await sign('carol', 'carol-acme-pw', 'acme'))?.sub, subject.subOf('carol-acme'))
    t.equal((await sign('carol', 'carol-globex-pw', 'globex'))?.sub, subject.subOf('carol-globex'))
    t.equal(await sign('carol', 'carol-globex-pw', 'acme'), undefined, "globex's password is not acme's")
  })

  t.test(`${name}: a disabled user exists but gets nothing`, async (t) => {
    const sub = subject.subOf('dave')
    t.equal(await sign('dave', 'dave-pw'), undefined, 'no sign-in with the right password')
    t.equal(await subject.service.isActive(sub, ctx()), false)
    t.equal(await subject.service.findById(sub, ctx()), undefined)
  })

  t.test(`${name}: findById and isActive respect the tenant`, async (t) => {
    const sub = subject.subOf('alice')
    t.equal((await subject.service.findById(sub, ctx()))?.sub, sub)
    t.equal((await subject.service.findById(sub, ctx('acme')))?.sub, sub)
    t.equal(await subject.service.findById(sub, ctx('globex')), undefined)
    t.equal(await subject.service.isActive(sub, ctx()), true)
    t.equal(await subject.service.isActive(sub, ctx('acme')), true)
    t.equal(await subject.service.isActive(sub, ctx('globex')), false)
    t.equal(await subject.service.isActive('no-such-sub', ctx()), false)
    t.equal(await subject.service.findById('no-such-sub', ctx()), undefined)
  })

  t.test(`${name}: claims() hands the core every claim of the user; the core releases them per scope (SPEC §11)`, async (t) => {
    const alice = (await subject.service.findById(subject.subOf('alice'), ctx()))!
    const all = await subject.service.claims(alice, ['openid'])
    t.equal(all.email, 'alice@example.com', 'email is there whatever the scopes: the core filters')
    t.equal(all.email_verified, true)
    t.equal(all.name, 'Alice')
    t.equal(typeof all.preferred_username, 'string', 'a preferred_username (the username unless set)')
    t.same(await subject.service.claims(alice, ['openid', 'email']), all, 'the answer does not depend on the scopes')
  })

  t.test(`${name}: external identities map through links`, async (t) => {
    const login = (idp: string, sub: string, autoProvision = false, tenant?: string) =>
      subject.service.authenticateExternal({ idp, subject: sub, claims: { email: `${sub}@up.example`, name: sub, secret_stuff: 'x' }, context: ctx(tenant), client, provider: { autoProvision } })
    t.equal((await login('upstream', 'up-erin'))?.sub, subject.subOf('erin'), 'a linked identity')
    t.equal(await login('upstream', 'up-unknown'), undefined, 'an unlinked identity without autoProvision')
    t.equal(await login('other', 'up-erin'), undefined, 'the link is per provider')
  })

  t.test(`${name}: autoProvision makes exactly one user, even when first logins race`, async (t) => {
    const upstream = `up-new-${Date.now()}`
    const results = await Promise.all(Array.from({ length: 8 }, () => subject.service.authenticateExternal({
      idp: 'upstream', subject: upstream, claims: { email: 'new@up.example', name: 'New' }, context: ctx(), client, provider: { autoProvision: true },
    })))
    const subs = new Set(results.map((u) => u?.sub))
    t.equal(subs.size, 1, 'every racing login got the same user')
    const sub = [...subs][0]
    t.type(sub, 'string')
    const again = await subject.service.authenticateExternal({ idp: 'upstream', subject: upstream, claims: {}, context: ctx(), client, provider: { autoProvision: true } })
    t.equal(again?.sub, sub, 'a later login finds the same user')
    t.equal((await subject.service.findById(sub!, ctx()))?.sub, sub, 'and the core can find it by sub')
    t.not(sub, subject.subOf('erin'))
  })

  t.test(`${name}: resolveAccount names the account a sign-in means`, async (t) => {
    const resolve = subject.service.resolveAccount
    if (!resolve) {
      t.pass('resolveAccount is optional; this service does not implement it')
      return
    }
    const r = (username: string, tenant?: string) => resolve.call(subject.service, { username, context: ctx(tenant), client })
    t.equal(await r('alice'), subject.subOf('alice'))
    t.equal(await r('ALICE', 'acme'), subject.subOf('alice'), 'after normalisation')
    t.equal(await r('alice', 'globex'), undefined)
    t.equal(await r('carol'), undefined, 'ambiguous without a tenant')
    t.equal(await r('carol', 'globex'), subject.subOf('carol-globex'))
    t.equal(await r('nobody'), undefined)
  })

  t.test(`${name}: an unknown user costs about what a wrong password costs`, async (t) => {
    // The fastest of several interleaved runs (the least disturbed on a shared machine); the bound is
    // loose. A service that skips the hash for unknown users answers in well under a tenth of the time.
    const time = async (username: string) => {
      const started = performance.now()
      await sign(username, 'not-the-password')
      return performance.now() - started
    }
    await time('alice')
    const known: number[] = []
    const unknown: number[] = []
    for (let i = 0; i < 9; i++) {
      known.push(await time('alice'))
      unknown.push(await time(`nobody-${i}`))
    }
    const [k, u] = [Math.min(...known), Math.min(...unknown)]
    t.ok(u > k * 0.4, `unknown ${u.toFixed(1)} ms vs known ${k.toFixed(1)} ms (fastest runs)`)
  })
}
