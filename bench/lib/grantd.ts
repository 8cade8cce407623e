import { spawnSync } from 'node:child_process'
import { existsSync, statSync, readdirSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startServer, type ServerProcess } from './processes.js'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const CLI = join(ROOT, 'core', 'bin', 'grantd.js')

/**
 * The CLI runs the compiled core (core/dist). A benchmark of stale JavaScript measures
 * the wrong code, so say so loudly. TypeScript's own dry build is the judge (a touched
 * but unchanged file is not stale); file times are the fallback.
 */
export function staleBuildWarning(): string | undefined {
  const src = join(ROOT, 'core', 'src')
  const dist = join(ROOT, 'core', 'dist')
  if (!existsSync(join(dist, 'index.js'))) return 'core/dist is missing: run `npm run build` first'
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
  if (existsSync(tsc)) {
    const dry = spawnSync(process.execPath, [tsc, '-b', '--dry', join(ROOT, 'core')], { encoding: 'utf8' })
    if (dry.status === 0) return /would build/.test(dry.stdout) ? 'core/src has changed since the last build: run `npm run build` to measure the current code' : undefined
  }
  const newer = (readdirSync(src, { recursive: true }) as string[]).filter((f) => {
    if (!f.endsWith('.ts') || f.endsWith('.d.ts')) return false
    const built = join(dist, f.replace(/\.ts$/, '.js'))
    return !existsSync(built) || statSync(join(src, f)).mtimeMs > statSync(built).mtimeMs
  })
  return newer.length > 0 ? `core/src is newer than core/dist (${newer.join(', ')}): run \`npm run build\` to measure the current code` : undefined
}

export interface GrantdBenchConfig {
  port: number
  jwk: Record<string, unknown>
  logLevel: 'silent' | 'warn' | 'info'
  /** Turn metrics on, on this port (SPEC §13). */
  metricsPort?: number
}

/** Write a client_credentials-only config (one ES256 key, one confidential client) to a temp folder. */
export async function writeGrantdConfig(options: GrantdBenchConfig): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'grantd-bench-'))
  await writeFile(join(dir, 'signing.json'), JSON.stringify({ keys: [options.jwk] }), { mode: 0o600 })
  const config = {
    issuer: `http://127.0.0.1:${options.port}`,
    port: options.port,
    host: '127.0.0.1',
    keys: { file: './signing.json' },
    tokens: { accessTokenTtl: 300 },
    log: { level: options.logLevel },
    ...(options.metricsPort !== undefined ? { metrics: { port: options.metricsPort, host: '127.0.0.1' } } : {}),
    plugins: ['@grantd/grant-client-credentials'],
    clients: [{ client_id: 'svc', client_secret: 'svc-secret', token_endpoint_auth_method: 'client_secret_basic', grant_types: ['client_credentials'], scope: 'api' }],
  }
  const file = join(dir, 'grantd.json')
  await writeFile(file, JSON.stringify(config, null, 2))
  return file
}

/** `grantd start --config F` as a child process, the way production runs it. */
export function startGrantd(options: { name: string; cli?: string; config: string; port: number; cpu?: number; stdout: 'capture' | 'discard'; extraNodeArgs?: string[] }): Promise<ServerProcess> {
  return startServer({
    name: options.name,
    nodeArgs: [...(options.extraNodeArgs ?? []), options.cli ?? CLI, 'start', '--config', options.config, '--port', String(options.port)],
    port: options.port,
    ...(options.cpu !== undefined ? { cpu: options.cpu } : {}),
    stdout: options.stdout,
    readyPath: '/healthz',
    cwd: ROOT,
  })
}
