import type { Next } from 'koa'
import type { Client, RouteContext } from '../interfaces.js'

/**
 * CORS for the endpoints a browser-based client calls itself (token, revocation,
 * userinfo): an origin is allowed when it is the origin of a registered redirect_uri.
 * Credentials (cookies) are never allowed; these endpoints authenticate by parameters
 * and Bearer tokens. Introspection is server-to-server and gets no CORS.
 */
export function browserOrigins(clients: Iterable<Client>): ReadonlySet<string> {
  const origins = new Set<string>()
  for (const client of clients) {
    for (const uri of client.redirect_uris) {
      try {
        const { origin } = new URL(uri)
        if (origin !== 'null') origins.add(origin)
      } catch {
        // config validation already refused malformed URIs
      }
    }
  }
  return origins
}

/** Allowed origins: a set, or a check that may ask the store (registered clients' origins). */
export interface OriginPolicy {
  has(origin: string): boolean | Promise<boolean>
}

export function cors(origins: OriginPolicy, methods: string): (ctx: RouteContext, next: Next) => Promise<void> {
  return async (ctx, next) => {
    const origin = ctx.get('origin')
    const allowed = origin !== '' && (await origins.has(origin))
    if (allowed) {
      ctx.set('Access-Control-Allow-Origin', origin)
      ctx.vary('Origin')
    }
    if (ctx.method === 'OPTIONS') {
      ctx.set('Cache-Control', 'no-store')
      if (allowed) {
        ctx.set('Access-Control-Allow-Methods', methods)
        ctx.set('Access-Control-Allow-Headers', 'Authorization, Content-Type, DPoP')
        ctx.set('Access-Control-Max-Age', '600')
      }
      ctx.status = 204
      return
    }
    if (allowed) ctx.set('Access-Control-Expose-Headers', 'WWW-Authenticate, DPoP-Nonce')
    await next()
  }
}
