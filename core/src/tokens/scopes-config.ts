import { ConfigError } from '../errors.js'
import { REGISTERED_CLAIMS, type ResourceDefinition, type ScopeDefinition } from '../interfaces.js'
import { isValidScopeToken } from './scope.js'

/**
 * Validation of the config's `scopes`, `resources` and `tokens.tenantClaim` (SPEC §11).
 * Errors name the key path, like the rest of config.ts.
 */

/** OIDC Core §5.4: the standard scopes and the claims each releases. */
export const BUILTIN_SCOPES: ReadonlyMap<string, ScopeDefinition> = new Map<string, ScopeDefinition>([
  ['openid', { description: 'Sign you in with your account', claims: [] }],
  ['profile', {
    description: 'Your basic profile (name, picture, locale)',
    claims: ['name', 'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username', 'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at'],
  }],
  ['email', { description: 'Your email address', claims: ['email', 'email_verified'] }],
  ['address', { description: 'Your postal address', claims: ['address'] }],
  ['phone', { description: 'Your phone number', claims: ['phone_number', 'phone_number_verified'] }],
  ['offline_access', { description: 'Stay signed in (keep access while you are away)', claims: [] }],
])

/** The scopes of OpenID Connect itself: never owned by an API resource. */
export const OIDC_SCOPES: ReadonlySet<string> = new Set(BUILTIN_SCOPES.keys())

type Raw = Record<string, unknown>
const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v)
const fail = (path: string, message: string): never => {
  throw new ConfigError(`${path}: ${message}`)
}

function obj(v: unknown, path: string): Raw {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, `expected object, got ${typeName(v)}`)
  return v as Raw
}

function only(o: Raw, path: string, keys: readonly string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) fail(`${path}.${k}`, 'unknown key')
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string') fail(path, `expected string, got ${typeName(v)}`)
  if ((v as string).length === 0) fail(path, 'must not be empty')
  return v as string
}

/** Claim names a config may list: plain strings, never one the core owns (`sub`, `aud`, …). */
function claimNames(v: unknown, path: string): string[] {
  if (!Array.isArray(v)) fail(path, `expected array, got ${typeName(v)}`)
  return (v as unknown[]).map((item, i) => {
    const name = str(item, `${path}[${i}]`)
    if (name.length > 128) fail(`${path}[${i}]`, 'at most 128 characters')
    if (REGISTERED_CLAIMS.has(name)) fail(`${path}[${i}]`, `"${name}" is a registered claim the server sets itself`)
    return name
  })
}

function scopeNames(v: unknown, path: string): string[] {
  if (!Array.isArray(v)) fail(path, `expected array, got ${typeName(v)}`)
  return (v as unknown[]).map((item, i) => {
    const name = str(item, `${path}[${i}]`)
    if (!isValidScopeToken(name)) fail(`${path}[${i}]`, `"${name}" is not a valid scope token`)
    return name
  })
}

/**
 * `{ "NAME": { "description": "...", "claims": [...] } }` merged over {@link BUILTIN_SCOPES}:
 * an entry for a built-in scope replaces its description, and its claims when it lists some.
 */
export function validateScopes(raw: unknown, path: string): Map<string, ScopeDefinition> {
  const out = new Map(BUILTIN_SCOPES)
  if (raw === undefined) return out
  const o = obj(raw, path)
  for (const [name, value] of Object.entries(o)) {
    const at = `${path}.${name}`
    if (!isValidScopeToken(name)) fail(at, `"${name}" is not a valid scope token`)
    const entry = obj(value, at)
    only(entry, at, ['description', 'claims'])
    const builtin = BUILTIN_SCOPES.get(name)
    const description = entry.description === undefined ? builtin?.description : str(entry.description, `${at}.description`)
    const claims = entry.claims === undefined ? (builtin?.claims ?? []) : claimNames(entry.claims, `${at}.claims`)
    out.set(name, { claims, ...(description !== undefined ? { description } : {}) })
  }
  return out
}

/** RFC 8707 §2: a resource indicator is an absolute URI without a fragment. */
function resourceId(v: unknown, path: string): string {
  const id = str(v, path)
  let u: URL
  try {
    u = new URL(id)
  } catch {
    return fail(path, 'expected an absolute URI (RFC 8707 §2)')
  }
  if (u.hash !== '' || id.includes('#')) fail(path, 'must not have a fragment (RFC 8707 §2)')
  if (id.length > 512) fail(path, 'at most 512 characters')
  return id
}

/**
 * `[{ "id", "scopes", "accessTokenTtl", "claims" }]`. A scope belongs to at most one
 * resource (RFC 9068 §3 picks the audience by scope), OIDC scopes to none; each client's
 * `resources` must name configured ones, and a client may not be registered for a scope
 * of a resource its `resources` excludes.
 */
export function validateResources(raw: unknown, path: string, clients: ReadonlyArray<{ scope: string; resources?: string[] }>): Map<string, ResourceDefinition> {
  const out = new Map<string, ResourceDefinition>()
  const owner = new Map<string, string>()
  if (raw !== undefined) {
    if (!Array.isArray(raw)) fail(path, `expected array, got ${typeName(raw)}`)
    ;(raw as unknown[]).forEach((item, i) => {
      const at = `${path}[${i}]`
      const o = obj(item, at)
      only(o, at, ['id', 'scopes', 'accessTokenTtl', 'claims'])
      const id = resourceId(o.id, `${at}.id`)
      if (out.has(id)) fail(`${at}.id`, `duplicate resource "${id}"`)
      const scopes = o.scopes === undefined ? [] : scopeNames(o.scopes, `${at}.scopes`)
      scopes.forEach((s, j) => {
        if (OIDC_SCOPES.has(s)) fail(`${at}.scopes[${j}]`, `"${s}" is an OpenID Connect scope, not an API scope`)
        const prior = owner.get(s)
        if (prior !== undefined) fail(`${at}.scopes[${j}]`, `"${s}" already belongs to resource "${prior}"`)
        owner.set(s, id)
      })
      const def: { -readonly [K in keyof ResourceDefinition]: ResourceDefinition[K] } = {
        id, scopes, claims: o.claims === undefined ? [] : claimNames(o.claims, `${at}.claims`),
      }
      if (o.accessTokenTtl !== undefined) {
        const ttl = o.accessTokenTtl
        if (typeof ttl !== 'number' || !Number.isInteger(ttl)) fail(`${at}.accessTokenTtl`, `expected integer, got ${typeName(ttl)}`)
        if ((ttl as number) < 1 || (ttl as number) > 86400) fail(`${at}.accessTokenTtl`, 'must be between 1 and 86400')
        def.accessTokenTtl = ttl as number
      }
      out.set(id, def)
    })
  }
  clients.forEach((c, i) => {
    c.resources?.forEach((r, j) => {
      if (!out.has(r)) fail(`clients[${i}].resources[${j}]`, `unknown resource "${r}"`)
    })
    if (c.resources === undefined) return
    for (const s of c.scope.split(' ')) {
      const res = owner.get(s)
      if (res !== undefined && !c.resources.includes(res)) fail(`clients[${i}].scope`, `"${s}" belongs to resource "${res}", which clients[${i}].resources does not allow`)
    }
  })
  return out
}

/** `tokens.tenantClaim`: a claim name, or `false` for none; default `tenant`. */
export function validateTenantClaim(raw: unknown, path: string): string | false {
  if (raw === undefined) return 'tenant'
  if (raw === false) return false
  const name = str(raw, path)
  if (REGISTERED_CLAIMS.has(name)) fail(path, `"${name}" is a registered claim the server sets itself`)
  return name
}
