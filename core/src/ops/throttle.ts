import { OAuthError } from '../errors.js'
import type { PasswordLogin, Store, User, UserService } from '../interfaces.js'
import { secretKey } from '../tokens/tokens.js'

/** The `throttle` section of the config file (SPEC §5 password grant, §6 login form, §9). */
export interface ThrottleSettings {
  /** Failed sign-ins per folded username and per account (the user service's `resolveAccount`) within the window; 0 turns the limit off. */
  readonly maxFailuresPerUser: number
  /** Failed sign-ins, and separately failed client authentications, per client address within the window; 0 turns the limit off. */
  readonly maxFailuresPerAddress: number
  /** Failed client authentications (client secrets) per client_id within the window; 0 turns the limit off. */
  readonly maxFailuresPerClient: number
  /** Seconds a counter lives, from the first failure it counts. */
  readonly windowSeconds: number
}

/** NIST SP 800-63B §5.2.2 caps consecutive failures at 100; Keycloak locks after 30. */
export const DEFAULT_THROTTLE: ThrottleSettings = { maxFailuresPerUser: 20, maxFailuresPerAddress: 100, maxFailuresPerClient: 20, windowSeconds: 900 }

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
 * Usernames compare as Unicode NFKC with full case folding (the NFKC_Casefold idea, RFC 8265
 * §3.3's "UsernameCaseMapped" spirit): `ALICE`, `alice` and full-width `ａｌｉｃｅ` are one
 * account, and so are `Straße` and `STRASSE`, `rene\u0301` and `RENÉ`. JavaScript has no case
 * fold, so upper- then lower-casing stands in for it (ß→ss as Unicode's full folding does; a
 * final ς becomes σ), with NFKC on both sides because case mapping can produce sequences NFKC
 * would compose. The throttle counts unknown names with it, and user services should match
 * usernames with it (users-static and users-postgres do).
 */
export function normalizeUsername(username: string): string {
  return username.normalize('NFKC').toUpperCase().toLowerCase().replaceAll('\u03c2', '\u03c3').normalize('NFKC')
}

/**
 * A counter that bounds how many attempts are *checked*, not how many are recorded after
 * the fact: {@link reserve} counts the attempt first (one atomic `increment` in the store)
 * and only an attempt whose count is within the limit may go on to be checked; {@link
 * release} gives the reservation back when the attempt turned out not to be a failure.
 * N concurrent attempts therefore get at most `max` checks, in one process or many.
 */
export class FailureCounter {
  constructor(private readonly store: Store, private readonly max: number, private readonly windowSeconds: number) {}

  get enabled(): boolean {
    return this.max > 0
  }

  /** Count an attempt; false when it is over the limit and must be refused unchecked (it stays counted). */
  async reserve(key: string): Promise<boolean> {
    if (!this.enabled) return true
    return (await this.store.increment(key, this.windowSeconds)) <= this.max
  }

  /** Whether the limit is already reached, without counting anything (for attempts that cannot fail). */
  async isOver(key: string): Promise<boolean> {
    if (!this.enabled) return false
    const count = Number(await this.store.get(key))
    return Number.isFinite(count) && count >= this.max
  }

  /** Give one reservation back (the attempt succeeded or could not be checked). */
  async release(key: string): Promise<void> {
    if (this.enabled) await this.store.decrement(key)
  }

  /** Forget every failure (a user's successful sign-in). */
  async clear(key: string): Promise<void> {
    if (this.enabled) await this.store.delete(key)
  }
}

/**
 * Brute-force protection (RFC 9700 §4.14 spirit, Keycloak's brute-force detection, SPEC §9)
 * around whatever user service is configured, so every caller of `authenticate` — the
 * password grant, the login form, any plugin — is covered.
 *
 * Each sign-in is reserved before its password is checked, per client address first (so
 * an address over its limit makes no lookup and creates no per-account counter), then per
 * username (NFKC + lower-cased, never the tenant or any other optional part of the
 * request) and per account: the user service's `resolveAccount` (its `sub`, after its own
 * tenant, Unicode and case rules), when it names one.
 * Unknown usernames are counted like known ones: the throttle must not tell which accounts
 * exist. A reservation over any limit is refused unchecked, even with the right password.
 * A success clears the username's and the account's counters and gives the address its
 * reservation back (one valid account must not buy an attacker more guesses against
 * others, nor may signing in use up an address's budget); a failure keeps them all.
 */
export class SignInThrottle {
  private readonly perUser: FailureCounter
  private readonly perAddress: FailureCounter

  constructor(store: Store, private readonly settings: ThrottleSettings, private readonly users: UserService) {
    this.perUser = new FailureCounter(store, settings.maxFailuresPerUser, settings.windowSeconds)
    this.perAddress = new FailureCounter(store, settings.maxFailuresPerAddress, settings.windowSeconds)
  }

  /**
   * The counters of this sign-in: always the folded username's, plus the account's when
   * the user service names one. Both, not either: were a resolved account counted only
   * under its `sub`, locking a name through a spelling that matches no account (another
   * tenant) would lock unknown names but not known ones — an oracle for which names exist.
   */
  private async userKeys(login: PasswordLogin): Promise<string[]> {
    const nameKey = `throttle:user:${secretKey(normalizeUsername(login.username))}`
    const sub = this.users.resolveAccount ? await this.users.resolveAccount({ username: login.username, context: login.context, client: login.client }) : undefined
    return sub !== undefined ? [nameKey, `throttle:account:${secretKey(sub)}`] : [nameKey]
  }

  /** Reserve the attempt, `check` the password with the user service unless a limit is reached, settle the reservation. */
  async authenticate(login: PasswordLogin, check: (login: PasswordLogin) => Promise<User | undefined>): Promise<User | undefined> {
    const refused = () => signInThrottled(this.settings.windowSeconds)
    const addressKey = login.clientIp && this.perAddress.enabled ? `throttle:addr:${secretKey(login.clientIp)}` : undefined
    if (addressKey && !(await this.perAddress.reserve(addressKey))) throw refused()
    let userKeys: string[] = []
    let user: User | undefined
    try {
      if (this.perUser.enabled) {
        userKeys = await this.userKeys(login)
        const within = await Promise.all(userKeys.map((key) => this.perUser.reserve(key)))
        if (within.includes(false)) throw refused()
      }
      user = await check(login)
    } catch (err) {
      // A refusal stays counted; a user service that could not answer (database down) was no guess.
      if (!isSignInThrottled(err)) await this.giveBack(addressKey, userKeys)
      throw err
    }
    if (user) {
      await Promise.all([...userKeys.map((key) => this.perUser.clear(key)), addressKey ? this.perAddress.release(addressKey) : undefined])
    }
    return user
  }

  private async giveBack(addressKey: string | undefined, userKeys: readonly string[]): Promise<void> {
    try {
      await Promise.all([addressKey ? this.perAddress.release(addressKey) : undefined, ...userKeys.map((key) => this.perUser.release(key))])
    } catch {
      // The store is failing too: the original error is the one to report.
    }
  }
}

/**
 * The user service with `authenticate` throttled; every other method is the service's own.
 * The service the plugin provided stays reachable as `registry.users`.
 */
export function throttleSignIns(users: UserService, store: Store, settings: ThrottleSettings): UserService {
  if (settings.maxFailuresPerUser <= 0 && settings.maxFailuresPerAddress <= 0) return users
  const throttle = new SignInThrottle(store, settings, users)
  const throttled: UserService = {
    authenticate: (login) => throttle.authenticate(login, (l) => users.authenticate(l)),
    authenticateExternal: (login) => users.authenticateExternal(login),
    findById: (sub, context) => users.findById(sub, context),
    claims: (user, scopes) => users.claims(user, scopes),
    isActive: (sub, context) => users.isActive(sub, context),
  }
  const accepts = users.acceptsPasswordIdp
  if (accepts) throttled.acceptsPasswordIdp = (idp, client) => accepts.call(users, idp, client)
  const resolve = users.resolveAccount
  if (resolve) throttled.resolveAccount = (login) => resolve.call(users, login)
  return throttled
}
