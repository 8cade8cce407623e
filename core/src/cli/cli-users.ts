import { parseArgs } from 'node:util'
import { resolve } from 'node:path'
import { asValue } from 'awilix'
import { ClientRegistry } from '../clients/clients.js'
import { loadConfigFile } from '../config.js'
import { ConfigError } from '../errors.js'
import type { HostConfig, JsonObject, Logger, ManagedUser, UserManagement, UserSelector } from '../interfaces.js'
import { loadPlugins, PluginRegistry } from '../host/plugin-loader.js'

export const USERS_USAGE = `  grantd users migrate  --config FILE
  grantd users add      --username U [--tenant T] [--claims JSON] [--password-stdin] --config FILE
  grantd users set-password (--username U [--tenant T] | --sub S) --password-stdin --config FILE
  grantd users disable|enable (--username U [--tenant T] | --sub S) --config FILE
  grantd users link     (--username U [--tenant T] | --sub S) --idp NAME --subject S --config FILE
  grantd users list     [--tenant T] --config FILE`

const COMMANDS = ['migrate', 'add', 'set-password', 'disable', 'enable', 'link', 'list']
const MAX_PASSWORD = 1024

/** The CLI answers in one line: usage mistakes and refusals alike. */
class UsageError extends ConfigError {}

const silent: Logger = { info() {}, warn() {}, error() {}, debug() {} }

/** Passwords never travel on the command line (shell history, `ps`): only on stdin, one trailing newline dropped. */
async function readPassword(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
  if (password === '') throw new UsageError('users: empty password on stdin')
  if (password.length > MAX_PASSWORD) throw new UsageError(`users: the password is longer than ${MAX_PASSWORD} characters`)
  return password
}

function selector(values: { username?: string | undefined; tenant?: string | undefined; sub?: string | undefined }, command: string): UserSelector {
  if (values.sub !== undefined) {
    if (values.username !== undefined || values.tenant !== undefined) throw new UsageError(`users ${command}: give --sub, or --username [--tenant], not both`)
    return { sub: values.sub }
  }
  if (values.username === undefined) throw new UsageError(`users ${command}: name the user with --username U [--tenant T] or --sub S`)
  return { username: values.username, ...(values.tenant !== undefined ? { tenant: values.tenant } : {}) }
}

function parseClaims(text: string | undefined): JsonObject | undefined {
  if (text === undefined) return undefined
  let claims: unknown
  try {
    claims = JSON.parse(text)
  } catch {
    throw new UsageError('users add: --claims is not valid JSON')
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) throw new UsageError('users add: --claims must be a JSON object')
  return claims as JsonObject
}

function show(user: ManagedUser): string {
  return JSON.stringify(user)
}

/**
 * `grantd users …` (SPEC §12): manage the users of whatever user service the config
 * names, through its optional {@link UserManagement}. Only the user service is loaded (no
 * store, no keys, no listener); a service without management answers that it is read-only.
 */
export async function usersCommand(args: string[]): Promise<void> {
  const [command, ...rest] = args
  if (command === undefined || !COMMANDS.includes(command)) throw new UsageError(`unknown users command "${command ?? ''}"; usage:\n${USERS_USAGE}`)
  const { values } = parseArgs({
    args: rest,
    options: {
      config: { type: 'string' }, username: { type: 'string' }, tenant: { type: 'string' }, sub: { type: 'string' },
      claims: { type: 'string' }, 'password-stdin': { type: 'boolean' }, idp: { type: 'string' }, subject: { type: 'string' },
    },
  })
  const path = values.config ?? process.env.GRANTD_CONFIG
  if (!path) throw new UsageError('no config: pass --config FILE or set GRANTD_CONFIG')
  const config = await loadConfigFile(resolve(path))
  if (!config.users) throw new UsageError('users: the config names no user service ("users")')

  const hostConfig: HostConfig = {
    ...(config.issuer ? { issuer: config.issuer } : {}),
    tokens: config.tokens,
    clients: new ClientRegistry(config.clients).clients,
    baseDir: config.baseDir,
    cookieKeys: config.cookies.keys,
    scopes: config.scopes,
    resources: config.resources,
  }
  const registry = new PluginRegistry()
  registry.container.register({ config: asValue(hostConfig), log: asValue(silent) })
  try {
    await loadPlugins([config.users], hostConfig, silent, registry)
    const service = registry.users
    const name = registry.loaded[0]?.name ?? config.users.use
    if (!service) throw new UsageError(`users: "${config.users.use}" provided no user service`)
    const manage: UserManagement | undefined = service.management
    if (!manage) throw new UsageError(`users: ${name} is read-only: its users are managed where it reads them (the config file for users-static)`)

    if (command === 'migrate') {
      if (!manage.migrate) {
        process.stdout.write(`${name} has nothing to migrate\n`)
        return
      }
      const { from, to } = await manage.migrate()
      process.stdout.write(from === to ? `${name}: schema is up to date (version ${to})\n` : `${name}: schema migrated from version ${from} to ${to}\n`)
      return
    }
    // Every other command needs a current schema: the same one-line refusal the server gives.
    await service.start?.()
    const out = (user: ManagedUser): void => { process.stdout.write(show(user) + '\n') }
    switch (command) {
      case 'add': {
        if (values.username === undefined) throw new UsageError('users add: --username is required')
        if (values.sub !== undefined) throw new UsageError('users add: the sub is generated; --sub is not accepted')
        const claims = parseClaims(values.claims)
        const password = values['password-stdin'] ? await readPassword() : undefined
        return out(await manage.add({
          username: values.username,
          ...(values.tenant !== undefined ? { tenant: values.tenant } : {}),
          ...(claims !== undefined ? { claims } : {}),
          ...(password !== undefined ? { password } : {}),
        }))
      }
      case 'set-password': {
        const who = selector(values, command)
        if (!values['password-stdin']) throw new UsageError('users set-password: the password is read only from stdin: pass --password-stdin')
        return out(await manage.setPassword(who, await readPassword()))
      }
      case 'disable':
      case 'enable':
        return out(await manage.setDisabled(selector(values, command), command === 'disable'))
      case 'link': {
        const who = selector(values, command)
        if (values.idp === undefined || values.subject === undefined) throw new UsageError('users link: --idp NAME and --subject S are required')
        return out(await manage.link(who, values.idp, values.subject))
      }
      case 'list':
        for (const user of await manage.list(values.tenant !== undefined ? { tenant: values.tenant } : {})) out(user)
        return
    }
  } finally {
    for (const hook of [...registry.closeHooks].reverse()) await Promise.resolve(hook()).catch(() => {})
  }
}
