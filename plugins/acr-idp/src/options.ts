/** Options of `@grantd/acr-idp` (SPEC §6), validated at boot; errors name the key path. */

export interface ProviderOptions {
  /** The upstream OIDC issuer identifier; its discovery document is fetched from it. */
  readonly issuer: string
  readonly client_id: string
  readonly client_secret: string
  /** Requested upstream scope; must contain `openid`. Default `openid profile email`. */
  readonly scope: string
  /** Create a local user for upstream identities no user links (the user service decides how). */
  readonly autoProvision: boolean
}

export interface AcrIdpOptions {
  readonly providers: ReadonlyMap<string, ProviderOptions>
  /** External sign-ins one client address may start per 10 minutes (each stores a round-trip record). */
  readonly maxStartsPerAddress: number
}

/** Provider names appear in `acr_values` and in callback paths: keep them plain. */
export const PROVIDER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

const PROVIDER_KEYS = ['issuer', 'client_id', 'client_secret', 'scope', 'autoProvision']

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v)

function record(v: unknown, at: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${at}: expected object, got ${typeName(v)}`)
  return v as Record<string, unknown>
}

function text(v: unknown, at: string): string {
  if (typeof v !== 'string') throw new Error(`${at}: expected string, got ${typeName(v)}`)
  if (v === '') throw new Error(`${at}: must not be empty`)
  return v
}

function issuerUrl(v: unknown, at: string): string {
  const s = text(v, at)
  let u: URL
  try {
    u = new URL(s)
  } catch {
    throw new Error(`${at}: expected an absolute URL`)
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error(`${at}: expected an http or https URL`)
  if (u.search || u.hash) throw new Error(`${at}: must not have a query or fragment`)
  return s
}

export function parseAcrIdpOptions(raw: unknown): AcrIdpOptions {
  const o = record(raw ?? {}, '(options)')
  for (const k of Object.keys(o)) if (k !== 'providers' && k !== 'maxStartsPerAddress') throw new Error(`${k}: unknown key`)
  const max = o.maxStartsPerAddress
  if (max !== undefined && (typeof max !== 'number' || !Number.isInteger(max))) throw new Error(`maxStartsPerAddress: expected integer, got ${typeName(max)}`)
  if (typeof max === 'number' && (max < 1 || max > 1_000_000)) throw new Error('maxStartsPerAddress: must be between 1 and 1000000')
  const providers = new Map<string, ProviderOptions>()
  const given = o.providers === undefined ? {} : record(o.providers, 'providers')
  for (const [name, value] of Object.entries(given)) {
    const at = `providers.${name}`
    if (!PROVIDER_NAME.test(name)) throw new Error(`${at}: provider names are 1-64 letters, digits, ".", "_" or "-"`)
    const p = record(value, at)
    for (const k of Object.keys(p)) if (!PROVIDER_KEYS.includes(k)) throw new Error(`${at}.${k}: unknown key`)
    const scope = p.scope === undefined ? 'openid profile email' : text(p.scope, `${at}.scope`)
    if (!scope.split(' ').includes('openid')) throw new Error(`${at}.scope: must include openid`)
    if (p.autoProvision !== undefined && typeof p.autoProvision !== 'boolean') throw new Error(`${at}.autoProvision: expected boolean, got ${typeName(p.autoProvision)}`)
    providers.set(name, {
      issuer: issuerUrl(p.issuer, `${at}.issuer`),
      client_id: text(p.client_id, `${at}.client_id`),
      client_secret: text(p.client_secret, `${at}.client_secret`),
      scope,
      autoProvision: p.autoProvision === true,
    })
  }
  return { providers, maxStartsPerAddress: typeof max === 'number' ? max : 100 }
}
