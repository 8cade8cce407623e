/** The plugin's options, validated; every error names its key path. */
export interface PostgresUsersOptions {
  /** `postgres://…`; absent: node-postgres reads the PG* environment (PGHOST, PGUSER, PGDATABASE…). */
  readonly connectionString?: string
  /** Where grantd's tables live (default `grantd`). */
  readonly schema: string
  readonly pool: {
    /** Connections at most (default 10). */
    readonly max: number
    /** How long to wait for a connection before the request answers 503 (default 2000 ms). */
    readonly connectionTimeoutMs: number
    /** Idle connections close after this (default 30000 ms). */
    readonly idleTimeoutMs: number
  }
  /** One query's limit, enforced by the server (`statement_timeout`) and the client (default 2000 ms). */
  readonly queryTimeoutMs: number
  /** scrypt cost (log2 N) for new hashes; stored hashes below it are upgraded on the next good login (default 15). */
  readonly hashCost: number
}

const KEYS = ['connectionString', 'schema', 'pool', 'queryTimeoutMs', 'hashCost']
const POOL_KEYS = ['max', 'connectionTimeoutMs', 'idleTimeoutMs']
/** A plain identifier: the schema name is interpolated (quoted) into SQL, so nothing else is accepted. */
const SCHEMA = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v)

function record(v: unknown, at: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${at}: expected object, got ${typeName(v)}`)
  return v as Record<string, unknown>
}

function integer(v: unknown, at: string, min: number, max: number, fallback: number): number {
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new Error(`${at}: expected integer, got ${typeName(v)}`)
  if (v < min || v > max) throw new Error(`${at}: must be between ${min} and ${max}`)
  return v
}

export function parseOptions(raw: unknown): PostgresUsersOptions {
  const o = record(raw ?? {}, '(options)')
  for (const k of Object.keys(o)) if (!KEYS.includes(k)) throw new Error(`${k}: unknown key`)
  if (o.connectionString !== undefined && (typeof o.connectionString !== 'string' || o.connectionString === '')) {
    throw new Error(`connectionString: expected a non-empty string, got ${typeName(o.connectionString)}`)
  }
  const schema = o.schema ?? 'grantd'
  if (typeof schema !== 'string') throw new Error(`schema: expected string, got ${typeName(schema)}`)
  if (!SCHEMA.test(schema)) throw new Error('schema: expected a plain identifier (letters, digits, _; at most 63)')
  const pool = record(o.pool ?? {}, 'pool')
  for (const k of Object.keys(pool)) if (!POOL_KEYS.includes(k)) throw new Error(`pool.${k}: unknown key`)
  return {
    ...(typeof o.connectionString === 'string' ? { connectionString: o.connectionString } : {}),
    schema,
    pool: {
      max: integer(pool.max, 'pool.max', 1, 1000, 10),
      connectionTimeoutMs: integer(pool.connectionTimeoutMs, 'pool.connectionTimeoutMs', 100, 600_000, 2000),
      idleTimeoutMs: integer(pool.idleTimeoutMs, 'pool.idleTimeoutMs', 0, 3_600_000, 30_000),
    },
    queryTimeoutMs: integer(o.queryTimeoutMs, 'queryTimeoutMs', 50, 600_000, 2000),
    // core/src/clients/client-secret.ts accepts ln 10..20.
    hashCost: integer(o.hashCost, 'hashCost', 10, 20, 15),
  }
}
