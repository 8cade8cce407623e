import type { AcrContext, AcrHandler } from '../interfaces.js'
import { OAuthError } from '../errors.js'

export const MAX_ACR_VALUES_LENGTH = 1024

/**
 * SPEC §6 / IdentityServer: split on spaces, the first value per prefix wins, values
 * whose prefix no handler claims stay in `raw` untouched (never an error).
 */
export function parseAcrValues(value: string | undefined, handlers: ReadonlyMap<string, AcrHandler>): AcrContext {
  if (value === undefined || value === '') return { raw: [] }
  if (value.length > MAX_ACR_VALUES_LENGTH) throw new OAuthError('invalid_request', 'acr_values is too long')
  const raw = value.split(' ').filter((v) => v !== '')
  const context: Record<string, unknown> = { raw }
  const seen = new Set<string>()
  for (const item of raw) {
    const colon = item.indexOf(':')
    if (colon <= 0) continue
    const prefix = item.slice(0, colon)
    if (seen.has(prefix)) continue
    const handler = handlers.get(prefix)
    if (!handler) continue
    seen.add(prefix)
    const part = handler.parse(item.slice(colon + 1))
    if (part) {
      for (const [k, v] of Object.entries(part)) if (k !== 'raw') context[k] = v
    }
  }
  return context as AcrContext
}
