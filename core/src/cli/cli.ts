import { parseArgs } from 'node:util'
import { resolve } from 'node:path'
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createServer, type GrantdServer } from '../app.js'
import { testClockFromEnv } from '../tokens/key-store.js'
import { createLogger } from '../ops/logger.js'
import { loadConfigFile, type ServerConfig } from '../config.js'
import { ConfigError } from '../errors.js'
import { hashSecret } from '../clients/client-secret.js'
import { SIGNING_ALGS, writePrivateJwks, type SigningAlg } from '../tokens/keys.js'
import { scaffoldPlugin } from './plugin-scaffold.js'
import { keysFileCommand } from './keys-cli.js'
import { consentCommand, sessionsCommand } from './sessions-cli.js'
import { usersCommand, USERS_USAGE } from './cli-users.js'
import { printsHint, startWorkers } from '../ops/workers.js'
import { checkConnections } from '../ops/check-connections.js'

const USAGE = `usage:
  grantd start  [--config FILE] [--port N] [--host ADDR] [--workers N]
  grantd check  [--config FILE] [--offline]   (--offline: do not connect to the store and user service)
  grantd keys generate [--alg ES256|ES384|RS256|PS256|EdDSA] --out FILE   (default: ES256 and RS256)
  grantd keys add --alg ALG --file FILE      (a new key, status next: published, not signing)
  grantd keys promote --kid KID --file FILE  (next → current; the current key of its alg → retired)
  grantd keys retire --kid KID --file FILE   (published only, never signs)
  grantd hash-secret [SECRET]     (reads stdin when SECRET is absent)
  grantd new plugin NAME [--dir DIR]   (a grant plugin package with a passing test)
  grantd sessions end --sub SUB [--client ID] [--config FILE]
  grantd consent revoke --sub SUB --client ID [--config FILE]
${USERS_USAGE}
env: GRANTD_CONFIG, PORT, REDIS_URL`

function die(message: string, code = 1): never {
  process.stderr.write(`grantd: ${message.replace(/\s*\n\s*/g, ' ')}\n`)
  process.exit(code)
}

async function readConfig(file: string | undefined): Promise<ServerConfig> {
  const path = file ?? process.env.GRANTD_CONFIG
  if (!path) die('no config: pass --config FILE or set GRANTD_CONFIG')
  return loadConfigFile(resolve(path))
}

/** Environment overrides (SPEC §2): PORT, and REDIS_URL for the Redis store. */
function applyEnv(config: ServerConfig): void {
  if (process.env.REDIS_URL && config.store.use === '@grantd/store-redis') {
    const options = (typeof config.store.options === 'object' && config.store.options !== null ? config.store.options : {}) as Record<string, unknown>
    config.store = { ...config.store, options: { ...options, url: process.env.REDIS_URL } }
  }
}

/** Whether the config file is this install's `examples/quickstart.json` (its demo secret may be printed). */
function isQuickstart(file: string | undefined): boolean {
  if (file === undefined) return false
  try {
    return realpathSync(resolve(file)) === realpathSync(fileURLToPath(new URL('../../../examples/quickstart.json', import.meta.url)))
  } catch {
    return false
  }
}

async function start(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, workers: { type: 'string' } } })
  const config = await readConfig(values.config)
  applyEnv(config)
  const portText = values.port ?? process.env.PORT
  const port = portText === undefined ? config.port : Number(portText)
  if (!Number.isInteger(port) || port < 0 || port > 65535) die(`--port: expected a port number, got "${portText}"`)
  if (startWorkers(values.workers, config)) return
  const clock = testClockFromEnv(createLogger(config.log.level))
  const server = await createServer(config, clock ? { clock } : {})
  const bound = await server.listen(port, values.host ?? config.host)
  const issuer = config.issuer ?? bound.url
  server.log.info({ url: bound.url, issuer, plugins: server.registry.loaded.map((p) => p.name) }, 'grantd listening')
  // `curl -u` sends Basic without RFC 6749 §2.3.1 form-encoding, so the hint only names a Basic
  // client whose clear id and secret need neither encoding nor shell quoting.
  const plain = /^[\w.~-]+$/
  const svc = config.clients.find((c) => c.grant_types.includes('client_credentials') && c.client_secret !== undefined && plain.test(c.client_secret) &&
    plain.test(c.client_id) && (c.token_endpoint_auth_method ?? 'client_secret_basic') === 'client_secret_basic')
  if (!printsHint()) {
    // one of several workers: the first one printed the hint
  } else if (svc) {
    const scope = svc.scope.split(' ').filter(Boolean)[0] ?? ''
    // SPEC §13: no log line holds a secret; only the quickstart's demo secret is shown.
    const secret = isQuickstart(values.config ?? process.env.GRANTD_CONFIG) ? svc.client_secret : '<client_secret>'
    process.stderr.write(`grantd listening on ${bound.url}\ntry: curl -s -u ${svc.client_id}:${secret} -d grant_type=client_credentials -d scope=${scope} ${bound.url}/connect/token\n`)
  } else {
    process.stderr.write(`grantd listening on ${bound.url}\n`)
  }

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    server.log.info({ signal }, 'shutting down: draining requests')
    server.close().then(
      () => { server.log.info({}, 'stopped'); setImmediate(() => process.exit(0)) },
      (err: unknown) => { process.stderr.write(`grantd: shutdown failed: ${(err as Error).message}\n`); process.exit(1) },
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  // SIGHUP reloads keys, clients and users (SPEC §13); a bad config is refused and the old one keeps serving.
  process.on('SIGHUP', () => { if (!stopping) void reloadConfig(server, values.config) })
  process.on('unhandledRejection', (err) => server.log.error({ err: err instanceof Error ? err.message : String(err) }, 'unhandled rejection'))
}

async function reloadConfig(server: GrantdServer, file: string | undefined): Promise<void> {
  server.log.info({ signal: 'SIGHUP' }, 'reloading configuration')
  try {
    const next = await readConfig(file)
    applyEnv(next)
    const { restartNeeded } = await server.reload(next)
    server.log.info({ clients: next.clients.length, keys: server.keys.keys.map((k) => `${k.kid}:${k.alg}:${k.status}`) }, 'configuration reloaded')
    if (restartNeeded.length > 0) server.log.warn({ kept: restartNeeded }, `changes to ${restartNeeded.join(', ')} need a restart; the running values are kept`)
  } catch (err) {
    server.log.error({ err: (err as Error).message }, 'configuration reload refused: the running configuration keeps serving')
  }
}

async function check(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, offline: { type: 'boolean', default: false } } })
  const config = await readConfig(values.config)
  applyEnv(config)
  const silent = { info() {}, warn() {}, error() {}, debug() {} }
  const server = await createServer(config, { log: silent })
  const usersName = config.users?.use ?? '(none configured)'
  const connections = values.offline ? ['store, users: not contacted (--offline)']
    : await checkConnections(server.registry.store!, server.registry.users!, usersName).catch(async (err: unknown) => { await server.close(); throw err })
  const out: string[] = [`config ok: ${resolve(values.config ?? process.env.GRANTD_CONFIG ?? '')}`]
  out.push(`issuer: ${config.issuer ?? '(derived per request from Host)'}`)
  out.push(`keys: ${server.keys.ephemeral ? `ephemeral ${server.keys.algs.join(' and ')} (no keys.file)` : `${server.keys.jwks.keys.length} from ${config.keys?.file ?? 'the store'}`}; signing ${server.keys.signing.alg} kid=${server.keys.signing.kid}`)
  for (const p of server.registry.loaded) {
    const parts = [
      p.grants.length ? `grants: ${p.grants.join(', ')}` : '',
      p.acr.length ? `acr: ${p.acr.join(', ')}` : '',
      p.routes.length ? `routes: ${p.routes.join(', ')}` : '',
      p.provides.length ? `provides: ${p.provides.join(', ')}` : '',
      p.claimsHooks ? 'claims hook' : '',
      p.senderConstraints ? `sender constraint (cnf: ${p.senderConstraints.join(', ')})` : '',
    ].filter(Boolean)
    out.push(`plugin ${p.name} (${p.specifier})${parts.length ? ' — ' + parts.join('; ') : ''}`)
  }
  out.push(`clients: ${config.clients.map((c) => c.client_id).join(', ') || '(none)'}`)
  if (config.resources.size > 0) out.push(`resources: ${[...config.resources.values()].map((r) => `${r.id} (${r.scopes.join(' ') || 'no scopes'})`).join(', ')}`)
  out.push(...connections)
  process.stdout.write(out.join('\n') + '\n')
  await server.close()
}

async function keys(args: string[]): Promise<void> {
  const [sub, ...rest] = args
  if (sub === 'add' || sub === 'promote' || sub === 'retire') {
    process.stdout.write(`${await keysFileCommand(sub, rest)}\n`)
    return
  }
  if (sub !== 'generate') die(`unknown keys command "${sub ?? ''}"\n${USAGE}`, 2)
  const { values } = parseArgs({ args: rest, options: { alg: { type: 'string' }, out: { type: 'string' } } })
  if (!values.out) die('keys generate: --out FILE is required')
  if (values.alg !== undefined && !(SIGNING_ALGS as readonly string[]).includes(values.alg)) die(`keys generate: --alg must be one of ${SIGNING_ALGS.join(', ')}`)
  // OIDC Core §15.1: without --alg, ES256 (signs access tokens) and RS256 (ID tokens' default).
  const algs: SigningAlg[] = values.alg !== undefined ? [values.alg as SigningAlg] : ['ES256', 'RS256']
  try {
    const jwks = await writePrivateJwks(resolve(values.out), algs)
    process.stdout.write(`wrote ${jwks.map((j) => `${j.alg} key ${j.kid}`).join(' and ')} to ${values.out}\n`)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') die(`keys generate: ${values.out} exists; refusing to overwrite`)
    throw err
  }
}

async function hash(args: string[]): Promise<void> {
  let secret = args[0]
  if (secret === undefined) {
    const chunks: Buffer[] = []
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
    secret = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
  }
  if (!secret) die('hash-secret: empty secret')
  process.stdout.write(`${await hashSecret(secret)}\n`)
}

async function scaffold(args: string[]): Promise<void> {
  const [what, ...rest] = args
  if (what !== 'plugin') die(`unknown new command "${what ?? ''}"\n${USAGE}`, 2)
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { dir: { type: 'string', default: '.' } } })
  if (positionals.length !== 1) die('new plugin: expected one NAME, e.g. grantd new plugin grantd-grant-example', 2)
  const { folder, files } = scaffoldPlugin(positionals[0]!, values.dir!)
  process.stdout.write(`wrote ${files.length} files to ${folder}:\n${files.map((f) => `  ${f}`).join('\n')}\nnext: cd ${folder} && npm install && npm test\n`)
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv
  try {
    switch (command) {
      case 'start': return await start(args)
      case 'check': return await check(args)
      case 'keys': return await keys(args)
      case 'hash-secret': return await hash(args)
      case 'new': return await scaffold(args)
      case 'sessions': return await sessionsCommand(args, async (f) => { const c = await readConfig(f); applyEnv(c); return c }, die)
      case 'consent': return await consentCommand(args, async (f) => { const c = await readConfig(f); applyEnv(c); return c }, die)
      case 'users': return await usersCommand(args)
      case undefined: case '-h': case '--help': case 'help':
        process.stdout.write(USAGE + '\n')
        return
      default:
        die(`unknown command "${command}"\n${USAGE}`, 2)
    }
  } catch (err) {
    if (err instanceof ConfigError) die(err.message)
    if (err instanceof TypeError && (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) die(err.message, 2)
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') die(`cannot listen: address in use (${(err as Error).message})`)
    die((err as Error).message)
  }
}
