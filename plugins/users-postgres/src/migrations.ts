import type { ClientBase } from 'pg'

/**
 * Versioned schema migrations, applied in order, each in its own transaction under an
 * advisory lock (two `grantd users migrate` runs at once apply each step once). Never edit
 * a released step: add the next one. `REQUIRED_VERSION` is what this code reads and writes;
 * the server refuses to start on an older schema.
 */
export interface Migration {
  readonly version: number
  readonly description: string
  /** SQL with `{schema}` standing for the quoted schema name. */
  readonly sql: string
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'users and external links',
    sql: `
      CREATE TABLE {schema}.users (
        sub           text PRIMARY KEY,
        tenant        text CHECK (tenant IS NULL OR tenant <> ''),
        -- NFKC + case-folded (username.ts); NULL for users created by autoProvision
        username      text CHECK (username IS NULL OR username <> ''),
        password_hash text CHECK (password_hash IS NULL OR password_hash LIKE '$scrypt$%'),
        claims        jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(claims) = 'object'),
        disabled      boolean NOT NULL DEFAULT false,
        created_at    timestamptz NOT NULL DEFAULT now(),
        updated_at    timestamptz NOT NULL DEFAULT now()
      );
      -- Unique per tenant; users without a tenant share the '' slot.
      CREATE UNIQUE INDEX users_tenant_username ON {schema}.users (COALESCE(tenant, ''), username);
      -- Sign-in without a tenant looks the username up across tenants.
      CREATE INDEX users_username ON {schema}.users (username);
      CREATE TABLE {schema}.user_links (
        idp          text NOT NULL,
        upstream_sub text NOT NULL,
        -- Deferred: autoProvision writes the link first (its unique key decides a race), then the user.
        sub          text NOT NULL REFERENCES {schema}.users (sub) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
        created_at   timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (idp, upstream_sub)
      );
      CREATE INDEX user_links_sub ON {schema}.user_links (sub);
    `,
  },
]

export const REQUIRED_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version

/** The schema's version: 0 when grantd's tables are not there at all. */
export async function schemaVersion(client: Pick<ClientBase, 'query'>, quoted: string): Promise<number> {
  const exists = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${quoted}.schema_migrations`])
  if (exists.rows[0]?.t == null) return 0
  const res = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${quoted}.schema_migrations`)
  return res.rows[0]?.v ?? 0
}

/** Apply every missing step; returns the version before and after. */
export async function migrate(client: ClientBase, schema: string, quoted: string): Promise<{ from: number; to: number }> {
  await client.query('BEGIN')
  try {
    // One migrator per schema at a time; the lock ends with the transaction.
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`grantd-migrate:${schema}`])
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`)
    await client.query(`CREATE TABLE IF NOT EXISTS ${quoted}.schema_migrations (
      version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
    const from = await schemaVersion(client, quoted)
    for (const step of MIGRATIONS) {
      if (step.version <= from) continue
      await client.query(step.sql.replaceAll('{schema}', quoted))
      await client.query(`INSERT INTO ${quoted}.schema_migrations (version, description) VALUES ($1, $2)`, [step.version, step.description])
    }
    await client.query('COMMIT')
    return { from, to: Math.max(from, REQUIRED_VERSION) }
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  }
}
