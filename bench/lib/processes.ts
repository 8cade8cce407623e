import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { hasTaskset } from './machine.js'

/** The command line that runs `cmd` on one CPU when taskset exists, else unpinned. */
export function pinned(cpu: number | undefined, cmd: string, args: readonly string[]): [string, string[]] {
  if (cpu === undefined || !hasTaskset()) return [cmd, [...args]]
  return ['taskset', ['-c', String(cpu), cmd, ...args]]
}

export async function freePort(): Promise<number> {
  const srv = createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const { port } = srv.address() as { port: number }
  await new Promise<void>((resolve) => srv.close(() => resolve()))
  return port
}

export interface ServerProcess {
  name: string
  url: string
  proc: ChildProcess
  /** stderr (and stdout unless discarded), for error messages. */
  output(): string
  stop(): Promise<void>
}

export interface StartOptions {
  name: string
  /** Arguments to `node` (script and its flags). */
  nodeArgs: readonly string[]
  port: number
  cpu?: number
  env?: Record<string, string>
  /** `discard`: stdout goes to /dev/null, as in production where a collector reads the lines. */
  stdout?: 'capture' | 'discard'
  /** GET path that answers 2xx once the server is up. */
  readyPath: string
  cwd?: string
}

/** Spawn a server as its own process, optionally pinned to one CPU, and wait until it answers. */
export async function startServer(options: StartOptions): Promise<ServerProcess> {
  const [cmd, args] = pinned(options.cpu, process.execPath, options.nodeArgs)
  const stdio: StdioOptions = ['ignore', options.stdout === 'discard' ? 'ignore' : 'pipe', 'pipe']
  const proc = spawn(cmd, args, { env: { ...process.env, ...options.env }, stdio, ...(options.cwd ? { cwd: options.cwd } : {}) })
  let out = ''
  const keep = (d: Buffer): void => { out = (out + d.toString()).slice(-20_000) }
  proc.stdout?.on('data', keep)
  proc.stderr?.on('data', keep)
  const url = `http://127.0.0.1:${options.port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${options.name} exited ${proc.exitCode}: ${out}`)
    try {
      const res = await fetch(url + options.readyPath)
      await res.arrayBuffer()
      if (res.ok) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL')
      throw new Error(`${options.name} did not answer ${options.readyPath} within 30 s: ${out}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    name: options.name,
    url,
    proc,
    output: () => out,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      const exited = once(proc, 'exit')
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    },
  }
}

/** Run a node script to completion (optionally pinned) and parse the JSON it prints last. */
export async function runJson<T>(nodeArgs: readonly string[], cpu: number | undefined, input?: unknown): Promise<T> {
  const [cmd, args] = pinned(cpu, process.execPath, nodeArgs)
  const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  proc.stdout!.on('data', (d: Buffer) => { stdout += d.toString() })
  proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  proc.stdin!.end(input === undefined ? '' : JSON.stringify(input))
  const [code] = (await once(proc, 'exit')) as [number | null]
  if (code !== 0) throw new Error(`${nodeArgs.join(' ')} exited ${code}: ${stderr}`)
  const last = stdout.trim().split('\n').pop() ?? ''
  return JSON.parse(last) as T
}

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat; 100 on every mainstream Linux. */
const CLOCK_TICKS_PER_SECOND = 100

/**
 * CPU time a process has used so far (all threads, user + system), in milliseconds, or
 * undefined where /proc does not exist. CPU time per request is less sensitive to other
 * work on the machine than requests per second. (taskset execs the command, so the
 * spawned pid is the server's.)
 */
export function cpuTimeMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name, which may itself contain spaces: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND
  } catch {
    return undefined
  }
}
