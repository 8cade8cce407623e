/** Options of `@grantd/client-registration` (README.md), validated at start. */
export interface RegistrationOptions {
  /** Accepted initial access tokens (RFC 7591 §3); empty only when `open`. */
  readonly initialAccessTokens: readonly string[]
  /** Anyone may register (no initial access token). */
  readonly open: boolean
  /** Let back-channel URIs target private and loopback addresses (SSRF filtering off). */
  readonly allowPrivateNetworkUris: boolean
  /** Grant types a registered client may ask for. */
  readonly grantTypes: readonly string[]
  /** Scopes a registered client may ask for; also its scope when it names none. */
  readonly scopes: readonly string[]
  /** Registrations per client address per hour (anonymous state stays bounded, SPEC §9). */
  readonly maxRegistrationsPerAddress: number
}

const KEYS = ['initialAccessToken', 'open', 'allowPrivateNetworkUris', 'grantTypes', 'scopes', 'maxRegistrationsPerAddress']
/** OIDC Core §5.4 scopes (+ offline_access): what any third-party client may ask a user for. */
export const DEFAULT_SCOPES = ['openid', 'profile', 'email', 'address', 'phone', 'offline_access']
export const DEFAULT_GRANT_TYPES = ['authorization_code', 'refresh_token']

function strings(v: unknown, key: string): string[] {
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || s === '')) throw new Error(`${key}: expected an array of non-empty strings`)
  return v as string[]
}

export function parseRegistrationOptions(raw: unknown): RegistrationOptions {
  const o = (raw ?? {}) as Record<string, unknown>
  if (typeof o !== 'object' || Array.isArray(o)) throw new Error('expected an object')
  for (const k of Object.keys(o)) if (!KEYS.includes(k)) throw new Error(`${k}: unknown key`)
  for (const k of ['open', 'allowPrivateNetworkUris'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new Error(`${k}: expected boolean`)
  }
  const open = o.open === true
  let tokens: string[] = []
  if (o.initialAccessToken !== undefined) {
    tokens = typeof o.initialAccessToken === 'string' ? [o.initialAccessToken] : strings(o.initialAccessToken, 'initialAccessToken')
    tokens.forEach((t, i) => {
      // A guessable token would make registration open in all but name.
      if (t.length < 16) throw new Error(`initialAccessToken${typeof o.initialAccessToken === 'string' ? '' : `[${i}]`}: at least 16 characters`)
    })
  }
  if (open && tokens.length > 0) throw new Error('open: true takes no initialAccessToken (remove one of them)')
  if (!open && tokens.length === 0) throw new Error('initialAccessToken: required unless open: true')
  const max = o.maxRegistrationsPerAddress ?? 20
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > 1_000_000) throw new Error('maxRegistrationsPerAddress: expected an integer between 1 and 1000000')
  const scopes = o.scopes === undefined ? DEFAULT_SCOPES : strings(o.scopes, 'scopes')
  scopes.forEach((s, i) => { if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s)) throw new Error(`scopes[${i}]: "${s}" is not a valid scope token`) })
  return {
    initialAccessTokens: tokens,
    open,
    allowPrivateNetworkUris: o.allowPrivateNetworkUris === true,
    grantTypes: o.grantTypes === undefined ? DEFAULT_GRANT_TYPES : strings(o.grantTypes, 'grantTypes'),
    scopes,
    maxRegistrationsPerAddress: max,
  }
}
