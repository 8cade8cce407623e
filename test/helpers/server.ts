/**
 * Test helpers: start a real grantd on a free loopback port and talk HTTP to it.
 * Plugins, their tests and examples use these (see docs/plugins.md).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer as createNetServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import { createServer, validateConfig, type GrantdServer, type KeySet, type Logger } from '@grantd/core'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const CLI = join(ROOT, 'core', 'bin', 'grantd.js')

/** A logger that keeps lines in memory (tests assert on logs, e.g. that no secret leaks). */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = []
  const write = (level: string) => (obj: Record<string, unknown>, msg?: string) => { lines.push(JSON.stringify({ level, ...obj, msg })) }
  return { lines, info: write('info'), warn: write('warn'), error: write('error'), debug: write('debug') }
}

export interface RunningServer {
  server: GrantdServer
  /** Base URL the server listens on, e.g. http://127.0.0.1:41234 */
  url: string
  port: number
  log: Logger & { lines: string[] }
  close(): Promise<void>
}

/**
 * Start grantd in this process from a config object (validated exactly like a file).
 * `baseDir` is where relative plugin paths resolve (default: the repo root).
 */
export async function startServer(config: Record<string, unknown>, options: { baseDir?: string; keys?: KeySet; host?: string; port?: number } = {}): Promise<RunningServer> {
  const validated = validateConfig({ port: 0, ...config }, options.baseDir ?? ROOT)
  const log = memoryLogger()
  const server = await createServer(validated, { log, ...(options.keys ? { keys: options.keys } : {}) })
  const bound = await server.listen(options.port ?? 0, options.host ?? '127.0.0.1')
  return { server, url: bound.url, port: bound.port, log, close: () => server.close({ timeoutMs: 2000 }) }
}

/** A free TCP port on loopback (for processes that need a port known in advance). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const srv = createNetServer()
  srv.listen(0, host)
  await once(srv, 'listening')
  const { port } = srv.address() as { port: number }
  await new Promise<void>((r) => srv.close(() => r()))
  return port
}

export interface ChildServer {
  url: string
  port: number
  proc: ChildProcess
  output(): string
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/** Start `grantd start --config FILE` as a child process on a free port and wait for it. */
export async function startCli(configFile: string, options: { env?: Record<string, string>; port?: number; args?: string[] } = {}): Promise<ChildServer> {
  const port = options.port ?? (await freePort())
  const proc = spawn(process.execPath, [CLI, 'start', '--config', configFile, '--port', String(port), ...(options.args ?? [])], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString() })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 15_000
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`grantd exited ${proc.exitCode}: ${out}`)
    try {
      const res = await fetch(`${url}/healthz`)
      if (res.ok) break
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL')
      throw new Error(`grantd did not start: ${out}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    url,
    port,
    proc,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null) return proc.exitCode
      proc.kill(signal)
      const [code] = (await once(proc, 'exit')) as [number | null]
      return code
    },
  }
}

/** POST a form to the server; returns status, headers and parsed JSON (or text). */
export async function postForm(url: string, form: Record<string, string> | string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; json: Record<string, unknown>; text: string }> {
  const body = typeof form === 'string' ? form : new URLSearchParams(form).toString()
  const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } })
  const text = await res.text()
  let json: Record<string, unknown> = {}
  try { json = JSON.parse(text) as Record<string, unknown> } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, json, text }
}

/** HTTP Basic per RFC 6749 §2.3.1: form-urlencode each half, then base64. */
export function basic(id: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+')
  return 'Basic ' + Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')
}
