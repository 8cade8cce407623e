import { createHash, randomBytes, randomUUID } from 'node:crypto'
import pg from 'pg'
import {
  hashSecret, parseHashedSecret, SecretVerifier,
  type AcrContext, type Client, type ExternalLogin, type JsonObject, type Logger, type ManagedUser, type NewUser, type PasswordLogin,
  type User, type UserManagement, type UserSelector, type UserService,
} from '@grantd/core'
import { standardClaims } from './claims.js'
import { migrate, REQUIRED_VERSION, schemaVersion } from './migrations.js'
import type { PostgresUsersOptions } from './options.js'
import { isUnavailable, toUnavailable } from './unavailable.js'
import { normalizeUsername } from './username.js'

/** A user as this service hands it to the core: `claims` for ID tokens and userinfo. */
export type PostgresUser = User & { readonly username?: string; readonly claims: JsonObject }

interface UserRow {
  sub: string
  tenant: string | null
  username: string | null
  claims: JsonObject
  disabled: boolean
}

interface PasswordRow extends UserRow {
  password_hash: string | null
}

/** Same limits as the password grant and the login form. */
const MAX_USERNAME = 256
const MAX_PASSWORD = 1024
const MAX_TENANT = 256
const MAX_LINK = 512
/** How long a successful password check answers the `isActive` that follows it. */
const JUST_VERIFIED_MS = 1000
const MAX_JUST_VERIFIED = 10_000

/** PostgreSQL `text` and `jsonb` cannot hold U+0000: a value with one names nothing stored (and would be a database error). */
const hasNul = (value: string): boolean => value.includes('\u0000')

function toUser(row: UserRow): PostgresUser {
  return {
    sub: row.sub,
    claims: row.claims,
    ...(row.username !== null ? { username: row.username } : {}),
    ...(row.tenant !== null ? { tenant: row.tenant } : {}),
  }
}

/** A user of tenant T signs in with `tenant:T` or with none; a user without a tenant only with none. */
function fitsTenant(tenant: string | null, context: AcrContext): boolean {
  return context.tenant === undefined || tenant === context.tenant
}

/** Upstream claims whose JSON holds a NUL are dropped: jsonb refuses `\u0000`. */
function storableClaims(claims: JsonObject): JsonObject {
  return Object.fromEntries(Object.entries(claims).filter(([k, v]) => !hasNul(k) && !JSON.stringify(v).includes('\\u0000')))
}

/** A hash nobody's password matches, at the current cost: an unknown user costs what a known one costs. */
function decoyHash(cost: number): string {
  return `$scrypt$ln=${cost},r=8,p=1$${randomBytes(16).toString('base64url')}$${randomBytes(32).toString('base64url')}`
}

/**
 * Users in PostgreSQL (SPEC §12). The hot path is one query per sign-in (a named,
 * prepared statement through the pool); a database that cannot be reached or does not
 * answer within `queryTimeoutMs` becomes {@link StoreUnavailableError}, which the core
 * answers with 503 `temporarily_unavailable` (token endpoint) or an error page (login).
 */
export class PostgresUsers implements UserService {
  readonly pool: pg.Pool
  readonly management: UserManagement
  private readonly q: string
  private readonly sql: Record<'byUsername' | 'byId' | 'byLink' | 'provision' | 'upgrade' | 'list', { name: string; text: string }>
  private readonly decoy: SecretVerifier
  /** For the "connection lost" / "connection back" log lines: one each, never one per retry (SPEC §13). */
  private reachable = true
  /**
   * Users whose password was just checked against an active row: the password grant asks
   * `isActive` right after `authenticate`, and that one question is answered from here
   * (one-shot, within {@link JUST_VERIFIED_MS}) so a sign-in costs one query, not two.
   */
  private readonly justVerified = new Map<string, { until: number; tenant: string | null }>()
  /** Statements sent to the database (tests and benchmarks check the hot path's count). */
  queryCount = 0

  constructor(private readonly options: PostgresUsersOptions, private readonly log: Logger) {
    this.pool = new pg.Pool({
      ...(options.connectionString !== undefined ? { connectionString: options.connectionString } : {}),
      max: options.pool.max,
      connectionTimeoutMillis: options.pool.connectionTimeoutMs,
      idleTimeoutMillis: options.pool.idleTimeoutMs,
      // The server cancels a slow statement; the client gives up on a silent server (a stalled network).
      statement_timeout: options.queryTimeoutMs,
      query_timeout: options.queryTimeoutMs + 250,
      application_name: 'grantd',
    })
    // An idle connection the server dropped must not crash the process; the next query reconnects.
    this.pool.on('error', (err) => this.lost(err))
    this.q = `"${options.schema}"`
    this.decoy = new SecretVerifier(decoyHash(options.hashCost))
    // Statement names are per connection; the schema is part of the text, so part of the name.
    const tag = createHash('sha256').update(options.schema).digest('hex').slice(0, 8)
    const s = this.q
    const columns = 'sub, tenant, username, claims, disabled'
    const statement = (name: string, text: string) => ({ name: `grantd-users-${tag}-${name}`, text })
    this.sql = {
      byUsername: statement('by-username', `SELECT ${columns}, password_hash FROM ${s}.users WHERE username = $1 AND ($2::text IS NULL OR tenant = $2) LIMIT 2`),
      byId: statement('by-id', `SELECT ${columns} FROM ${s}.users WHERE sub = $1`),
      byLink: statement('by-link', `SELECT u.sub, u.tenant, u.username, u.claims, u.disabled FROM ${s}.user_links l JOIN ${s}.users u ON u.sub = l.sub WHERE l.idp = $1 AND l.upstream_sub = $2`),
      // The link's primary key decides a race of first logins: the loser inserts nothing (the FK is deferred).
      provision: statement('provision', `WITH link AS (INSERT INTO ${s}.user_links (idp, upstream_sub, sub) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING sub)
        INSERT INTO ${s}.users (sub, tenant, claims) SELECT sub, $4, $5::jsonb FROM link RETURNING ${columns}`),
      // Only replaces the hash that was checked: a concurrent set-password wins.
      upgrade: statement('upgrade', `UPDATE ${s}.users SET password_hash = $3, updated_at = now() WHERE sub = $1 AND password_hash = $2`),
      list: statement('list', `SELECT u.sub, u.tenant, u.username, u.claims, u.disabled,
          COALESCE(json_agg(json_build_object('idp', l.idp, 'subject', l.upstream_sub) ORDER BY l.idp, l.upstream_sub) FILTER (WHERE l.idp IS NOT NULL), '[]'::json) AS links
        FROM ${s}.users u LEFT JOIN ${s}.user_links l ON l.sub = u.sub
        WHERE ($1::text IS NULL OR u.tenant = $1) AND ($2::text IS NULL OR u.sub = $2)
        GROUP BY u.sub ORDER BY u.tenant NULLS FIRST, u.username NULLS LAST, u.sub`),
    }
    this.management = new PostgresUserManagement(this)
  }

  /** Run a statement through the pool; an unreachable or slow database becomes StoreUnavailableError. */
  async query<R extends pg.QueryResultRow>(statement: { name?: string; text: string }, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    this.queryCount++
    try {
      const result = await this.pool.query<R>({ ...statement, values })
      this.back()
      return result
    } catch (err) {
      if (isUnavailable(err)) {
        this.lost(err)
        throw toUnavailable(err)
      }
      throw err
    }
  }

  private lost(err: unknown): void {
    if (!this.reachable) return
    this.reachable = false
    this.log.warn({ err: err instanceof Error ? err.message.split('\n')[0] : String(err), schema: this.options.schema }, 'users-postgres: lost the database connection')
  }

  private back(): void {
    if (this.reachable) return
    this.reachable = true
    this.log.info({ schema: this.options.schema }, 'users-postgres: database connection is back')
  }

  /* ------------------------------------------------------------ lifecycle */

  /** Refuse to serve on a schema older than this code needs (one line, SPEC §12). */
  async start(): Promise<void> {
    let version: number
    try {
      version = await schemaVersion({ query: (text: string, values?: unknown[]) => this.query({ text }, values ?? []) } as Pick<pg.ClientBase, 'query'>, this.q)
    } catch (err) {
      throw new Error(`users-postgres: cannot check the schema: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`)
    }
    if (version < REQUIRED_VERSION) {
      throw new Error(`users-postgres: schema "${this.options.schema}" is at version ${version} and this grantd needs version ${REQUIRED_VERSION}; run: grantd users migrate --config <file>`)
    }
  }

  async ping(): Promise<void> {
    await this.query({ text: 'SELECT 1' })
  }

  async migrate(): Promise<{ from: number; to: number }> {
    // A connection of its own, without the serving timeouts: a migration may rightly take longer than a sign-in.
    const client = new pg.Client({
      ...(this.options.connectionString !== undefined ? { connectionString: this.options.connectionString } : {}),
      connectionTimeoutMillis: this.options.pool.connectionTimeoutMs,
      application_name: 'grantd-migrate',
    })
    client.on('error', () => {})
    try {
      await client.connect()
    } catch (err) {
      await client.end().catch(() => {})
      throw new Error(`users-postgres: cannot reach PostgreSQL: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`)
    }
    try {
      return await migrate(client, this.options.schema, this.q)
    } finally {
      await client.end()
    }
  }

  async close(): Promise<void> {
    await this.pool.end()
  }

  /* ------------------------------------------------------------ sign-in */

  /** Rows for a username: at most two, enough to tell "exactly one" from "ambiguous". */
  async rowsFor(username: string, tenant: string | undefined): Promise<PasswordRow[]> {
    const key = normalizeUsername(username)
    if (key === '' || key.length > MAX_USERNAME || hasNul(key) || (tenant !== undefined && hasNul(tenant))) return []
    return (await this.query<PasswordRow>(this.sql.byUsername, [key, tenant ?? null])).rows
  }

  async authenticate({ username, password, context }: PasswordLogin): Promise<User | undefined> {
    // Without a tenant, a username that several tenants share is ambiguous: refuse rather than guess.
    const rows = await this.rowsFor(username, context.tenant)
    const row = rows.length === 1 ? rows[0]! : undefined
    const stored = row?.password_hash ?? undefined
    const params = stored !== undefined ? parseHashedSecret(stored) : undefined
    if (!row || stored === undefined || !params || password.length > MAX_PASSWORD) {
      await this.decoy.verify(password)
      return undefined
    }
    const ok = await new SecretVerifier(stored).verify(password)
    // Checked after the password, so a disabled user's answer takes as long as anyone's.
    if (!ok || row.disabled) return undefined
    if (params.ln < this.options.hashCost) await this.upgrade(row.sub, stored, password)
    this.remember(row)
    return toUser(row)
  }

  private remember(row: UserRow): void {
    const now = Date.now()
    // Bounded: entries nobody asks about (the login form never does) expire in insertion order.
    for (const [sub, entry] of this.justVerified) {
      if (entry.until >= now && this.justVerified.size < MAX_JUST_VERIFIED) break
      this.justVerified.delete(sub)
    }
    this.justVerified.delete(row.sub)
    this.justVerified.set(row.sub, { until: now + JUST_VERIFIED_MS, tenant: row.tenant })
  }

  /** Re-hash at the configured cost on a good login; a failure here never fails the sign-in. */
  private async upgrade(sub: string, old: string, password: string): Promise<void> {
    try {
      await this.query(this.sql.upgrade, [sub, old, await hashSecret(password, this.options.hashCost)])
    } catch (err) {
      this.log.warn({ sub, err: err instanceof Error ? err.message.split('\n')[0] : String(err) }, 'users-postgres: password hash upgrade failed')
    }
  }

  async resolveAccount({ username, context }: { username: string; context: AcrContext; client: Client }): Promise<string | undefined> {
    const rows = await this.rowsFor(username, context.tenant)
    return rows.length === 1 ? rows[0]!.sub : undefined
  }

  acceptsPasswordIdp(): boolean {
    return false
  }

  async authenticateExternal({ idp, subject, claims, context, provider }: ExternalLogin): Promise<User | undefined> {
    if (hasNul(idp) || hasNul(subject) || (context.tenant !== undefined && hasNul(context.tenant))) return undefined
    const found = (await this.query<UserRow>(this.sql.byLink, [idp, subject])).rows[0]
    if (found) return !found.disabled && fitsTenant(found.tenant, context) ? toUser(found) : undefined
    if (!provider.autoProvision) return undefined
    // One statement: link and user together. Of two racing first logins one inserts; the other finds its row.
    const made = (await this.query<UserRow>(this.sql.provision, [idp, subject, randomUUID(), context.tenant ?? null, JSON.stringify(storableClaims(standardClaims(claims)))])).rows[0]
    const row = made ?? (await this.query<UserRow>(this.sql.byLink, [idp, subject])).rows[0]
    return row && !row.disabled && fitsTenant(row.tenant, context) ? toUser(row) : undefined
  }

  async findById(sub: string, context: AcrContext): Promise<User | undefined> {
    if (hasNul(sub)) return undefined
    const row = (await this.query<UserRow>(this.sql.byId, [sub])).rows[0]
    return row && !row.disabled && fitsTenant(row.tenant, context) ? toUser(row) : undefined
  }

  async isActive(sub: string, context: AcrContext): Promise<boolean> {
    const verified = this.justVerified.get(sub)
    if (verified) {
      this.justVerified.delete(sub)
      if (verified.until >= Date.now()) return fitsTenant(verified.tenant, context)
    }
    return (await this.findById(sub, context)) !== undefined
  }

  /**
   * Every claim of the user: the stored `claims`, `preferred_username` (the username unless
   * set) and `tenant`. The core releases only what the granted scopes list (SPEC §11).
   */
  async claims(user: User, _scopes?: readonly string[]): Promise<JsonObject> {
    const out: JsonObject = { ...((user.claims ?? {}) as JsonObject) }
    if (out.preferred_username === undefined && typeof user.username === 'string') out.preferred_username = user.username
    if (out.tenant === undefined && typeof user.tenant === 'string') out.tenant = user.tenant
    return out
  }

  /* ------------------------------------------------------------ management (CLI) */

  /** The one user a selector names; a one-line Error otherwise. */
  async select(who: UserSelector): Promise<UserRow> {
    if ('sub' in who) {
      if (hasNul(who.sub)) throw new Error('no user has that sub')
      const row = (await this.query<UserRow>(this.sql.byId, [who.sub])).rows[0]
      if (!row) throw new Error(`no user has sub "${who.sub}"`)
      return row
    }
    const rows = await this.rowsFor(who.username, who.tenant)
    if (rows.length === 0) throw new Error(`no user named "${who.username}"${who.tenant !== undefined ? ` in tenant "${who.tenant}"` : ''}`)
    if (rows.length > 1) throw new Error(`more than one user is named "${who.username}": add --tenant, or use --sub`)
    return rows[0]!
  }

  async listRows(tenant: string | undefined, sub: string | undefined): Promise<ManagedUser[]> {
    const rows = (await this.query<UserRow & { links: Array<{ idp: string; subject: string }> }>(this.sql.list, [tenant ?? null, sub ?? null])).rows
    return rows.map((r) => ({
      sub: r.sub,
      ...(r.username !== null ? { username: r.username } : {}),
      ...(r.tenant !== null ? { tenant: r.tenant } : {}),
      disabled: r.disabled,
      claims: r.claims,
      links: r.links,
    }))
  }

  hashCost(): number {
    return this.options.hashCost
  }

  schemaName(): string {
    return this.q
  }
}

function checkPassword(password: string): void {
  if (password === '') throw new Error('the password is empty')
  if (password.length > MAX_PASSWORD) throw new Error(`the password is longer than ${MAX_PASSWORD} characters`)
}

function checkTenant(tenant: string | undefined): void {
  if (tenant !== undefined && (tenant === '' || tenant.length > MAX_TENANT)) throw new Error(`the tenant must be 1 to ${MAX_TENANT} characters`)
}

/** `grantd users …` on PostgreSQL: writes go straight to the tables, passwords only as `$scrypt$` hashes. */
class PostgresUserManagement implements UserManagement {
  constructor(private readonly users: PostgresUsers) {}

  migrate(): Promise<{ from: number; to: number }> {
    return this.users.migrate()
  }

  private async one(sub: string): Promise<ManagedUser> {
    const [user] = await this.users.listRows(undefined, sub)
    if (!user) throw new Error(`no user has sub "${sub}"`)
    return user
  }

  async add({ username, tenant, claims, password }: NewUser): Promise<ManagedUser> {
    const key = normalizeUsername(username)
    if (key === '' || key.length > MAX_USERNAME) throw new Error(`the username must be 1 to ${MAX_USERNAME} characters`)
    if (hasNul(key) || (tenant !== undefined && hasNul(tenant)) || JSON.stringify(claims ?? {}).includes('\\u0000')) throw new Error('the username, tenant and claims must not contain NUL characters')
    checkTenant(tenant)
    if (password !== undefined) checkPassword(password)
    const hash = password !== undefined ? await hashSecret(password, this.users.hashCost()) : null
    const sub = randomUUID()
    try {
      await this.users.query({ text: `INSERT INTO ${this.users.schemaName()}.users (sub, tenant, username, password_hash, claims) VALUES ($1, $2, $3, $4, $5::jsonb)` },
        [sub, tenant ?? null, key, hash, JSON.stringify(claims ?? {})])
    } catch (err) {
      if ((err as { code?: unknown }).code === '23505') throw new Error(`a user named "${key}" already exists ${tenant !== undefined ? `in tenant "${tenant}"` : 'without a tenant'}`)
      throw err
    }
    return this.one(sub)
  }

  async setPassword(who: UserSelector, password: string): Promise<ManagedUser> {
    checkPassword(password)
    const { sub } = await this.users.select(who)
    const hash = await hashSecret(password, this.users.hashCost())
    await this.users.query({ text: `UPDATE ${this.users.schemaName()}.users SET password_hash = $2, updated_at = now() WHERE sub = $1` }, [sub, hash])
    return this.one(sub)
  }

  async setDisabled(who: UserSelector, disabled: boolean): Promise<ManagedUser> {
    const { sub } = await this.users.select(who)
    await this.users.query({ text: `UPDATE ${this.users.schemaName()}.users SET disabled = $2, updated_at = now() WHERE sub = $1` }, [sub, disabled])
    return this.one(sub)
  }

  async link(who: UserSelector, idp: string, subject: string): Promise<ManagedUser> {
    if (idp === '' || subject === '' || idp.length > MAX_LINK || subject.length > MAX_LINK) throw new Error(`--idp and --subject must be 1 to ${MAX_LINK} characters`)
    if (hasNul(idp) || hasNul(subject)) throw new Error('--idp and --subject must not contain NUL characters')
    const { sub } = await this.users.select(who)
    const res = await this.users.query<{ sub: string }>({ text: `INSERT INTO ${this.users.schemaName()}.user_links (idp, upstream_sub, sub) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING sub` }, [idp, subject, sub])
    if (res.rowCount === 0) {
      const owner = (await this.users.query<{ sub: string }>({ text: `SELECT sub FROM ${this.users.schemaName()}.user_links WHERE idp = $1 AND upstream_sub = $2` }, [idp, subject])).rows[0]
      if (owner?.sub !== sub) throw new Error(`the ${idp} identity "${subject}" is already linked to another user (${owner?.sub ?? 'unknown'})`)
    }
    return this.one(sub)
  }

  list({ tenant }: { tenant?: string }): Promise<readonly ManagedUser[]> {
    return this.users.listRows(tenant, undefined)
  }
}
