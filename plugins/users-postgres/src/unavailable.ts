import { StoreUnavailableError } from '@grantd/core'

/**
 * SQLSTATE classes that mean "the database cannot serve us right now" rather than "this
 * query is wrong": 08 connection exception, 53 insufficient resources, 57 operator
 * intervention (admin shutdown, statement_timeout's query_canceled), 58 system error.
 */
const UNAVAILABLE_CLASSES = new Set(['08', '28', '53', '57', '58'])
/**
 * The database answers but cannot serve grantd: its database or schema or tables are gone
 * (dropped, or a wrong `schema` after a restore). An operator must act; until then sign-ins
 * answer 503 like an outage, never 500. Class 28 above: the credentials stopped working.
 */
const UNUSABLE_CODES = new Set(['3D000', '3F000', '42P01'])
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOENT'])
/** node-postgres reports these as plain Errors without a code. */
const DRIVER_MESSAGES = [/timeout exceeded when trying to connect/i, /query read timeout/i, /connection terminated/i, /client has encountered a connection error/i, /cannot use a pool after calling end/i, /connection timeout/i]

/** Whether `err` means the database is unreachable or too slow (answer 503), not a bug. */
export function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code)) return true
    if (/^[0-9A-Z]{5}$/.test(code) && (UNAVAILABLE_CLASSES.has(code.slice(0, 2)) || UNUSABLE_CODES.has(code))) return true
  }
  return DRIVER_MESSAGES.some((re) => re.test(err.message))
}

/** The core answers StoreUnavailableError with 503 temporarily_unavailable (token endpoint) or an error page (login). */
export function toUnavailable(err: unknown): StoreUnavailableError {
  return new StoreUnavailableError(`users-postgres: database unavailable (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`, { cause: err })
}
