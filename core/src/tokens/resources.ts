import { OAuthError } from '../errors.js'
import type { Client, ResourceDefinition } from '../interfaces.js'

/** RFC 8707 resource indicators: which API an access token is for (SPEC §11). */

const MAX_RESOURCE = 512

/**
 * Check one `resource` value for a client: configured, and allowed by the client's
 * `resources` (default: all). Anything else is RFC 8707 §2 `invalid_target`.
 */
export function checkResourceIndicator(client: Client, value: string, resources: ReadonlyMap<string, ResourceDefinition>): ResourceDefinition {
  if (value.length > MAX_RESOURCE) throw new OAuthError('invalid_request', 'resource is too long')
  const resource = resources.get(value)
  if (!resource) throw new OAuthError('invalid_target', 'the requested resource is unknown')
  if (client.resources !== undefined && !client.resources.includes(value)) throw new OAuthError('invalid_target', 'the client may not ask for this resource')
  return resource
}

/** The resource owning each API scope (a scope belongs to at most one, checked at config load). */
export function scopeOwners(resources: ReadonlyMap<string, ResourceDefinition>): Map<string, string> {
  const owners = new Map<string, string>()
  for (const r of resources.values()) for (const s of r.scopes) owners.set(s, r.id)
  return owners
}

/** The resources that own at least one of `scope`, in scope order. */
export function resourcesOwning(scope: readonly string[], owners: ReadonlyMap<string, string>): string[] {
  const out: string[] = []
  for (const s of scope) {
    const owner = owners.get(s)
    if (owner !== undefined && !out.includes(owner)) out.push(owner)
  }
  return out
}

export interface AudienceDecision {
  /** The resource the access token is for; absent: the token is for the client (or the grant's own audience). */
  readonly resource?: ResourceDefinition
  /** The access token's scope: the grant's, without the scopes of other resources. */
  readonly scope: readonly string[]
  /** What the grant's refresh tokens remember (RFC 8707 §2.2). */
  readonly authorized: readonly string[]
}

/**
 * Pick the access token's resource (SPEC §11, RFC 8707 §2.2, RFC 9068 §3):
 * - a requested `resource` must be configured, allowed for the client and, when the grant
 *   carries an earlier authorization, within it; the token then holds only that
 *   resource's scopes plus the scopes no resource owns (openid, profile, …);
 * - without one, the resource owning the granted API scopes when exactly one does; when
 *   none does and the authorization named exactly one resource, that one.
 */
export function decideAudience(input: {
  client: Client
  requested: string | undefined
  scope: readonly string[]
  /** {@link Grant.resources}: undefined for grants that are their own authorization. */
  grantResources: readonly string[] | undefined
  resources: ReadonlyMap<string, ResourceDefinition>
  owners: ReadonlyMap<string, string>
}): AudienceDecision {
  const { client, requested, scope, grantResources, resources, owners } = input
  const implied = resourcesOwning(scope, owners)
  const explicit = grantResources !== undefined && grantResources.length > 0 ? grantResources : undefined
  const authorized = grantResources === undefined ? undefined : (explicit ?? implied)

  if (requested !== undefined) {
    const resource = checkResourceIndicator(client, requested, resources)
    if (authorized !== undefined && !authorized.includes(resource.id)) throw new OAuthError('invalid_target', 'the resource was not part of the authorization')
    const narrowed = scope.filter((s) => { const owner = owners.get(s); return owner === undefined || owner === resource.id })
    if (narrowed.length === 0 && scope.length > 0) throw new OAuthError('invalid_target', 'none of the granted scopes applies to the requested resource')
    return { resource, scope: narrowed, authorized: authorized ?? union([resource.id], implied) }
  }
  const only = implied.length === 1 ? implied[0] : implied.length === 0 && explicit?.length === 1 ? explicit[0] : undefined
  const resource = only === undefined ? undefined : resources.get(only)
  // A resource the client may not use never becomes the audience (config load refuses such scopes; this is the backstop).
  const usable = resource !== undefined && (client.resources === undefined || client.resources.includes(resource.id)) ? resource : undefined
  return { ...(usable ? { resource: usable } : {}), scope, authorized: authorized ?? implied }
}

function union(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])]
}
