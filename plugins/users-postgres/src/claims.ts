import type { JsonObject, JsonValue } from '@grantd/core'

/** OIDC Core §5.4: which standard claims each scope releases. */
export const SCOPE_CLAIMS: Readonly<Record<string, readonly string[]>> = {
  profile: ['name', 'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username', 'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at'],
  email: ['email', 'email_verified'],
  address: ['address'],
  phone: ['phone_number', 'phone_number_verified'],
}

/** The claims `scopes` release from a user's stored claims; `preferred_username` falls back to the username. */
export function releasedClaims(source: JsonObject, username: string | undefined, scopes: readonly string[]): JsonObject {
  const out: JsonObject = {}
  for (const scope of scopes) {
    for (const name of SCOPE_CLAIMS[scope] ?? []) {
      const value: JsonValue | undefined = source[name]
      if (value !== undefined) out[name] = value
    }
  }
  if (scopes.includes('profile') && out.preferred_username === undefined && username !== undefined) out.preferred_username = username
  return out
}

/** What an autoProvisioned user keeps of the upstream claims: the standard ones only. */
export function standardClaims(claims: JsonObject): JsonObject {
  const kept: JsonObject = {}
  for (const names of Object.values(SCOPE_CLAIMS)) for (const n of names) if (claims[n] !== undefined) kept[n] = claims[n]!
  return kept
}
