import type { JsonObject } from '@grantd/core'

/** OIDC Core §5.4: which standard claims each scope releases. */
export const SCOPE_CLAIMS: Readonly<Record<string, readonly string[]>> = {
  profile: ['name', 'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username', 'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at'],
  email: ['email', 'email_verified'],
  address: ['address'],
  phone: ['phone_number', 'phone_number_verified'],
}

/** What an autoProvisioned user keeps of the upstream claims: the standard ones only. */
export function standardClaims(claims: JsonObject): JsonObject {
  const kept: JsonObject = {}
  for (const names of Object.values(SCOPE_CLAIMS)) for (const n of names) if (claims[n] !== undefined) kept[n] = claims[n]!
  return kept
}
