import { readFile } from 'node:fs/promises'
import { dirname, extname, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parse as parseYaml } from 'yaml'
import type { JSONWebKeySet } from 'jose'
import { ConfigError } from './errors.js'
import { boolean as bool, fail, integer as int, object as obj, only, string as str, stringArray as strArray, typeName, url } from './host/options.js'
import type { ClientAuthMethod, ResourceDefinition, ScopeDefinition, SigningAlg } from './interfaces.js'
import { SIGNING_ALGS } from './tokens/keys.js'
import { validateResources, validateScopes, validateTenantClaim } from './tokens/scopes-config.js'
import { DEFAULT_THROTTLE, type ThrottleSettings } from './ops/throttle.js'

/** One `plugins[]` / `store` / `users` entry: a module specifier and its options. */
export interface PluginRef {
  readonly use: string
  readonly options: unknown
  /** Where the reference came from, for error messages (`plugins[2]`). */
  readonly path: string
}

export interface ClientConfig {
  client_id: string
  client_secret?: string
  token_endpoint_auth_method?: ClientAuthMethod
  grant_types: string[]
  redirect_uris: string[]
  scope: string
  require_pkce: boolean
  allow_plain_pkce: boolean
  identity_providers: string[]
  client_name?: string
  jwks?: JSONWebKeySet
  access_token_ttl?: number
  /** RFC 8707 resources the client may ask for; absent: all. */
  resources?: string[]
  post_logout_redirect_uris?: string[]
  backchannel_logout_uri?: string
  backchannel_logout_session_required?: boolean
  frontchannel_logout_uri?: string
  frontchannel_logout_session_required?: boolean
  require_consent?: boolean
  id_token_signed_response_alg?: SigningAlg
  access_token_signed_response_alg?: SigningAlg
  /** RFC 9126 §6: authorization requests must come through PAR. */
  require_pushed_authorization_requests?: boolean
  /** RFC 9449 §5.2: token requests must carry a DPoP proof. */
  dpop_bound_access_tokens?: boolean
}

/** `keys: { "source": "store", ... }` (SPEC §13): keys live in the store and rotate themselves. */
export interface StoreKeysSettings {
  /** A key signs for this many days; its successor is published `publishAheadDays` before. */
  rotateDays: number
  /** One key chain per alg; the first alg signs access tokens by default. */
  algs: SigningAlg[]
  /** How often each process re-reads the key set (every process converges within this). */
  pollSeconds: number
  /** Encrypts the private keys at rest in the store; default: `cookies.keys`. */
  secrets: string[]
}

export interface ServerConfig {
  issuer?: string
  port: number
  host: string
  proxy: { trust: boolean | string[] }
  /** `keys.file`: keys from a JWK set file (statuses per key, SPEC §13). */
  keys?: { file: string }
  /** `keys.source: "store"`: keys kept and rotated in the store (SPEC §13). */
  keyStore?: StoreKeysSettings
  tokens: {
    accessTokenTtl: number
    idTokenTtl: number
    codeTtl: number
    refreshTokenTtl: number
    refreshTokenRotation: boolean
    refreshTokenReuseInterval: number
    accessTokenFormat: 'jwt'
    tenantClaim: string | false
  }
  cookies: { keys: string[] }
  /** Brute-force limits on password sign-ins (password grant and login form). */
  throttle: ThrottleSettings
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' }
  /** How long SIGTERM waits for in-flight requests before cutting them (SPEC §13). */
  shutdown: { timeoutSeconds: number }
  /** Prometheus text on its own listener; absent: no metrics (SPEC §13). */
  metrics?: { port: number; host: string }
  store: PluginRef
  users?: PluginRef
  plugins: PluginRef[]
  clients: ClientConfig[]
  /** Built-in OIDC scopes with config `scopes` merged over them (SPEC §11). */
  scopes: Map<string, ScopeDefinition>
  /** Config `resources` (RFC 8707), by id. */
  resources: Map<string, ResourceDefinition>
  /** Folder of the config file; relative paths resolve against it. */
  baseDir: string
}

type Raw = Record<string, unknown>

/**
 * A redirect_uri: http(s), or for a public (native) client a private-use URI scheme
 * containing a "." (RFC 8252 §7.1, §8.4: reverse domain name, `com.example.app:/cb`).
 */
function redirectUri(v: unknown, path: string, publicClient: boolean): string {
  const s = str(v, path)
  let u: URL
  try {
    u = new URL(s)
  } catch {
    return fail(path, 'expected an absolute URL')
  }
  if (u.hash || s.includes('#')) fail(path, 'must not have a fragment')
  if (u.protocol === 'http:' || u.protocol === 'https:') return s
  const scheme = u.protocol.slice(0, -1)
  if (!scheme.includes('.') || !/^[a-z][a-z0-9+.-]*$/.test(scheme)) fail(path, 'expected an http or https URL, or a private-use URI scheme with a "." (com.example.app:/cb)')
  if (!publicClient) fail(path, 'a private-use URI scheme is for public (native) clients only (RFC 8252 §8.4); this client is confidential')
  return s
}

function pluginRef(v: unknown, path: string): PluginRef {
  if (typeof v === 'string') return { use: str(v, path), options: {}, path }
  const o = obj(v, path)
  only(o, path, ['use', 'options'])
  return { use: str(o.use, `${path}.use`), options: o.options === undefined ? {} : obj(o.options, `${path}.options`), path }
}

const AUTH_METHODS: readonly ClientAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']
const CLIENT_KEYS = [
  'client_id', 'client_secret', 'token_endpoint_auth_method', 'grant_types', 'redirect_uris', 'scope',
  'require_pkce', 'allow_plain_pkce', 'identity_providers', 'client_name', 'jwks', 'access_token_ttl',
  'resources',
  // SPEC §10: logout and consent
  'post_logout_redirect_uris', 'backchannel_logout_uri', 'backchannel_logout_session_required',
  'frontchannel_logout_uri', 'frontchannel_logout_session_required', 'require_consent',
  'id_token_signed_response_alg', 'access_token_signed_response_alg',
  'require_pushed_authorization_requests',
  'dpop_bound_access_tokens',
]

function client(v: unknown, path: string): ClientConfig {
  const o = obj(v, path)
  only(o, path, CLIENT_KEYS)
  const out: ClientConfig = {
    client_id: str(o.client_id, `${path}.client_id`),
    grant_types: o.grant_types === undefined ? [] : strArray(o.grant_types, `${path}.grant_types`),
    redirect_uris: o.redirect_uris === undefined ? [] : strArray(o.redirect_uris, `${path}.redirect_uris`),
    scope: o.scope === undefined ? '' : str(o.scope, `${path}.scope`),
    require_pkce: o.require_pkce === undefined ? false : bool(o.require_pkce, `${path}.require_pkce`),
    allow_plain_pkce: o.allow_plain_pkce === undefined ? false : bool(o.allow_plain_pkce, `${path}.allow_plain_pkce`),
    identity_providers: o.identity_providers === undefined ? [] : strArray(o.identity_providers, `${path}.identity_providers`),
  }
  if (out.client_id.length > 128 || /[\x00-\x1f]/.test(out.client_id)) fail(`${path}.client_id`, 'at most 128 printable characters')
  if (o.client_secret !== undefined) out.client_secret = str(o.client_secret, `${path}.client_secret`)
  if (o.client_name !== undefined) out.client_name = str(o.client_name, `${path}.client_name`)
  if (o.access_token_ttl !== undefined) out.access_token_ttl = int(o.access_token_ttl, `${path}.access_token_ttl`, 1, 86400)
  if (o.resources !== undefined) out.resources = strArray(o.resources, `${path}.resources`)
  logoutFields(o, out, path)
  for (const field of ['id_token_signed_response_alg', 'access_token_signed_response_alg'] as const) {
    if (o[field] === undefined) continue
    const alg = str(o[field], `${path}.${field}`)
    if (!(SIGNING_ALGS as readonly string[]).includes(alg)) fail(`${path}.${field}`, `"${alg}" is not an alg grantd signs with (expected one of ${SIGNING_ALGS.join(', ')})`)
    out[field] = alg as SigningAlg
  }
  if (o.require_pushed_authorization_requests !== undefined) {
    out.require_pushed_authorization_requests = bool(o.require_pushed_authorization_requests, `${path}.require_pushed_authorization_requests`)
  }
  if (o.dpop_bound_access_tokens !== undefined) out.dpop_bound_access_tokens = bool(o.dpop_bound_access_tokens, `${path}.dpop_bound_access_tokens`)
  if (o.token_endpoint_auth_method !== undefined) {
    const m = str(o.token_endpoint_auth_method, `${path}.token_endpoint_auth_method`)
    if (!AUTH_METHODS.includes(m as ClientAuthMethod)) fail(`${path}.token_endpoint_auth_method`, `expected one of ${AUTH_METHODS.join(', ')}`)
    out.token_endpoint_auth_method = m as ClientAuthMethod
  }
  if (o.jwks !== undefined) {
    const jwks = obj(o.jwks, `${path}.jwks`)
    if (!Array.isArray(jwks.keys)) fail(`${path}.jwks.keys`, `expected array, got ${typeName(jwks.keys)}`)
    ;(jwks.keys as unknown[]).forEach((k, i) => {
      const key = obj(k, `${path}.jwks.keys[${i}]`)
      for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) {
        if (priv in key) fail(`${path}.jwks.keys[${i}].${priv}`, 'a client jwks must hold public keys only')
      }
    })
    out.jwks = jwks as unknown as JSONWebKeySet
  }
  const method = out.token_endpoint_auth_method ?? (out.client_secret !== undefined ? 'client_secret_basic' : 'none')
  if ((method === 'client_secret_basic' || method === 'client_secret_post') && out.client_secret === undefined) {
    fail(`${path}.client_secret`, `required for ${method}`)
  }
  if (method === 'private_key_jwt' && out.jwks === undefined) fail(`${path}.jwks`, 'required for private_key_jwt')
  if (method === 'none' && out.client_secret !== undefined) fail(`${path}.client_secret`, 'a client with token_endpoint_auth_method none has no secret')
  out.redirect_uris.forEach((u, i) => redirectUri(u, `${path}.redirect_uris[${i}]`, method === 'none'))
  return out
}

const TOP_KEYS = ['issuer', 'port', 'host', 'proxy', 'keys', 'tokens', 'cookies', 'throttle', 'log', 'store', 'users', 'plugins', 'clients',
  'scopes', 'resources', 'shutdown', 'metrics']
const TOKEN_KEYS = ['accessTokenTtl', 'idTokenTtl', 'codeTtl', 'refreshTokenTtl', 'refreshTokenRotation', 'refreshTokenReuseInterval', 'accessTokenFormat', 'tenantClaim']
/** SPEC §10 client fields (RP-Initiated, Back-Channel and Front-Channel Logout 1.0, consent). */
function logoutFields(o: Raw, out: ClientConfig, path: string): void {
  if (o.post_logout_redirect_uris !== undefined) {
    out.post_logout_redirect_uris = strArray(o.post_logout_redirect_uris, `${path}.post_logout_redirect_uris`)
    out.post_logout_redirect_uris.forEach((u, i) => url(u, `${path}.post_logout_redirect_uris[${i}]`))
  }
  if (o.backchannel_logout_uri !== undefined) out.backchannel_logout_uri = url(o.backchannel_logout_uri, `${path}.backchannel_logout_uri`)
  if (o.frontchannel_logout_uri !== undefined) out.frontchannel_logout_uri = url(o.frontchannel_logout_uri, `${path}.frontchannel_logout_uri`)
  for (const k of ['backchannel_logout_session_required', 'frontchannel_logout_session_required', 'require_consent'] as const) {
    if (o[k] !== undefined) out[k] = bool(o[k], `${path}.${k}`)
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** Validate a parsed config object; errors name the key path (`clients[1].redirect_uris: expected array`). */
export function validateConfig(input: unknown, baseDir: string): ServerConfig {
  const o = obj(input, '(config)')
  only(o, '', TOP_KEYS)
  const tokensRaw = o.tokens === undefined ? {} : obj(o.tokens, 'tokens')
  only(tokensRaw, 'tokens', TOKEN_KEYS)
  const tokens: ServerConfig['tokens'] = {
    accessTokenTtl: tokensRaw.accessTokenTtl === undefined ? 300 : int(tokensRaw.accessTokenTtl, 'tokens.accessTokenTtl', 1, 86400),
    idTokenTtl: tokensRaw.idTokenTtl === undefined ? 300 : int(tokensRaw.idTokenTtl, 'tokens.idTokenTtl', 1, 86400),
    codeTtl: tokensRaw.codeTtl === undefined ? 60 : int(tokensRaw.codeTtl, 'tokens.codeTtl', 1, 600),
    refreshTokenTtl: tokensRaw.refreshTokenTtl === undefined ? 2592000 : int(tokensRaw.refreshTokenTtl, 'tokens.refreshTokenTtl', 1, 31536000),
    refreshTokenRotation: tokensRaw.refreshTokenRotation === undefined ? true : bool(tokensRaw.refreshTokenRotation, 'tokens.refreshTokenRotation'),
    refreshTokenReuseInterval: tokensRaw.refreshTokenReuseInterval === undefined ? 0 : int(tokensRaw.refreshTokenReuseInterval, 'tokens.refreshTokenReuseInterval', 0, 300),
    accessTokenFormat: 'jwt',
    tenantClaim: validateTenantClaim(tokensRaw.tenantClaim, 'tokens.tenantClaim'),
  }
  if (tokensRaw.accessTokenFormat !== undefined && tokensRaw.accessTokenFormat !== 'jwt') fail('tokens.accessTokenFormat', 'only "jwt" is supported')

  const proxyRaw = o.proxy === undefined ? {} : obj(o.proxy, 'proxy')
  only(proxyRaw, 'proxy', ['trust'])
  let trust: boolean | string[] = false
  if (proxyRaw.trust !== undefined) {
    trust = Array.isArray(proxyRaw.trust) ? strArray(proxyRaw.trust, 'proxy.trust') : bool(proxyRaw.trust, 'proxy.trust')
  }

  const cookiesRaw = o.cookies === undefined ? {} : obj(o.cookies, 'cookies')
  only(cookiesRaw, 'cookies', ['keys'])
  const cookieKeys = cookiesRaw.keys === undefined ? [] : strArray(cookiesRaw.keys, 'cookies.keys')
  cookieKeys.forEach((k, i) => { if (k.length < 16) fail(`cookies.keys[${i}]`, 'must be at least 16 characters') })

  const throttleRaw = o.throttle === undefined ? {} : obj(o.throttle, 'throttle')
  only(throttleRaw, 'throttle', ['maxFailuresPerUser', 'maxFailuresPerAddress', 'maxFailuresPerClient', 'windowSeconds'])
  const throttle: ThrottleSettings = {
    maxFailuresPerUser: throttleRaw.maxFailuresPerUser === undefined ? DEFAULT_THROTTLE.maxFailuresPerUser : int(throttleRaw.maxFailuresPerUser, 'throttle.maxFailuresPerUser', 0, 1_000_000),
    maxFailuresPerAddress: throttleRaw.maxFailuresPerAddress === undefined ? DEFAULT_THROTTLE.maxFailuresPerAddress : int(throttleRaw.maxFailuresPerAddress, 'throttle.maxFailuresPerAddress', 0, 1_000_000),
    maxFailuresPerClient: throttleRaw.maxFailuresPerClient === undefined ? DEFAULT_THROTTLE.maxFailuresPerClient : int(throttleRaw.maxFailuresPerClient, 'throttle.maxFailuresPerClient', 0, 1_000_000),
    windowSeconds: throttleRaw.windowSeconds === undefined ? DEFAULT_THROTTLE.windowSeconds : int(throttleRaw.windowSeconds, 'throttle.windowSeconds', 1, 86400),
  }

  const logRaw = o.log === undefined ? {} : obj(o.log, 'log')
  only(logRaw, 'log', ['level'])
  const level = logRaw.level === undefined ? 'info' : str(logRaw.level, 'log.level')
  if (!(LOG_LEVELS as readonly string[]).includes(level)) fail('log.level', `expected one of ${LOG_LEVELS.join(', ')}`)

  const shutdownRaw = o.shutdown === undefined ? {} : obj(o.shutdown, 'shutdown')
  only(shutdownRaw, 'shutdown', ['timeoutSeconds'])
  const shutdown = { timeoutSeconds: shutdownRaw.timeoutSeconds === undefined ? 10 : int(shutdownRaw.timeoutSeconds, 'shutdown.timeoutSeconds', 0, 3600) }

  let metrics: ServerConfig['metrics']
  if (o.metrics !== undefined) {
    const m = obj(o.metrics, 'metrics')
    only(m, 'metrics', ['port', 'host'])
    metrics = { port: m.port === undefined ? 9464 : int(m.port, 'metrics.port', 0, 65535), host: m.host === undefined ? '127.0.0.1' : str(m.host, 'metrics.host') }
  }

  let keys: ServerConfig['keys']
  let keyStore: StoreKeysSettings | undefined
  if (o.keys !== undefined) {
    const k = obj(o.keys, 'keys')
    const source = k.source === undefined ? 'file' : str(k.source, 'keys.source')
    if (source === 'store') {
      only(k, 'keys', ['source', 'rotateDays', 'algs', 'pollSeconds', 'secret'])
      const algs = k.algs === undefined ? ['ES256', 'RS256'] : strArray(k.algs, 'keys.algs')
      if (algs.length === 0) fail('keys.algs', 'must not be empty')
      algs.forEach((a, i) => { if (!(SIGNING_ALGS as readonly string[]).includes(a)) fail(`keys.algs[${i}]`, `expected one of ${SIGNING_ALGS.join(', ')}`) })
      if (new Set(algs).size !== algs.length) fail('keys.algs', 'an alg is listed twice')
      const secret = k.secret === undefined ? undefined : str(k.secret, 'keys.secret')
      if (secret !== undefined && secret.length < 32) fail('keys.secret', 'must be at least 32 characters')
      const secrets = secret !== undefined ? [secret] : cookieKeys
      // Private keys are encrypted at rest; every process must derive the same key (docs/security.md).
      if (secrets.length === 0) fail('keys.secret', 'keys.source "store" needs keys.secret or cookies.keys: the private keys are encrypted in the store with it')
      keyStore = {
        // At least 4 days: the successor is published rotateDays/4 (and at least a day) before it signs.
        rotateDays: k.rotateDays === undefined ? 30 : int(k.rotateDays, 'keys.rotateDays', 4, 3650),
        algs: algs as SigningAlg[],
        pollSeconds: k.pollSeconds === undefined ? 30 : int(k.pollSeconds, 'keys.pollSeconds', 1, 60),
        secrets,
      }
    } else if (source === 'file') {
      only(k, 'keys', ['source', 'file'])
      keys = { file: resolve(baseDir, str(k.file, 'keys.file')) }
    } else {
      fail('keys.source', 'expected "file" or "store"')
    }
  }

  if (o.plugins !== undefined && !Array.isArray(o.plugins)) fail('plugins', `expected array, got ${typeName(o.plugins)}`)
  if (o.clients !== undefined && !Array.isArray(o.clients)) fail('clients', `expected array, got ${typeName(o.clients)}`)
  const clients = ((o.clients as unknown[] | undefined) ?? []).map((c, i) => client(c, `clients[${i}]`))
  const seen = new Set<string>()
  clients.forEach((c, i) => {
    if (seen.has(c.client_id)) fail(`clients[${i}].client_id`, `duplicate client_id "${c.client_id}"`)
    seen.add(c.client_id)
  })
  const scopes = validateScopes(o.scopes, 'scopes')
  const resources = validateResources(o.resources, 'resources', clients)

  const config: ServerConfig = {
    port: o.port === undefined ? 4000 : int(o.port, 'port', 0, 65535),
    host: o.host === undefined ? '127.0.0.1' : str(o.host, 'host'),
    proxy: { trust },
    tokens,
    cookies: { keys: cookieKeys },
    throttle,
    log: { level: level as ServerConfig['log']['level'] },
    shutdown,
    store: o.store === undefined ? { use: '@grantd/store-memory', options: {}, path: 'store' } : pluginRef(o.store, 'store'),
    plugins: ((o.plugins as unknown[] | undefined) ?? []).map((p, i) => pluginRef(p, `plugins[${i}]`)),
    clients,
    scopes,
    resources,
    baseDir,
  }
  if (o.issuer !== undefined) {
    const issuer = url(o.issuer, 'issuer')
    const u = new URL(issuer)
    if (u.search) fail('issuer', 'must not have a query')
    config.issuer = issuer.replace(/\/+$/, '')
  }
  if (keys) config.keys = keys
  if (keyStore) config.keyStore = keyStore
  if (metrics) config.metrics = metrics
  if (o.users !== undefined) config.users = pluginRef(o.users, 'users')
  return config
}

/** Read a config file (JSON, YAML, or a `.js`/`.mjs` module whose default export is the object). */
export async function loadConfigFile(file: string): Promise<ServerConfig> {
  const path = resolve(file)
  const ext = extname(path).toLowerCase()
  let raw: unknown
  if (ext === '.js' || ext === '.mjs' || ext === '.cjs') {
    try {
      const mod = (await import(pathToFileURL(path).href)) as { default?: unknown }
      raw = mod.default
    } catch (err) {
      throw new ConfigError(`${file}: cannot load module (${(err as Error).message.split('\n')[0]})`)
    }
  } else {
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (err) {
      throw new ConfigError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
    try {
      raw = ext === '.yaml' || ext === '.yml' ? parseYaml(text) : JSON.parse(text)
    } catch (err) {
      throw new ConfigError(`${file}: not valid ${ext === '.yaml' || ext === '.yml' ? 'YAML' : 'JSON'} (${(err as Error).message.split('\n')[0]})`)
    }
  }
  return validateConfig(raw, dirname(path))
}

/**
 * Validate one client's metadata exactly as a `clients[]` entry of the config file is
 * validated (clients registered at run time, RFC 7591, go through the same rules).
 */
export function validateClientConfig(input: unknown, path: string): ClientConfig {
  return client(input, path)
}
