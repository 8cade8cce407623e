/**
 * PostgreSQL for tests (SPEC §12): DATABASE_URL, else postgres://postgres@127.0.0.1:5432/test,
 * else a private cluster (initdb + pg_ctl from /usr/lib/postgresql/NN/bin) on a free port.
 * With none: fail under CI=true, else skip loudly. Every test uses its own schema and drops it.
 *
 * Fault tests never touch the shared server: they start a private cluster of their own
 * ({@link startPrivatePostgres}) and stop and restart that one.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { freePort } from './server.js'

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test'

export async function answers(url: string, timeoutMs = 1500): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => {})
  }
}

/** The newest /usr/lib/postgresql/NN/bin with initdb and pg_ctl, if any. */
export function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))
  for (const v of versions) {
    const bin = join(root, v, 'bin')
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl'))) return bin
  }
  return undefined
}

export interface PrivatePostgres {
  url: string
  port: number
  /** Stop the server at once (a crash, as far as clients can tell). */
  stop(): Promise<void>
  /** Start it again on the same port and data folder. */
  start(): Promise<void>
  /** SIGSTOP the server and its backends: connections stay open and nothing answers (a hung database). */
  pause(): void
  /** SIGCONT what {@link pause} stopped. */
  resume(): void
  /** Stop and delete the data folder. */
  destroy(): Promise<void>
}

/** PostgreSQL refuses to run as root: run its tools as the `postgres` account then. */
function asPostgresUser(cmd: string, args: string[]): { status: number | null; output: string } {
  const root = process.getuid?.() === 0
  const r = root ? spawnSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8' }) : spawnSync(cmd, args, { encoding: 'utf8' })
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` }
}

/** A cluster of the test's own on a free loopback port, with trust auth for user `postgres`. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBin()
  if (!bin) throw new Error('no PostgreSQL binaries under /usr/lib/postgresql/*/bin')
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'grantd-pg-'))
  const data = join(dir, 'data')
  if (process.getuid?.() === 0) {
    const pw = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' })
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' })
    chownSync(dir, Number(pw.stdout.trim()), Number(gid.stdout.trim()))
  }
  chmodSync(dir, 0o700)
  const init = asPostgresUser(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'])
  if (init.status !== 0) throw new Error(`initdb failed: ${init.output}`)
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  const start = async () => {
    const r = asPostgresUser(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '30', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start'])
    if (r.status !== 0) throw new Error(`pg_ctl start failed: ${r.output}`)
    const deadline = Date.now() + 15_000
    while (!(await answers(url, 500))) {
      if (Date.now() > deadline) throw new Error('private PostgreSQL did not answer')
      await new Promise((res) => setTimeout(res, 100))
    }
  }
  const stop = async () => {
    asPostgresUser(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'])
  }
  let paused: number[] = []
  await start()
  return {
    url,
    port,
    start,
    stop,
    pause() {
      // Only this cluster's own processes: the postmaster named in its pid file and its children.
      const postmaster = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0])
      const children = spawnSync('ps', ['-o', 'pid=', '--ppid', String(postmaster)], { encoding: 'utf8' }).stdout.split('\n').map((l) => Number(l.trim())).filter((n) => n > 0)
      paused = [postmaster, ...children]
      for (const pid of paused) process.kill(pid, 'SIGSTOP')
    },
    resume() {
      for (const pid of paused) {
        try { process.kill(pid, 'SIGCONT') } catch { /* already gone */ }
      }
      paused = []
    },
    async destroy() {
      if (paused.length > 0) for (const pid of paused) { try { process.kill(pid, 'SIGCONT') } catch { /* gone */ } }
      await stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export interface TestPostgres {
  url: string
  /** Present when this helper started its own cluster. */
  private?: PrivatePostgres
  stop(): Promise<void>
}

/**
 * Find a PostgreSQL for the suite. Returns undefined (after a loud notice) when none is
 * available outside CI; throws under CI=true so a missing PostgreSQL can never pass silently.
 */
export async function findPostgres(): Promise<TestPostgres | undefined> {
  const candidates = [process.env.DATABASE_URL, DEFAULT_DATABASE_URL].filter((u): u is string => !!u)
  for (const url of candidates) if (await answers(url)) return { url, stop: async () => {} }
  if (postgresBin()) {
    const own = await startPrivatePostgres()
    return { url: own.url, private: own, stop: () => own.destroy() }
  }
  const message = 'NO POSTGRESQL: set DATABASE_URL, run one on 127.0.0.1:5432 (db test, user postgres), or install postgresql'
  if (process.env.CI === 'true') throw new Error(message)
  process.stderr.write(`\n!!!!! ${message} — PostgreSQL-backed tests are SKIPPED !!!!!\n\n`)
  return undefined
}

/** A schema name nobody else uses (the shared server has other engineers' and tests' schemas). */
export function uniqueSchema(label = 't'): string {
  return `grantd_${label}_${process.pid}_${randomBytes(4).toString('hex')}`
}

/** Drop a test's schema and everything in it. */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  client.on('error', () => {})
  await client.connect()
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  } finally {
    await client.end()
  }
}
