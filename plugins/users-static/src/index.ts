import { createHash, randomBytes } from 'node:crypto'
import {
  definePlugin, normalizeUsername, option, SecretVerifier as PasswordCheck,
  type AcrContext, type Client, type ExternalLogin, type JsonObject, type PasswordLogin, type Store, type User, type UserService,
} from '@grantd/core'

export interface StaticUserConfig {
  sub: string
  username: string
  /** In clear (development) or a `$scrypt$` hash (`grantd hash-secret`). Absent: external sign-in only. */
  password?: string
  tenant?: string
  claims: JsonObject
  links: Array<{ idp: string; sub: string }>
  active: boolean
}

export interface StaticUsersOptions {
  users: StaticUserConfig[]
}

/**
 * OIDC Core §5.4's standard claims: what an auto-provisioned user keeps of the upstream
 * identity. (Which claims a scope releases is the core's business: config `scopes`.)
 */
const STANDARD_CLAIMS: Readonly<Record<string, readonly string[]>> = {
  profile: ['name', 'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username', 'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at'],
  email: ['email', 'email_verified'],
  address: ['address'],
  phone: ['phone_number', 'phone_number_verified'],
}

/** How long a user created by `autoProvision` is remembered after its last sign-in. */
const PROVISIONED_TTL = 365 * 24 * 3600
const SCRYPT_PREFIX = '$scrypt$'

type StaticUser = User & { claims: JsonObject; username?: string }

interface Entry {
  user: StaticUser
  config: StaticUserConfig
  password: PasswordCheck | undefined
}

/** NFKC with full case folding (the core's normalizeUsername), as the throttle and users-postgres compare. */
function lowerKey(username: string): string {
  return normalizeUsername(username)
}

function linkKey(idp: string, sub: string): string {
  return `${idp}\u0000${sub}`
}

/**
 * A hash nobody's password matches, with the cost of the most expensive configured hash:
 * checking a password for an unknown user then costs what checking a known one costs.
 */
function decoyFor(users: readonly StaticUserConfig[]): PasswordCheck {
  let costliest: { params: string; cost: number } | undefined
  for (const u of users) {
    if (!u.password?.startsWith(SCRYPT_PREFIX)) continue
    const params = u.password.slice(SCRYPT_PREFIX.length).split('$')[0]!
    const n = Object.fromEntries(params.split(',').map((kv) => kv.split('=') as [string, string]))
    const cost = 2 ** Number(n.ln) * Number(n.r) * Number(n.p)
    if (!costliest || cost > costliest.cost) costliest = { params, cost }
  }
  if (!costliest) return new PasswordCheck(randomBytes(32).toString('base64url'))
  return new PasswordCheck(`${SCRYPT_PREFIX}${costliest.params}$${randomBytes(16).toString('base64url')}$${randomBytes(32).toString('base64url')}`)
}

/**
 * Users from the config file (SPEC §3, §6).
 *
 * - Usernames are case-insensitive and unique per tenant. A user of tenant `acme` signs
 *   in with `tenant:acme` or with no tenant, never with another; a user without a tenant
 *   signs in only without one. A username that several tenants share needs `tenant:`.
 * - External identities map only through a user's `links`, or, when the provider has
 *   `autoProvision`, to a user created on first sign-in (kept in the store, so every
 *   grantd process sharing the store knows it).
 * - `active: false` users exist (their `sub` stays reserved) but get no tokens.
 */
export class StaticUsers implements UserService {
  private readonly bySub = new Map<string, Entry>()
  private readonly byUsername = new Map<string, Entry[]>()
  private readonly byLink = new Map<string, Entry>()
  /** Checked when no user matches, so a miss costs what a hit costs. */
  private readonly decoy: PasswordCheck

  constructor(users: readonly StaticUserConfig[], private readonly store?: () => Store) {
    for (const config of users) {
      const entry: Entry = {
        user: { sub: config.sub, username: config.username, claims: config.claims, ...(config.tenant !== undefined ? { tenant: config.tenant } : {}) },
        config,
        password: config.password !== undefined ? new PasswordCheck(config.password) : undefined,
      }
      this.bySub.set(config.sub, entry)
      const key = lowerKey(config.username)
      this.byUsername.set(key, [...(this.byUsername.get(key) ?? []), entry])
      for (const link of config.links) this.byLink.set(linkKey(link.idp, link.sub), entry)
    }
    this.decoy = decoyFor(users)
  }

  private fitsTenant(tenant: string | undefined, context: AcrContext): boolean {
    return context.tenant === undefined || tenant === context.tenant
  }

  /** The one user a sign-in names: its tenant fits and, without a tenant, the name is not shared. */
  private match(username: string, context: AcrContext): Entry | undefined {
    const candidates = (this.byUsername.get(lowerKey(username)) ?? []).filter((e) => this.fitsTenant(e.config.tenant, context))
    // Without a tenant, a username shared by two tenants is ambiguous: refuse rather than guess.
    return candidates.length === 1 ? candidates[0] : undefined
  }

  /** The account the core's brute-force limits count for this sign-in: the user `authenticate` would check. */
  async resolveAccount({ username, context }: { username: string; context: AcrContext; client: Client }): Promise<string | undefined> {
    return this.match(username, context)?.config.sub
  }

  async authenticate({ username, password, context }: PasswordLogin): Promise<User | undefined> {
    const entry = this.match(username, context)
    if (!entry?.password) {
      await this.decoy.verify(password)
      return undefined
    }
    const ok = await entry.password.verify(password)
    // Checked after the password so a disabled user's answer takes as long as anyone's.
    return ok && entry.config.active ? entry.user : undefined
  }

  /** This service keeps no passwords for external providers: `idp:` on a password grant is refused. */
  acceptsPasswordIdp(): boolean {
    return false
  }

  async authenticateExternal({ idp, subject, claims, context, provider }: ExternalLogin): Promise<User | undefined> {
    const linked = this.byLink.get(linkKey(idp, subject))
    if (linked) return linked.config.active && this.fitsTenant(linked.config.tenant, context) ? linked.user : undefined
    if (!provider.autoProvision) return undefined
    const store = this.store?.()
    if (!store) return undefined
    // Stable per (provider, upstream sub), and never equal to a configured sub (those have no "idp:" form).
    const sub = `${idp}:${createHash('sha256').update(linkKey(idp, subject)).digest('base64url').slice(0, 22)}`
    if (this.bySub.has(sub)) return undefined
    const prior = await this.readProvisioned(store, sub)
    // A provisioned user belongs to the tenant it first signed in with.
    const tenant = prior ? prior.tenant : context.tenant
    if (!this.fitsTenant(tenant, context)) return undefined
    const kept: JsonObject = {}
    for (const names of Object.values(STANDARD_CLAIMS)) for (const n of names) if (claims[n] !== undefined) kept[n] = claims[n]!
    const user: StaticUser = { sub, claims: kept, idp, ...(tenant !== undefined ? { tenant } : {}) }
    await store.put(`user:${sub}`, JSON.stringify(user), PROVISIONED_TTL)
    return user
  }

  private async readProvisioned(store: Store, sub: string): Promise<StaticUser | undefined> {
    const raw = await store.get(`user:${sub}`)
    if (raw === undefined) return undefined
    try {
      return JSON.parse(raw) as StaticUser
    } catch {
      return undefined
    }
  }

  async findById(sub: string, context: AcrContext): Promise<User | undefined> {
    const entry = this.bySub.get(sub)
    if (entry) return entry.config.active && this.fitsTenant(entry.config.tenant, context) ? entry.user : undefined
    const store = this.store?.()
    if (!store || !sub.includes(':')) return undefined
    const user = await this.readProvisioned(store, sub)
    return user && this.fitsTenant(user.tenant, context) ? user : undefined
  }

  /**
   * Every claim of the user: the configured `claims`, `preferred_username` (the username
   * unless set), and `tenant`. The core releases only what the granted scopes list (SPEC §11).
   */
  async claims(user: User, _scopes?: readonly string[]): Promise<JsonObject> {
    const out: JsonObject = { ...((user.claims ?? {}) as JsonObject) }
    if (out.preferred_username === undefined && typeof user.username === 'string') out.preferred_username = user.username
    if (out.tenant === undefined && typeof user.tenant === 'string') out.tenant = user.tenant
    return out
  }

  async isActive(sub: string, context: AcrContext): Promise<boolean> {
    return (await this.findById(sub, context)) !== undefined
  }
}

/* ------------------------------------------------------------------ options */

const USER_KEYS = ['sub', 'username', 'password', 'tenant', 'claims', 'links', 'active']
const MAX_FIELD = 256

const record = (v: unknown, at: string): Record<string, unknown> => option.object(v, at)
const text = (v: unknown, at: string): string => option.string(v, at, MAX_FIELD)

/** Validate `options`; every error names its key path (`users[1].password: expected string, got number`). */
export function parseStaticUsersOptions(raw: unknown): StaticUsersOptions {
  const o = record(raw ?? {}, '(options)')
  option.only(o, '(options)', ['users'])
  if (!Array.isArray(o.users)) option.fail('users', `expected array, got ${option.typeName(o.users)}`)
  const seenSub = new Set<string>()
  const seenName = new Set<string>()
  const seenLink = new Map<string, string>()
  const users = o.users.map((u: unknown, i: number): StaticUserConfig => {
    const at = `users[${i}]`
    const r = record(u, at)
    option.only(r, at, USER_KEYS)
    const sub = text(r.sub, `${at}.sub`)
    const username = text(r.username, `${at}.username`)
    const tenant = r.tenant === undefined ? undefined : text(r.tenant, `${at}.tenant`)
    let password: string | undefined
    if (r.password !== undefined) {
      password = option.string(r.password, `${at}.password`)
      if (password.startsWith(SCRYPT_PREFIX)) {
        try {
          new PasswordCheck(password)
        } catch {
          option.fail(`${at}.password`, 'malformed $scrypt$ hash (make one with grantd hash-secret)')
        }
      }
    }
    const claims = r.claims === undefined ? {} : (record(r.claims, `${at}.claims`) as JsonObject)
    const active = r.active === undefined ? true : option.boolean(r.active, `${at}.active`)
    if (r.links !== undefined && !Array.isArray(r.links)) option.fail(`${at}.links`, `expected array, got ${option.typeName(r.links)}`)
    const links = ((r.links as unknown[] | undefined) ?? []).map((l, j) => {
      const lat = `${at}.links[${j}]`
      const link = record(l, lat)
      option.only(link, lat, ['idp', 'sub'])
      const value = { idp: text(link.idp, `${lat}.idp`), sub: text(link.sub, `${lat}.sub`) }
      const key = linkKey(value.idp, value.sub)
      const prior = seenLink.get(key)
      if (prior) option.fail(lat, `${value.idp} identity "${value.sub}" is already linked to ${prior}`)
      seenLink.set(key, at)
      return value
    })
    const nameKey = `${tenant ?? ''}\u0000${lowerKey(username)}`
    if (seenSub.has(sub)) option.fail(`${at}.sub`, `duplicate "${sub}"`)
    if (seenName.has(nameKey)) option.fail(`${at}.username`, `duplicate "${username}" in ${tenant === undefined ? 'users without a tenant' : `tenant "${tenant}"`}`)
    seenSub.add(sub)
    seenName.add(nameKey)
    return {
      sub, username, claims, links, active,
      ...(password !== undefined ? { password } : {}),
      ...(tenant !== undefined ? { tenant } : {}),
    }
  })
  return { users }
}

export default definePlugin({
  name: 'users-static',
  options: parseStaticUsersOptions,
  register(host) {
    host.users(new StaticUsers(host.options.users, () => host.resolve('store')))
  },
})
