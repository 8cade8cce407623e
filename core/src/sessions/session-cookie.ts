import { createHmac, timingSafeEqual } from 'node:crypto'
import { randomToken } from '../tokens/tokens.js'
import type { RouteContext } from '../interfaces.js'

export const SESSION_COOKIE = 'grantd_session'
const SID = /^[A-Za-z0-9_-]{22}$/
const SECRET = /^[A-Za-z0-9_-]{43}$/

/**
 * The SSO cookie: `<sid>.<secret>.<mac>`. The sid is public (ID tokens carry it); the
 * secret is what proves the browser holds the session, and the store keeps only its hash.
 * The MAC (HMAC-SHA256 with `cookies.keys`, first signs, all verify) lets a forged cookie
 * be refused without a store round trip.
 */
export class SessionCookie {
  private readonly keys: readonly Buffer[]

  constructor(keys: readonly string[]) {
    if (keys.length === 0) throw new Error('no cookie keys')
    this.keys = keys.map((k) => Buffer.from(k, 'utf8'))
  }

  /** A fresh public session id (128 bits) or cookie secret (256 bits). */
  static sid(): string {
    return randomToken(16)
  }

  static secret(): string {
    return randomToken(32)
  }

  mac(purpose: string, value: string, key = this.keys[0]!): Buffer {
    return createHmac('sha256', key).update(`${purpose}\u0000${value}`).digest()
  }

  /** Constant-time check of a base64url MAC against every key. */
  verify(purpose: string, value: string, mac: string): boolean {
    const given = Buffer.from(mac, 'base64url')
    let ok = false
    for (const key of this.keys) {
      const expected = this.mac(purpose, value, key)
      if (given.length === expected.length && timingSafeEqual(given, expected)) ok = true
    }
    return ok
  }

  read(ctx: RouteContext): { sid: string; secret: string } | undefined {
    const raw = readCookie(ctx, SESSION_COOKIE)
    if (raw === undefined) return undefined
    const [sid, secret, mac, ...rest] = raw.split('.')
    if (rest.length > 0 || sid === undefined || secret === undefined || mac === undefined || !SID.test(sid) || !SECRET.test(secret)) return undefined
    return this.verify(SESSION_COOKIE, `${sid}.${secret}`, mac) ? { sid, secret } : undefined
  }

  /** HttpOnly, SameSite=Lax (SPEC §6), Secure whenever the public URL is https, scoped to `/connect`. */
  write(ctx: RouteContext, sid: string, secret: string, maxAge: number): void {
    const value = `${sid}.${secret}.${this.mac(SESSION_COOKIE, `${sid}.${secret}`).toString('base64url')}`
    ctx.append('Set-Cookie', `${SESSION_COOKIE}=${value}; Path=${cookiePath(ctx.state.issuer)}; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${ctx.state.secure ? '; Secure' : ''}`)
  }

  clear(ctx: RouteContext): void {
    ctx.append('Set-Cookie', `${SESSION_COOKIE}=; Path=${cookiePath(ctx.state.issuer)}; Max-Age=0; HttpOnly; SameSite=Lax${ctx.state.secure ? '; Secure' : ''}`)
  }
}

function cookiePath(issuer: string): string {
  return `${new URL(issuer).pathname.replace(/\/+$/, '')}/connect`
}

/** The raw value of cookie `name` (the first one when repeated). */
export function readCookie(ctx: RouteContext, name: string): string | undefined {
  const header = ctx.get('cookie')
  if (!header || header.length > 8192) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim()
      return value.length > 0 && value.length <= 512 ? value : undefined
    }
  }
  return undefined
}
