import { ClientRegistry } from '../clients/clients.js'
import type { PluginRef, ServerConfig } from '../config.js'
import { ConfigError } from '../errors.js'
import { KeySet } from '../tokens/keys.js'
import type { PluginRegistry } from './plugin-loader.js'

/** Everything a reload switches to, built and checked before anything changes. */
export interface PreparedReload {
  readonly clients: ClientRegistry
  /** The key set to use: the key file's new one, or the running one. */
  readonly keys: KeySet
  /** Plugins' switch-over steps (PluginHost.onReload), run together at commit. */
  readonly commits: ReadonlyArray<() => void>
  /** Changed settings this reload does not apply (they need a restart). */
  readonly restartNeeded: string[]
  /** The config as it will be running: `next`, with the kept settings of the old one. */
  readonly config: ServerConfig
}

/** Settings read once at start (listeners, store connection, cookie and token settings baked into plugins). */
const RESTART_ONLY = ['issuer', 'port', 'host', 'proxy', 'tokens', 'cookies', 'throttle', 'log', 'store', 'scopes', 'resources', 'metrics', 'shutdown'] as const

const refs = (c: ServerConfig): PluginRef[] => [c.store, ...(c.users ? [c.users] : []), ...c.plugins]
const plain = (_: string, v: unknown): unknown => (v instanceof Map ? [...v.entries()] : v instanceof Set ? [...v] : v)
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a, plain) === JSON.stringify(b, plain)

/**
 * SIGHUP (SPEC §13): what can change without a restart is keys (a key file's contents),
 * clients, and whatever plugins take through their reload hooks (users-static's users).
 * A different plugin list is refused (plugins register routes and services once); other
 * changed settings are kept as they run and named, so the log says what still needs a restart.
 */
export async function prepareReload(
  current: ServerConfig,
  next: ServerConfig,
  ctx: { registry: PluginRegistry; keys: 'file' | 'store' | 'fixed'; running: KeySet },
): Promise<PreparedReload> {
  const before = refs(current).map((r) => r.use)
  const after = refs(next).map((r) => r.use)
  if (!same(before, after)) {
    throw new ConfigError(`store, users and plugins must stay the same on reload (running: ${before.join(', ')}; new: ${after.join(', ')}); restart to change them`)
  }

  const clients = new ClientRegistry(next.clients)
  // Resources stay as they run (restart-only): a client may only name one the server has.
  next.clients.forEach((c, i) => c.resources?.forEach((r, j) => {
    if (!current.resources.has(r)) throw new ConfigError(`clients[${i}].resources[${j}]: resource "${r}" is not configured in the running server (a new resource needs a restart)`)
  }))
  next.clients.forEach((c, i) => c.grant_types.forEach((g, j) => {
    if (!ctx.registry.grants.has(g)) throw new ConfigError(`clients[${i}].grant_types[${j}]: grant type "${g}" is not loaded by any plugin`)
  }))

  const restartNeeded: string[] = RESTART_ONLY.filter((k) => !same(current[k], next[k]))
  let keys = ctx.running
  let keysKept = false
  if (ctx.keys === 'file' && next.keys && !next.keyStore) {
    keys = await KeySet.fromFile(next.keys.file)
  } else if (!same(current.keys, next.keys) || !same(current.keyStore, next.keyStore)) {
    // Ephemeral ↔ file ↔ store, or store settings: the key source is chosen at start.
    restartNeeded.push('keys')
    keysKept = true
  }

  const commits: Array<() => void> = []
  const nextRefs = new Map(refs(next).map((r) => [r.path, r]))
  const hooked = new Set<string>()
  for (const reg of ctx.registry.reloadHooks) {
    const ref = nextRefs.get(reg.path)
    if (!ref) continue
    hooked.add(reg.path)
    let options: unknown = ref.options
    try {
      if (reg.parse) options = reg.parse(ref.options)
    } catch (err) {
      throw new ConfigError(`${ref.path}.options: ${(err as Error).message}`)
    }
    let commit: (() => void) | void
    try {
      commit = await reg.hook(options)
    } catch (err) {
      if (err instanceof ConfigError) throw err
      throw new ConfigError(`${ref.path} (${reg.plugin}): reload refused (${(err as Error).message.split('\n')[0]})`)
    }
    if (commit) commits.push(commit)
  }
  const oldRefs = new Map(refs(current).map((r) => [r.path, r]))
  for (const ref of refs(next)) {
    if (ref.path !== 'store' && !hooked.has(ref.path) && !same(oldRefs.get(ref.path)?.options, ref.options)) restartNeeded.push(`${ref.path}.options`)
  }

  const config: ServerConfig = { ...next }
  for (const k of RESTART_ONLY) {
    if (current[k] === undefined) delete config[k]
    else (config as unknown as Record<string, unknown>)[k] = current[k]
  }
  if (keysKept) {
    delete config.keys
    delete config.keyStore
    if (current.keys) config.keys = current.keys
    if (current.keyStore) config.keyStore = current.keyStore
  }
  return { clients, keys, commits, restartNeeded, config }
}
