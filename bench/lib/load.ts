import { fileURLToPath } from 'node:url'
import { runJson } from './processes.js'

export interface LoadSpec {
  url: string
  method: 'GET' | 'POST'
  headers: Record<string, string>
  body?: string
  connections: number
  durationSeconds: number
  /** Stop after this many requests instead of after durationSeconds (autocannon `amount`). */
  amount?: number
  /** Seconds before a request counts as a timeout (autocannon default 10). */
  timeoutSeconds?: number
}

export interface LoadResult {
  requestsPerSecond: number
  requestsTotal: number
  latencyMs: { p50: number; p99: number; mean: number; max: number }
  status2xx: number
  non2xx: number
  errors: number
  timeouts: number
  durationSeconds: number
}

const WORKER = fileURLToPath(new URL('./autocannon-worker.ts', import.meta.url))

/** One autocannon run in a separate process pinned to `cpu` (the server sits on another). */
export function runLoad(spec: LoadSpec, cpu: number | undefined): Promise<LoadResult> {
  return runJson<LoadResult>(['--import=tsx', WORKER], cpu, spec)
}

/** A run is only a figure when every answer was a 2xx and nothing failed or timed out. */
export function loadProblems(result: LoadResult): string | undefined {
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
    return `${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`
  }
  if (result.requestsTotal === 0) return 'no requests completed'
  return undefined
}
