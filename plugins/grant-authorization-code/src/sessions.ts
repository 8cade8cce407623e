import { secretKey, type RouteContext, type Store } from '@grantd/core'
import { CookieSigner, newCookieValue, pathBelowIssuer, readCookie, setCookie } from './cookies.js'

export const SESSION_COOKIE = 'grantd_session'

/** What the server remembers about a signed-in browser (the cookie holds only a signed random id). */
export interface SessionRecord {
  sub: string
  /** Seconds since the epoch (OIDC Core `auth_time`). */
  auth_time: number
  amr?: string[]
  acr?: string
  /** The external provider the user signed in with (`idp:NAME`), if any. */
  idp?: string
  tenant?: string
}

/**
 * Login sessions, kept in the store (so every grantd process sharing it knows them) under
 * the hash of a random id; the browser holds the id in an HttpOnly, SameSite=Lax cookie
 * signed with `cookies.keys`.
 */
export class Sessions {
  constructor(private readonly store: () => Store, private readonly signer: CookieSigner, private readonly ttl: number) {}

  async read(ctx: RouteContext): Promise<SessionRecord | undefined> {
    const cookie = readCookie(ctx, SESSION_COOKIE)
    const id = cookie === undefined ? undefined : this.signer.unsign(SESSION_COOKIE, cookie)
    if (id === undefined) return undefined
    const raw = await this.store().get(`sess:${secretKey(id)}`)
    if (raw === undefined) return undefined
    try {
      const record = JSON.parse(raw) as SessionRecord
      return typeof record.sub === 'string' && typeof record.auth_time === 'number' ? record : undefined
    } catch {
      return undefined
    }
  }

  /** A new session id on every sign-in (no session fixation); the previous session is ended. */
  async start(ctx: RouteContext, record: SessionRecord): Promise<void> {
    const prior = readCookie(ctx, SESSION_COOKIE)
    const priorId = prior === undefined ? undefined : this.signer.unsign(SESSION_COOKIE, prior)
    if (priorId !== undefined) await this.store().delete(`sess:${secretKey(priorId)}`)
    const id = newCookieValue()
    await this.store().put(`sess:${secretKey(id)}`, JSON.stringify(record), this.ttl)
    setCookie(ctx, SESSION_COOKIE, this.signer.sign(SESSION_COOKIE, id), { path: pathBelowIssuer(ctx.state.issuer, '/connect'), maxAge: this.ttl })
  }
}
