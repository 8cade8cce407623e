import { createRequire, register as registerModuleHooks } from 'node:module'
import { isAbsolute, join, resolve as resolvePath } from 'node:path'
import { pathToFileURL } from 'node:url'
import { asValue, createContainer, type AwilixContainer } from 'awilix'
import type { PluginRef } from '../config.js'
import { ConfigError } from '../errors.js'
import type {
  AcrHandler, JsonObject, GrantTypeDefinition, HostConfig, HttpMethod, InteractionHandler, Logger, PluginDefinition, PluginHost,
  ReloadHook, RouteHandler, Services, Store, UserService,
} from '../interfaces.js'
import { REGISTERED_CLAIMS } from '../interfaces.js'
import type { RegisteredClaimsHook } from '../tokens/claims.js'
import { SenderConstraints } from '../tokens/sender-constraints.js'

export interface RouteRegistration {
  readonly plugin: string
  readonly method: HttpMethod
  readonly path: string
  readonly handler: RouteHandler
}

/** A plugin's reload hook with what the reload needs to hand it its new options. */
export interface ReloadRegistration {
  readonly plugin: string
  /** The config entry it came from (`users`, `plugins[2]`) and its module specifier. */
  readonly path: string
  readonly specifier: string
  readonly parse: ((raw: unknown) => unknown) | undefined
  readonly hook: ReloadHook<unknown>
}

export interface LoadedPlugin {
  readonly name: string
  readonly specifier: string
  readonly path: string
  readonly grants: string[]
  readonly acr: string[]
  readonly routes: string[]
  readonly provides: string[]
  readonly dependencies: readonly string[]
  /** How many `host.claims()` hooks the plugin registered. */
  claimsHooks?: number
  /** The `cnf` members of the plugin's `host.senderConstraint()` hooks (`jkt`). */
  senderConstraints?: string[]
}

/** Everything the plugins registered, checked for conflicts before the server listens. */
export class PluginRegistry {
  readonly grants = new Map<string, GrantTypeDefinition & { plugin: string }>()
  readonly acr = new Map<string, AcrHandler>()
  readonly interactions: InteractionHandler[] = []
  readonly routes: RouteRegistration[] = []
  readonly closeHooks: Array<() => Promise<void> | void> = []
  readonly reloadHooks: ReloadRegistration[] = []
  readonly discovery: Array<(issuer: string) => JsonObject> = []
  /** `host.claims()` hooks in load order (SPEC §11). */
  readonly claimsHooks: RegisteredClaimsHook[] = []
  /** `host.senderConstraint()` hooks (RFC 9449 DPoP, RFC 8705 mTLS). */
  readonly senderConstraints = new SenderConstraints()
  readonly loaded: LoadedPlugin[] = []
  readonly container: AwilixContainer<Services>
  store: Store | undefined
  users: UserService | undefined
  private readonly acrOwners = new Map<string, string>()
  private readonly serviceOwners = new Map<string, string>()

  constructor() {
    this.container = createContainer<Services>({ strict: true })
  }

  register(name: string, value: unknown, owner: string): void {
    const prior = this.serviceOwners.get(name)
    if (prior) throw new ConfigError(`${owner}: service "${name}" is already provided by ${prior}`)
    this.serviceOwners.set(name, owner)
    this.container.register(name, asValue(value))
  }

  acrOwner(prefix: string): string | undefined {
    return this.acrOwners.get(prefix)
  }

  setAcrOwner(prefix: string, owner: string): void {
    this.acrOwners.set(prefix, owner)
  }

  resolve<K extends keyof Services & string>(name: K): Services[K] {
    if (!this.container.hasRegistration(name)) throw new Error(`service "${name}" is not available`)
    return this.container.resolve(name)
  }
}

/** Resolve a plugin specifier: relative to the config file, else from the config's folder, else from grantd's own install. */
export function resolveSpecifier(specifier: string, baseDir: string): string {
  if (specifier.startsWith('./') || specifier.startsWith('../') || isAbsolute(specifier)) {
    return pathToFileURL(resolvePath(baseDir, specifier)).href
  }
  const attempts = [join(baseDir, 'noop.js'), import.meta.filename]
  for (const from of attempts) {
    try {
      return pathToFileURL(createRequire(from).resolve(specifier)).href
    } catch {
      // try the next place
    }
  }
  throw new Error(`cannot find module "${specifier}"`)
}

let grantdImportsFallback = false

/**
 * Let plugins outside grantd's tree (a user's folder without node_modules) import
 * `@grantd/*` packages: Node resolves them from the plugin first, then from grantd's
 * install (see grantd-resolve-hook.ts). Installed once, before the first plugin import.
 */
function allowGrantdImportsFromAnywhere(): void {
  if (grantdImportsFallback) return
  grantdImportsFallback = true
  registerModuleHooks('./grantd-resolve-hook.js', { parentURL: import.meta.url, data: { fallbackParentURL: import.meta.url } })
}

function isPlugin(value: unknown): value is PluginDefinition<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as PluginDefinition).name === 'string' &&
    typeof (value as PluginDefinition).register === 'function'
}

const ROUTE_PATH = /^\/[A-Za-z0-9._~:/@!$&'()*+,;=-]*$/

/**
 * Import, validate and register plugins in config order (store, users, then `plugins`),
 * then run the boot checks (Fastify-style): duplicate grant types, acr prefixes and
 * routes, and missing dependencies are start errors naming the config path.
 */
export async function loadPlugins(refs: readonly PluginRef[], hostConfig: HostConfig, log: Logger, registry = new PluginRegistry()): Promise<PluginRegistry> {
  const routeKeys = new Map<string, string>()
  allowGrantdImportsFromAnywhere()
  for (const ref of refs) {
    let mod: { default?: unknown }
    try {
      mod = (await import(resolveSpecifier(ref.use, hostConfig.baseDir))) as { default?: unknown }
    } catch (err) {
      const reason = (err as Error).message.split('\n')[0]
      throw new ConfigError(`${ref.path}: cannot load "${ref.use}" (${reason})`)
    }
    const plugin = mod.default
    if (!isPlugin(plugin)) throw new ConfigError(`${ref.path}: "${ref.use}" does not default-export a plugin (definePlugin({ name, register }))`)
    if (registry.loaded.some((p) => p.name === plugin.name)) throw new ConfigError(`${ref.path}: plugin "${plugin.name}" is loaded twice`)

    let options: unknown = ref.options
    if (plugin.options) {
      try {
        options = plugin.options(ref.options)
      } catch (err) {
        throw new ConfigError(`${ref.path}.options: ${(err as Error).message}`)
      }
    }
    const info: LoadedPlugin = { name: plugin.name, specifier: ref.use, path: ref.path, grants: [], acr: [], routes: [], provides: [], dependencies: plugin.dependencies ?? [] }
    const where = `${ref.path} (${plugin.name})`
    const host: PluginHost<unknown> = {
      name: plugin.name,
      options,
      config: hostConfig,
      log,
      grant(def) {
        if (typeof def.type !== 'string' || def.type === '' || typeof def.handle !== 'function') throw new ConfigError(`${where}: a grant needs a type and a handle function`)
        const prior = registry.grants.get(def.type)
        if (prior) throw new ConfigError(`${where}: grant_type "${def.type}" is already registered by ${prior.plugin}`)
        registry.grants.set(def.type, { ...def, plugin: plugin.name })
        info.grants.push(def.type)
      },
      acr(handler) {
        if (!/^[A-Za-z0-9_-]+$/.test(handler.prefix)) throw new ConfigError(`${where}: acr prefix "${handler.prefix}" is not a plain word`)
        const prior = registry.acr.get(handler.prefix)
        if (prior) throw new ConfigError(`${where}: acr prefix "${handler.prefix}" is already handled by ${registry.acrOwner(handler.prefix)}`)
        registry.acr.set(handler.prefix, handler)
        registry.setAcrOwner(handler.prefix, plugin.name)
        info.acr.push(handler.prefix)
      },
      interaction(handler) {
        registry.interactions.push(handler)
      },
      route(method, path, handler) {
        if (!ROUTE_PATH.test(path)) throw new ConfigError(`${where}: route path "${path}" must start with /`)
        const key = `${method.toUpperCase()} ${path}`
        const prior = routeKeys.get(key)
        if (prior) throw new ConfigError(`${where}: route ${key} is already registered by ${prior}`)
        routeKeys.set(key, plugin.name)
        registry.routes.push({ plugin: plugin.name, method, path, handler })
        info.routes.push(key)
      },
      users(service) {
        if (registry.users) throw new ConfigError(`${where}: a user service is already provided`)
        registry.users = service
        registry.register('users', service, plugin.name)
      },
      store(store) {
        if (registry.store) throw new ConfigError(`${where}: a store is already provided`)
        registry.store = store
        registry.register('store', store, plugin.name)
      },
      provide(name, value) {
        registry.register(name, value, plugin.name)
        info.provides.push(name)
      },
      resolve(name) {
        return registry.resolve(name)
      },
      onClose(hook) {
        registry.closeHooks.push(hook)
      },
      discovery(fields) {
        registry.discovery.push(fields)
      },
      onReload(hook) {
        registry.reloadHooks.push({ plugin: plugin.name, path: ref.path, specifier: ref.use, parse: plugin.options, hook })
      },
      claims(hook, hookOptions) {
        if (typeof hook !== 'function') throw new ConfigError(`${where}: host.claims() needs a function`)
        // Fastify-style: what can be seen at start is refused at start, naming the plugin.
        const refused = (hookOptions?.claims ?? []).filter((c) => REGISTERED_CLAIMS.has(c))
        if (refused.length > 0) throw new ConfigError(`${where}: claims hook may not set registered claim(s) ${refused.join(', ')}`)
        registry.claimsHooks.push({ plugin: plugin.name, hook })
        info.claimsHooks = (info.claimsHooks ?? 0) + 1
      },
      senderConstraint(constraint) {
        if (typeof constraint?.tokenRequest !== 'function' || typeof constraint.resourceRequest !== 'function' || !Array.isArray(constraint.confirmationMembers)) {
          throw new ConfigError(`${where}: host.senderConstraint() needs tokenRequest, resourceRequest and confirmationMembers`)
        }
        const conflict = registry.senderConstraints.add(constraint)
        if (conflict) throw new ConfigError(`${where}: ${conflict}`)
        ;(info.senderConstraints ??= []).push(...constraint.confirmationMembers)
      },
    }
    try {
      await plugin.register(host)
    } catch (err) {
      if (err instanceof ConfigError) throw err
      throw new ConfigError(`${where}: register failed (${(err as Error).message.split('\n')[0]})`)
    }
    registry.loaded.push(info)
  }

  const names = new Set(registry.loaded.map((p) => p.name))
  for (const info of registry.loaded) {
    for (const dep of info.dependencies) {
      if (!names.has(dep)) throw new ConfigError(`${info.path} (${info.name}): needs plugin "${dep}", which is not loaded`)
    }
  }
  return registry
}
