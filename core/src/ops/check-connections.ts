import { ConfigError } from '../errors.js'
import type { Store, UserService } from '../interfaces.js'

const CHECK_TIMEOUT_MS = 5000

/** A sub no user has: the probe asks the user service's backend something harmless. */
const PROBE_SUB = 'grantd-check-probe'

function bounded<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms) }),
  ]).finally(() => clearTimeout(timer))
}

function reason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  return message.split('\n')[0]!.replace(/^redis: /, '')
}

/**
 * `grantd check` without `--offline` (SPEC §13): talk to the store and the user service
 * once each, so "config ok" also means "can serve". Returns one line per connection;
 * throws a one-line ConfigError naming the one that cannot be reached.
 */
export async function checkConnections(store: Store, users: UserService, usersName: string, timeoutMs = CHECK_TIMEOUT_MS): Promise<string[]> {
  const lines: string[] = []
  let started = performance.now()
  try {
    await bounded('store', store.ping(), timeoutMs)
  } catch (err) {
    throw new ConfigError(`store ${store.name}: cannot connect (${reason(err)})`)
  }
  lines.push(`store: ${store.name} answered in ${Math.round(performance.now() - started)} ms`)
  started = performance.now()
  try {
    if (users.ping) await bounded('users', users.ping(), timeoutMs)
    else await bounded('users', users.findById(PROBE_SUB, { raw: [] }), timeoutMs)
  } catch (err) {
    throw new ConfigError(`users ${usersName}: cannot connect (${reason(err)})`)
  }
  lines.push(`users: ${usersName} answered in ${Math.round(performance.now() - started)} ms`)
  return lines
}
