import { option } from '@grantd/core'

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

export function parseRegistrationOptions(raw: unknown): RegistrationOptions {
  const o = option.object(raw ?? {}, '(options)')
  option.only(o, '', KEYS)
  const open = option.optional(o.open, 'open', option.boolean, false)
  let tokens: string[] = []
  if (o.initialAccessToken !== undefined) {
    const single = typeof o.initialAccessToken === 'string'
    tokens = single ? [option.string(o.initialAccessToken, 'initialAccessToken')] : option.stringArray(o.initialAccessToken, 'initialAccessToken')
    // A guessable token would make registration open in all but name.
    tokens.forEach((t, i) => { if (t.length < 16) option.fail(single ? 'initialAccessToken' : `initialAccessToken[${i}]`, 'at least 16 characters') })
  }
  if (open && tokens.length > 0) option.fail('open', 'true takes no initialAccessToken (remove one of them)')
  if (!open && tokens.length === 0) option.fail('initialAccessToken', 'required unless open: true')
  const scopes = option.optional(o.scopes, 'scopes', option.stringArray, DEFAULT_SCOPES)
  scopes.forEach((s, i) => { if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s)) option.fail(`scopes[${i}]`, `"${s}" is not a valid scope token`) })
  return {
    initialAccessTokens: tokens,
    open,
    allowPrivateNetworkUris: option.optional(o.allowPrivateNetworkUris, 'allowPrivateNetworkUris', option.boolean, false),
    grantTypes: option.optional(o.grantTypes, 'grantTypes', option.stringArray, DEFAULT_GRANT_TYPES),
    scopes,
    maxRegistrationsPerAddress: option.optional(o.maxRegistrationsPerAddress, 'maxRegistrationsPerAddress', (v, p) => option.integer(v, p, 1, 1_000_000), 20),
  }
}
