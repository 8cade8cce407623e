import { OAuthError } from '../errors.js'

/** Scope math (RFC 6749 §3.3): space-delimited, case-sensitive, order-insensitive sets. */

const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/

/** Split a scope string; `undefined` when absent. Throws on characters RFC 6749 §3.3 forbids. */
export function parseScope(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined
  if (value.length > 2048) throw new OAuthError('invalid_request', 'scope is too long')
  const out: string[] = []
  for (const token of value.split(' ')) {
    if (token === '') continue
    if (!SCOPE_TOKEN.test(token)) throw new OAuthError('invalid_scope', 'scope contains a character RFC 6749 §3.3 forbids')
    if (!out.includes(token)) out.push(token)
    if (out.length > 64) throw new OAuthError('invalid_request', 'too many scopes')
  }
  return out
}

/** True when every requested scope is allowed. */
export function isSubset(requested: readonly string[], allowed: ReadonlySet<string> | readonly string[]): boolean {
  const set = allowed instanceof Set ? allowed : new Set(allowed as readonly string[])
  for (const s of requested) if (!set.has(s)) return false
  return true
}

export function formatScope(scope: readonly string[]): string {
  return scope.join(' ')
}

export function isValidScopeToken(token: string): boolean {
  return SCOPE_TOKEN.test(token)
}
