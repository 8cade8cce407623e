/** Shared by the users-postgres tests: a migrated schema of the test's own, with users in it. */
import { PostgresUsers, parsePostgresUsersOptions } from '@grantd/users-postgres'
import { dropSchema, uniqueSchema } from '../helpers/postgres.js'
import { memoryLogger } from '../helpers/server.js'
import { WEB_REDIRECT } from '../authorization-code/flow.js'

export interface SeedUser {
  username: string
  password?: string
  tenant?: string
  claims?: Record<string, string | boolean | string[]>
}

export interface Seeded {
  schema: string
  /** A service on the same schema, for management calls and direct checks. */
  admin: PostgresUsers
  subs: Map<string, string>
  drop(): Promise<void>
}

export async function seed(url: string, label: string, users: SeedUser[], options: Record<string, unknown> = {}): Promise<Seeded> {
  const schema = uniqueSchema(label)
  const admin = new PostgresUsers(parsePostgresUsersOptions({ connectionString: url, schema, hashCost: 12, ...options }), memoryLogger())
  await admin.management.migrate!()
  const subs = new Map<string, string>()
  for (const u of users) {
    const made = await admin.management.add({ username: u.username, ...(u.tenant ? { tenant: u.tenant } : {}), ...(u.claims ? { claims: u.claims } : {}), ...(u.password ? { password: u.password } : {}) })
    subs.set(`${u.tenant ?? ''}/${u.username}`, made.sub)
  }
  return {
    schema,
    admin,
    subs,
    async drop() {
      await admin.close()
      await dropSchema(url, schema)
    },
  }
}

/** A server config with users-postgres, the code, password and refresh grants, tenants. */
export function serverConfig(url: string, schema: string, options: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    issuer: 'http://127.0.0.1:1',
    cookies: { keys: ['test-cookie-key-0123456789abcdef'] },
    users: { use: '@grantd/users-postgres', options: { connectionString: url, schema, hashCost: 12, ...options } },
    plugins: ['@grantd/grant-authorization-code', '@grantd/grant-password', '@grantd/grant-refresh-token', '@grantd/acr-tenant'],
    clients: [
      { client_id: 'web', client_secret: 'web-secret', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [WEB_REDIRECT], scope: 'openid profile email offline_access api', require_pkce: true },
      { client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password', 'refresh_token'], scope: 'openid profile email offline_access api' },
    ],
  }
}
