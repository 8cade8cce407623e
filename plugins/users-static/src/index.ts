import { createHash, randomBytes } from 'node:crypto'
import { definePlugin, SecretVerifier as PasswordCheck, type AcrContext, type ExternalLogin, type JsonObject, type JsonValue, type PasswordLogin, type Store, type User, type UserService } from '@grantd/core'

export interface StaticUserConfig {
  sub: string
  username: string
  /** In clear (development) or a `$scrypt$` hash (`grantd hash-secret`). */
  password?: string
  tenant?: string
  claims: JsonObject
  links: Array<{ idp: string; sub: string }>
  active: boolean
}

export interface StaticUsersOptions {
  users: StaticUserConfig[]
}

/** OIDC Core §5.4: which standard claims each scope releases. */
const SCOPE_CLAIMS: Readonly<Record<string, readonly string[]>> = {
  profile: ['name', 'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username', 'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at'],
  email: ['email', 'email_verified'],
  address: ['address'],
  phone: ['phone_number', 'phone_number_verified'],
}

const PROVISIONED_TTL = 365 * 24 * 3600

interface Entry {
  user: User & { claims: JsonObject }
  config: StaticUserConfig
  password: PasswordCheck | undefined
}

function lowerKey(username: string): string {
  return username.normalize('NFC').toLowerCase()
}

/**
 * Users from the config file. Usernames are case-insensitive and unique per tenant;
 * a user of tenant `acme` signs in with `tenant:acme` or with no tenant, never with
 * another. External identities map only through `links` (or `autoProvision`).
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
        user: { sub: config.sub, ...(config.tenant !== undefined ? { tenant: config.tenant } : {}), username: config.username, claims: config.claims },
        config,
        password: config.password !== undefined ? new PasswordCheck(config.password) : undefined,
      }
      this.bySub.set(config.sub, entry)
      const key = lowerKey(config.username)
      this.byUsername.set(key, [...(this.byUsername.get(key) ?? []), entry])
      for (const link of config.links) this.byLink.set(`${link.idp}\u0000${link.sub}`, entry)
    }
    // A miss must cost what a hit costs: verify against a real hash when any user has one.
    const hashed = users.find((u) => u.password?.startsWith('$scrypt$'))
    this.decoy = new PasswordCheck(hashed?.password ?? randomBytes(32).toString('base64url'))
  }

  private fitsTenant(entry: Entry, context: AcrContext): boolean {
    return context.tenant === undefined || entry.config.tenant === context.tenant
  }

  async authenticate({ username, password, context }: PasswordLogin): Promise<User | undefined> {
    const candidates = (this.byUsername.get(lowerKey(username)) ?? []).filter((e) => this.fitsTenant(e, context))
    // Without a tenant, a username shared by two tenants is ambiguous: refuse rather than guess.
    const entry = candidates.length === 1 ? candidates[0] : undefined
    if (!entry?.password) {
      await this.decoy.verify(password)
      return undefined
    }
    const ok = await entry.password.verify(password)
    return ok && entry.config.active ? entry.user : undefined
  }

  async authenticateExternal({ idp, subject, claims, context, provider }: ExternalLogin): Promise<User | undefined> {
    const linked = this.byLink.get(`${idp}\u0000${subject}`)
    if (linked) return linked.config.active && this.fitsTenant(linked, context) ? linked.user : undefined
    if (!provider.autoProvision) return undefined
    const sub = `${idp}:${createHash('sha256').update(subject).digest('base64url').slice(0, 22)}`
    const kept: JsonObject = {}
    for (const names of Object.values(SCOPE_CLAIMS)) for (const n of names) if (claims[n] !== undefined) kept[n] = claims[n]!
    const user: User & { claims: JsonObject } = { sub, claims: kept, ...(context.tenant !== undefined ? { tenant: context.tenant } : {}) }
    // Shared through the store so every grantd process behind the proxy knows the user.
    await this.store?.().put(`user:${sub}`, JSON.stringify(user), PROVISIONED_TTL)
    return user
  }

  async findById(sub: string, context: AcrContext): Promise<User | undefined> {
    const entry = this.bySub.get(sub)
    if (entry) return entry.config.active && this.fitsTenant(entry, context) ? entry.user : undefined
    const raw = await this.store?.().get(`user:${sub}`)
    if (raw === undefined) return undefined
    const user = JSON.parse(raw) as User & { claims: JsonObject }
    return context.tenant === undefined || user.tenant === context.tenant ? user : undefined
  }

  async claims(user: User, scopes: readonly string[]): Promise<JsonObject> {
    const source = (user.claims ?? {}) as JsonObject
    const out: JsonObject = {}
    for (const scope of scopes) {
      for (const name of SCOPE_CLAIMS[scope] ?? []) {
        const value: JsonValue | undefined = source[name]
        if (value !== undefined) out[name] = value
      }
    }
    if (scopes.includes('profile') && out.preferred_username === undefined && typeof user.username === 'string') out.preferred_username = user.username
    return out
  }

  async isActive(sub: string, context: AcrContext): Promise<boolean> {
    return (await this.findById(sub, context)) !== undefined
  }
}

function parseOptions(raw: unknown): StaticUsersOptions {
  const o = (raw ?? {}) as Record<string, unknown>
  for (const k of Object.keys(o)) if (k !== 'users') throw new Error(`${k}: unknown key`)
  if (!Array.isArray(o.users)) throw new Error('users: expected array')
  const seenSub = new Set<string>()
  const seenName = new Set<string>()
  const users = o.users.map((u: unknown, i: number): StaticUserConfig => {
    const at = `users[${i}]`
    if (typeof u !== 'object' || u === null || Array.isArray(u)) throw new Error(`${at}: expected object`)
    const r = u as Record<string, unknown>
    for (const k of Object.keys(r)) if (!['sub', 'username', 'password', 'tenant', 'claims', 'links', 'active'].includes(k)) throw new Error(`${at}.${k}: unknown key`)
    for (const k of ['sub', 'username'] as const) if (typeof r[k] !== 'string' || r[k] === '') throw new Error(`${at}.${k}: expected string`)
    for (const k of ['password', 'tenant'] as const) if (r[k] !== undefined && typeof r[k] !== 'string') throw new Error(`${at}.${k}: expected string`)
    if (r.claims !== undefined && (typeof r.claims !== 'object' || r.claims === null || Array.isArray(r.claims))) throw new Error(`${at}.claims: expected object`)
    if (r.active !== undefined && typeof r.active !== 'boolean') throw new Error(`${at}.active: expected boolean`)
    if (r.links !== undefined && !Array.isArray(r.links)) throw new Error(`${at}.links: expected array`)
    const links = ((r.links as unknown[] | undefined) ?? []).map((l, j) => {
      const link = l as Record<string, unknown>
      if (typeof link !== 'object' || link === null || typeof link.idp !== 'string' || typeof link.sub !== 'string') throw new Error(`${at}.links[${j}]: expected { "idp": string, "sub": string }`)
      return { idp: link.idp, sub: link.sub }
    })
    const sub = r.sub as string
    const nameKey = `${(r.tenant as string | undefined) ?? ''}\u0000${lowerKey(r.username as string)}`
    if (seenSub.has(sub)) throw new Error(`${at}.sub: duplicate "${sub}"`)
    if (seenName.has(nameKey)) throw new Error(`${at}.username: duplicate in its tenant`)
    seenSub.add(sub)
    seenName.add(nameKey)
    if (typeof r.password === 'string' && r.password.startsWith('$scrypt$')) {
      try { new PasswordCheck(r.password) } catch { throw new Error(`${at}.password: malformed $scrypt$ hash`) }
    }
    return {
      sub, username: r.username as string, claims: (r.claims as JsonObject | undefined) ?? {}, links, active: (r.active as boolean | undefined) ?? true,
      ...(r.password !== undefined ? { password: r.password as string } : {}),
      ...(r.tenant !== undefined ? { tenant: r.tenant as string } : {}),
    }
  })
  return { users }
}

export default definePlugin({
  name: 'users-static',
  options: parseOptions,
  register(host) {
    host.users(new StaticUsers(host.options.users, () => host.resolve('store')))
  },
})
