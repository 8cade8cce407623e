import cluster, { type Worker } from 'node:cluster'
import type { ServerConfig } from '../config.js'
import { ConfigError } from '../errors.js'
import type { Logger } from '../interfaces.js'
import { createLogger } from './logger.js'
import { serveClusterMetrics } from './metrics.js'

/** Set on the first worker only: it prints the start-up hint for the whole group. */
export const HINT_ENV = 'GRANTD_WORKER_HINT'

/** Stores whose state lives in one process: several workers would not share codes or refresh tokens. */
const PER_PROCESS_STORES = ['@grantd/store-memory']

/** `--workers N`: a positive integer, or a one-line reason it is not. */
export function parseWorkerCount(text: string): number | string {
  const n = Number(text)
  if (!/^\d+$/.test(text) || !Number.isInteger(n) || n < 1 || n > 256) return `--workers: expected a number from 1 to 256, got "${text}"`
  return n
}

/** Why this config cannot run on `count` workers, or undefined when it can. */
export function refuseWorkers(config: ServerConfig, count: number): string | undefined {
  if (count > 1 && PER_PROCESS_STORES.includes(config.store.use)) {
    return `--workers ${count}: the store "${config.store.use}" keeps codes and tokens inside one process, so workers would not share them; ` +
      'use @grantd/store-redis or --workers 1'
  }
  return undefined
}

export interface WorkersOptions {
  readonly count: number
  readonly config: ServerConfig
  readonly log: Logger
  /** Called once, when every first-generation worker listens. */
  readonly onListening?: (address: { port: number; host: string }) => void
}

/**
 * The primary of `grantd start --workers N` (SPEC §13), on node:cluster: N workers
 * share one port, a worker that dies after it listened is replaced, SIGTERM/SIGINT
 * drain every worker (each bounded by `shutdown.timeoutSeconds`) and the primary exits 0
 * when all of them did. A worker that dies before it ever listened is a boot failure
 * (bad config, store down at start): the group stops instead of restarting it in a loop.
 */
export function runWorkers({ count, config, log, onListening }: WorkersOptions): void {
  // Workers run the same command line; cluster.isPrimary is what tells them apart.
  const live = new Map<Worker, { listened: boolean }>()
  let announced = false
  let stopping = false
  let failed = false
  let lastDeath = 0

  const fork = (hint: boolean): void => {
    const worker = cluster.fork(hint ? { [HINT_ENV]: '1' } : {})
    live.set(worker, { listened: false })
    worker.once('online', () => log.info({ worker: worker.id, pid: worker.process.pid }, 'worker started'))
  }

  cluster.on('listening', (worker, address) => {
    const state = live.get(worker)
    if (state && !state.listened) {
      state.listened = true
      if (announced) log.info({ worker: worker.id, pid: worker.process.pid }, 'worker listening')
    }
    if (!announced && [...live.values()].every((s) => s.listened) && live.size === count) {
      announced = true
      log.info({ workers: count, port: address.port, pid: process.pid }, 'grantd workers listening')
      onListening?.({ port: address.port, host: address.address ?? config.host })
    }
  })

  cluster.on('exit', (worker, code, signal) => {
    const state = live.get(worker)
    live.delete(worker)
    if (stopping) {
      // A replacement still booting when the signal came dies of it before its handler exists: that is no failure.
      if (code !== 0 && !(signal === 'SIGTERM' && !state?.listened)) failed = true
      if (live.size === 0) finish()
      return
    }
    if (!state?.listened) {
      log.error({ worker: worker.id, pid: worker.process.pid, exitCode: code, signal }, 'worker exited before it listened: stopping')
      failed = true
      stop('worker boot failure')
      return
    }
    log.warn({ worker: worker.id, pid: worker.process.pid, exitCode: code, signal }, 'worker died: starting a replacement')
    // A worker that keeps dying right after start is restarted at most once a second.
    const wait = Date.now() - lastDeath < 1000 ? 1000 : 0
    lastDeath = Date.now()
    setTimeout(() => { if (!stopping) fork(false) }, wait)
  })

  const finish = (): void => {
    log.info({ failed }, 'stopped')
    setImmediate(() => process.exit(failed ? 1 : 0))
  }

  const stop = (reason: string): void => {
    if (stopping) return
    stopping = true
    log.info({ signal: reason, workers: live.size }, 'shutting down: draining workers')
    if (live.size === 0) return finish()
    for (const worker of live.keys()) worker.process.kill('SIGTERM')
    // Each worker cuts its own requests at the timeout; this only guards against a hung one.
    const timeout = (config.shutdown?.timeoutSeconds ?? 10) * 1000 + 5000
    setTimeout(() => {
      for (const worker of live.keys()) {
        log.warn({ worker: worker.id, pid: worker.process.pid }, 'worker did not stop in time: killing it')
        worker.process.kill('SIGKILL')
      }
      failed = true
    }, timeout).unref()
  }

  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  // SIGHUP reloads (SPEC §13): each worker re-reads the config file itself and logs the outcome;
  // the primary, which serves nothing, only passes the signal on (Node's default would exit).
  process.on('SIGHUP', () => {
    if (stopping) return
    log.info({ signal: 'SIGHUP', workers: live.size }, 'reloading: signalling every worker')
    for (const worker of live.keys()) worker.process.kill('SIGHUP')
  })
  for (let i = 0; i < count; i++) fork(i === 0)
  // One scrape of the primary answers the sum over the workers (prom-client cluster aggregation).
  if (config.metrics) {
    serveClusterMetrics(config.metrics.port, config.metrics.host, log).catch((err: unknown) => {
      log.error({ err: (err as Error).message }, 'cannot listen for metrics: stopping')
      failed = true
      stop('metrics listener failure')
    })
  }
}

/** Whether this process should print the start-up hint (a lone server, or the first worker). */
export function printsHint(): boolean {
  return cluster.isPrimary || process.env[HINT_ENV] === '1'
}

/**
 * `grantd start --workers N`: in the primary, validate and run the workers and return
 * true; in a worker (same command line) return false so it starts a server as usual.
 */
export function startWorkers(workers: string | undefined, config: ServerConfig): boolean {
  if (workers === undefined || !cluster.isPrimary) return false
  const count = parseWorkerCount(workers)
  if (typeof count === 'string') throw new ConfigError(count)
  const refused = refuseWorkers(config, count)
  if (refused) throw new ConfigError(refused)
  runWorkers({ count, config, log: createLogger(config.log.level) })
  return true
}
