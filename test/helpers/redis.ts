/**
 * Redis for tests (SPEC §2): REDIS_URL, else redis://127.0.0.1:6379, else a
 * `redis-server` from PATH on a free port. With none: fail under CI=true, else skip loudly.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { connect } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './server.js'

function answers(url: string, timeoutMs = 1000): Promise<boolean> {
  const u = new URL(url)
  return new Promise((resolve) => {
    const sock = connect({ host: u.hostname, port: Number(u.port || 6379) })
    const done = (ok: boolean) => { sock.destroy(); resolve(ok) }
    sock.setTimeout(timeoutMs, () => done(false))
    sock.once('error', () => done(false))
    sock.once('connect', () => sock.write('PING\r\n'))
    sock.once('data', (d) => done(d.toString().startsWith('+PONG') || d.toString().startsWith('-NOAUTH')))
  })
}

export interface TestRedis {
  url: string
  /** Present when this helper started its own redis-server. */
  proc?: ChildProcess
  stop(): Promise<void>
}

/** A redis-server of the test's own on a free loopback port (for fault tests). */
export async function spawnRedis(port?: number, extraArgs: string[] = []): Promise<TestRedis> {
  const p = port ?? (await freePort())
  const dir = mkdtempSync(join(tmpdir(), 'grantd-redis-'))
  const proc = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs], { stdio: 'ignore' })
  const url = `redis://127.0.0.1:${p}`
  const deadline = Date.now() + 10_000
  while (!(await answers(url, 300))) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server on port ${p} did not start`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    url,
    proc,
    async stop() {
      if (proc.exitCode === null) {
        proc.kill('SIGKILL')
        await new Promise((r) => proc.once('exit', r))
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export function hasRedisServerBinary(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
}

/**
 * Find a Redis for the suite. Returns undefined (after a loud notice) when none is
 * available outside CI; throws under CI=true so a missing Redis can never pass silently.
 */
export async function findRedis(): Promise<TestRedis | undefined> {
  const candidates = [process.env.REDIS_URL, 'redis://127.0.0.1:6379'].filter((u): u is string => !!u)
  for (const url of candidates) if (await answers(url)) return { url, stop: async () => {} }
  if (hasRedisServerBinary()) return spawnRedis()
  const message = 'NO REDIS: set REDIS_URL, run one on 127.0.0.1:6379, or put redis-server on PATH'
  if (process.env.CI === 'true') throw new Error(message)
  process.stderr.write(`\n!!!!! ${message} — Redis-backed tests are SKIPPED !!!!!\n\n`)
  return undefined
}
