// @ts-check
/**
 * A claims hook (SPEC §11): a user's roles come from an external HTTP service, not from the
 * user store. Access tokens for an API resource get `roles` (the API authorizes with them);
 * ID tokens and userinfo get them only when the `roles` scope was granted.
 *
 * Options: { "url": "http://127.0.0.1:5100/roles", "timeoutMs": 2000 }
 * The service answers GET {url}?sub=SUB with { "roles": ["admin", ...] }.
 */
import { definePlugin, OAuthError } from '@grantd/core'

export default definePlugin({
  name: 'roles-from-service',
  /** @param {unknown} raw */
  options(raw) {
    const o = /** @type {Record<string, unknown>} */ (raw ?? {})
    if (typeof o.url !== 'string' || !URL.canParse(o.url)) throw new Error('url: expected an absolute URL')
    const timeoutMs = o.timeoutMs ?? 2000
    if (typeof timeoutMs !== 'number' || timeoutMs < 1) throw new Error('timeoutMs: expected a positive number')
    return { url: o.url, timeoutMs }
  },
  register(host) {
    const { url, timeoutMs } = host.options

    /** @param {string} sub @returns {Promise<string[]>} */
    async function rolesOf(sub) {
      const target = new URL(url)
      target.searchParams.set('sub', sub)
      let res
      try {
        res = await fetch(target, { signal: AbortSignal.timeout(timeoutMs) })
      } catch {
        res = undefined
      }
      // Fail closed: no token without the roles the API relies on, and a retryable error, not a 500.
      if (!res?.ok) throw new OAuthError('temporarily_unavailable', 'the roles service is unavailable', { status: 503 })
      const body = /** @type {{ roles?: unknown }} */ (await res.json())
      return Array.isArray(body.roles) ? body.roles.filter((r) => typeof r === 'string') : []
    }

    // Declaring the names lets the core refuse a registered one (sub, aud, …) at start.
    host.claims(async ({ kind, user, scope, resource }) => {
      if (!user) return undefined // client_credentials: no user, no roles
      const wanted = kind === 'access_token' ? resource !== undefined : scope.includes('roles')
      return wanted ? { roles: await rolesOf(user.sub) } : undefined
    }, { claims: ['roles'] })
  },
})
