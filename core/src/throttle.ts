import { OAuthError } from './errors.js'
import type { PasswordLogin, Store, User, UserService } from './interfaces.js'
import { secretKey } from './tokens.js'

/** The `throttle` section of the config file (SPEC §5 password grant, §6 login form). */
export interface ThrottleSettings {
  /** Failed sign-ins per (tenant, username) within the window; 0 turns the limit off. */
  readonly maxFailuresPerUser: number
  /** Failed sign-ins per client address within the window; 0 turns the limit off. */
  readonly maxFailuresPerAddress: number
  /** Seconds a counter lives, from the first failure it counts. */
  readonly windowSeconds: number
}

/** NIST SP 800-63B §5.2.2 caps consecutive failures at 100; Keycloak locks after 30. */
export const DEFAULT_THROTTLE: ThrottleSettings = { maxFailuresPerUser: 20, maxFailuresPerAddress: 100, windowSeconds: 900 }

/** One text for both limits: the answer never says whether the username or the address tripped it. */
export const SIGN_IN_THROTTLED = 'too many failed sign-in attempts; try again later'

const THROTTLED = Symbol.for('grantd.SignInThrottled')

/**
 * The refusal of a throttled sign-in: an `invalid_grant` at the token endpoint; the login
 * page recognises it with {@link isSignInThrottled} and shows a message instead.
 */
export function signInThrottled(retryAfterSeconds: number): OAuthError {
  const err = new OAuthError('invalid_grant', SIGN_IN_THROTTLED, { headers: { 'Retry-After': String(retryAfterSeconds) }, detail: 'sign-in throttled' })
  Object.defineProperty(err, THROTTLED, { value: true })
  return err
}

export function isSignInThrottled(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { [THROTTLED]?: unknown })[THROTTLED] === true
}

/**
 * Brute-force protection (RFC 9700 §4.14 spirit, Keycloak's brute-force detection) around
 * whatever user service is configured, so every caller of `authenticate` — the password
 * grant, the login form, any plugin — is covered.
 *
 * Failures are counted in the store (`increment` with a TTL), so the limits hold across
 * every grantd process sharing it: per (tenant, lowercased username), which stops guessing
 * one account from many addresses, and per client address, which stops spraying many
 * accounts from one. A throttled attempt is refused before the password is checked, even
 * a correct one. A success clears the username's counter, never the address's (one valid
 * account must not buy an attacker more guesses). Unknown usernames count like known
 * ones: the throttle must not tell which accounts exist.
 */
export class SignInThrottle {
  constructor(private readonly store: Store, private readonly settings: ThrottleSettings) {}

  private userKey(login: PasswordLogin): string {
    const tenant = typeof login.context.tenant === 'string' ? login.context.tenant : ''
    return `throttle:user:${secretKey(`${tenant}\u0000${login.username.toLowerCase()}`)}`
  }

  private async over(key: string, max: number): Promise<boolean> {
    if (max <= 0) return false
    const count = Number(await this.store.get(key))
    return Number.isFinite(count) && count >= max
  }

  /** `check` the password with the user service unless a limit is reached; count the outcome. */
  async authenticate(login: PasswordLogin, check: (login: PasswordLogin) => Promise<User | undefined>): Promise<User | undefined> {
    const { maxFailuresPerUser, maxFailuresPerAddress, windowSeconds } = this.settings
    const userKey = this.userKey(login)
    const addressKey = login.clientIp ? `throttle:addr:${secretKey(login.clientIp)}` : undefined
    const [userOver, addressOver] = await Promise.all([
      this.over(userKey, maxFailuresPerUser),
      addressKey ? this.over(addressKey, maxFailuresPerAddress) : false,
    ])
    if (userOver || addressOver) throw signInThrottled(windowSeconds)

    const user = await check(login)
    if (user) {
      if (maxFailuresPerUser > 0) await this.store.delete(userKey)
      return user
    }
    await Promise.all([
      maxFailuresPerUser > 0 ? this.store.increment(userKey, windowSeconds) : undefined,
      addressKey && maxFailuresPerAddress > 0 ? this.store.increment(addressKey, windowSeconds) : undefined,
    ])
    return undefined
  }
}

/**
 * The user service with `authenticate` throttled; every other method is the service's own.
 * The service the plugin provided stays reachable as `registry.users`.
 */
export function throttleSignIns(users: UserService, store: Store, settings: ThrottleSettings): UserService {
  if (settings.maxFailuresPerUser <= 0 && settings.maxFailuresPerAddress <= 0) return users
  const throttle = new SignInThrottle(store, settings)
  const throttled: UserService = {
    authenticate: (login) => throttle.authenticate(login, (l) => users.authenticate(l)),
    authenticateExternal: (login) => users.authenticateExternal(login),
    findById: (sub, context) => users.findById(sub, context),
    claims: (user, scopes) => users.claims(user, scopes),
    isActive: (sub, context) => users.isActive(sub, context),
  }
  const accepts = users.acceptsPasswordIdp
  if (accepts) throttled.acceptsPasswordIdp = (idp, client) => accepts.call(users, idp, client)
  return throttled
}
