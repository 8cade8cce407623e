import { createHmac, timingSafeEqual } from 'node:crypto'
import { randomToken, type RouteContext } from '@grantd/core'

/**
 * Signed cookies and the login form's CSRF token, keyed by `cookies.keys` from the config
 * (the first key signs, every key verifies, so keys can be rotated).
 */
export class CookieSigner {
  private readonly keys: readonly Buffer[]

  constructor(keys: readonly string[]) {
    if (keys.length === 0) throw new Error('no cookie keys')
    this.keys = keys.map((k) => Buffer.from(k, 'utf8'))
  }

  private mac(key: Buffer, purpose: string, value: string): Buffer {
    return createHmac('sha256', key).update(`${purpose}\u0000${value}`).digest()
  }

  /** `value.mac`; `purpose` (the cookie name) keeps one cookie's signature from validating another. */
  sign(purpose: string, value: string): string {
    return `${value}.${this.mac(this.keys[0]!, purpose, value).toString('base64url')}`
  }

  /** The value of a signed string, or undefined when no key signed it. */
  unsign(purpose: string, signed: string): string | undefined {
    const dot = signed.lastIndexOf('.')
    if (dot <= 0) return undefined
    const value = signed.slice(0, dot)
    return this.matches(purpose, value, signed.slice(dot + 1)) ? value : undefined
  }

  /** Constant-time check of a MAC (base64url) over `value` against every key. */
  matches(purpose: string, value: string, mac: string): boolean {
    const given = Buffer.from(mac, 'base64url')
    let ok = false
    for (const key of this.keys) {
      const expected = this.mac(key, purpose, value)
      if (given.length === expected.length && timingSafeEqual(given, expected)) ok = true
    }
    return ok
  }

  macOf(purpose: string, value: string): string {
    return this.mac(this.keys[0]!, purpose, value).toString('base64url')
  }
}

export function newCookieValue(): string {
  return randomToken(32)
}

/** The core's cookie reader, re-exported for this plugin's callers (grant-device-code). */
export { readCookie } from '@grantd/core'

/** The issuer's path (e.g. `/auth` behind a prefixing proxy) joined with `suffix`. */
export function pathBelowIssuer(issuer: string, suffix: string): string {
  return `${new URL(issuer).pathname.replace(/\/+$/, '')}${suffix}`
}

export interface CookieOptions {
  path: string
  maxAge: number
}

/** HttpOnly, SameSite=Lax (SPEC §6), Secure whenever the public URL is https. */
export function setCookie(ctx: RouteContext, name: string, value: string, options: CookieOptions): void {
  const secure = ctx.state.secure ? '; Secure' : ''
  ctx.append('Set-Cookie', `${name}=${value}; Path=${options.path}; Max-Age=${options.maxAge}; HttpOnly; SameSite=Lax${secure}`)
}

export function clearCookie(ctx: RouteContext, name: string, path: string): void {
  const secure = ctx.state.secure ? '; Secure' : ''
  ctx.append('Set-Cookie', `${name}=; Path=${path}; Max-Age=0; HttpOnly; SameSite=Lax${secure}`)
}
