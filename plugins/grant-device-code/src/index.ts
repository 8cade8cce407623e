import {
  definePlugin, formatScope, isSignInThrottled, isSubset, OAuthError, option, parseScope, randomToken, readForm, secretKey, StoreUnavailableError,
  type Client, type FormParams, type Grant, type GrantRequest, type PluginHost, type RouteContext, type Session, type User,
} from '@grantd/core'
import {
  CookieSigner, describeScope, errorPage, loginPage, newCookieValue, pathBelowIssuer, readCookie, setCookie, setPageHeaders,
} from '@grantd/grant-authorization-code'
import { DeviceCodes, type DeviceRecord } from './device-codes.js'
import { codeEntryPage, confirmPage, donePage } from './pages.js'
import { formatUserCode, normalizeUserCode } from './user-code.js'

export { formatUserCode, generateUserCode, normalizeUserCode, USER_CODE_ALPHABET, USER_CODE_LENGTH } from './user-code.js'

/** RFC 8628 §7.2 grant type URN. */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code'
export const DEVICE_AUTHORIZATION_PATH = '/connect/deviceauthorization'
/** RFC 8628 §3.2 `verification_uri`: short, for typing. */
export const VERIFICATION_PATH = '/device'
/** Below `/connect`, where the SSO session cookie is sent: the sign-in and the confirmation. */
export const INTERACTION_PATH = '/connect/device'
export const LOGIN_PATH = '/connect/device/login'
export const CONFIRM_PATH = '/connect/device/confirm'

export interface DeviceCodeOptions {
  /** Seconds the device code and user code live (RFC 8628 §3.2 `expires_in`). */
  expiresIn: number
  /** Seconds a device waits between polls (RFC 8628 §3.2 `interval`). */
  interval: number
  /** Wrong user codes per client address and throttle window before the page answers 429. */
  maxUserCodeFailures: number
  /** Seconds an SSO session started on the device page lasts. */
  sessionTtl: number
  /** Device authorizations one client address may start within `expiresIn` (SPEC §9: anonymous state is capped). */
  maxPendingPerAddress: number
}

const DEFAULTS: DeviceCodeOptions = { expiresIn: 600, interval: 5, maxUserCodeFailures: 10, sessionTtl: 8 * 3600, maxPendingPerAddress: 100 }

const BOUNDS: Record<keyof DeviceCodeOptions, [number, number]> = {
  expiresIn: [1, 3600], interval: [1, 60], maxUserCodeFailures: [1, 1000], sessionTtl: [60, 30 * 86400], maxPendingPerAddress: [1, 100_000],
}

/** The config file's `options`, read with the core's option readers (errors name the key). */
export function parseDeviceCodeOptions(raw: unknown): DeviceCodeOptions {
  const o = option.object(raw ?? {}, '(options)')
  option.only(o, '', Object.keys(BOUNDS))
  const out = { ...DEFAULTS }
  for (const [k, v] of Object.entries(o)) out[k as keyof DeviceCodeOptions] = option.integer(v, k, ...BOUNDS[k as keyof DeviceCodeOptions])
  return out
}

/** CSRF binding of the device pages to one browser (RFC 9700 §4.7). */
const BROWSER_COOKIE = 'grantd_device'
const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/
const TICKET = /^([A-Za-z0-9_-]{43})\.(\d{1,12})\.([BCDFGHJKLMNPQRSTVWXZ]{8})\.([A-Za-z0-9_-]{43})$/

/** Signalled by a page handler that already wrote its answer. */
class PageAnswer extends Error {}

/**
 * The device authorization grant (RFC 8628): the device authorization endpoint, the
 * verification page where the user types the code, signs in (the core's SSO sessions) and
 * confirms, and the token endpoint's polling grant. The plugin decides; the core issues.
 */
export default definePlugin<DeviceCodeOptions>({
  name: 'grant-device-code',
  options: parseDeviceCodeOptions,
  register(host: PluginHost<DeviceCodeOptions>) {
    const { expiresIn, interval, maxUserCodeFailures, sessionTtl, maxPendingPerAddress } = host.options
    const window = host.config.throttleWindowSeconds ?? 900
    const signer = new CookieSigner(host.config.cookieKeys)
    const store = () => host.resolve('store')
    const codes = new DeviceCodes(store, expiresIn)

    host.discovery((issuer) => ({ device_authorization_endpoint: `${issuer}${DEVICE_AUTHORIZATION_PATH}` }))

    /* ------------------------------------------- device authorization endpoint */

    // RFC 8628 §3.1–3.2: client-authenticated like the token endpoint; public clients by client_id.
    host.route('post', DEVICE_AUTHORIZATION_PATH, async (ctx) => {
      ctx.set('Cache-Control', 'no-store')
      ctx.set('Pragma', 'no-cache')
      const { client, params } = await host.resolve('clientAuth').readForm(ctx, { reads: ['scope'] })
      ctx.state.clientId = client.client_id
      if (!client.grant_types.includes(DEVICE_CODE_GRANT)) throw new OAuthError('unauthorized_client', `client is not allowed to use ${DEVICE_CODE_GRANT}`)
      const scope = parseScope(params.get('scope'))
      if (scope === undefined || scope.length === 0) throw new OAuthError('invalid_scope', 'scope is required')
      if (!isSubset(scope, client.scopes)) throw new OAuthError('invalid_scope', 'requested scope is not allowed for this client')
      // SPEC §9: public clients start these without a secret, so the records one address can create are capped.
      const started = await store().increment(`device-started:${secretKey(ctx.state.clientIp)}`, expiresIn)
      if (started > maxPendingPerAddress) {
        throw new OAuthError('slow_down', 'too many device authorizations from this address; try again later', { status: 429, headers: { 'Retry-After': String(expiresIn) } })
      }
      const issued = await codes.issue({ client_id: client.client_id, scope, iss: ctx.state.issuer, interval })
      const userCode = formatUserCode(issued.userCode)
      const verificationUri = `${ctx.state.issuer}${VERIFICATION_PATH}`
      host.log.info({ event: 'device.authorization', client_id: client.client_id, scope: formatScope(scope) }, 'device authorization started')
      ctx.body = {
        device_code: issued.deviceCode,
        user_code: userCode,
        verification_uri: verificationUri,
        verification_uri_complete: `${verificationUri}?user_code=${encodeURIComponent(userCode)}`,
        expires_in: expiresIn,
        interval,
      }
    })

    /* ----------------------------------------------------------- the pages */

    function page(ctx: RouteContext, status: number, title: string, message: string): void {
      setPageHeaders(ctx)
      ctx.status = status
      ctx.body = errorPage(title, message)
    }

    /** Pages never answer with JSON: every failure ends on an HTML page. */
    async function browserRoute(ctx: RouteContext, run: () => Promise<void>): Promise<void> {
      try {
        await run()
      } catch (err) {
        if (err instanceof PageAnswer) return
        if (err instanceof StoreUnavailableError) {
          host.log.warn({ err: err.message }, 'store unavailable on the device page')
          return page(ctx, 503, 'Temporarily unavailable', 'Connecting a device is temporarily unavailable. Please try again in a moment.')
        }
        if (err instanceof OAuthError) return page(ctx, err.status === 413 ? 413 : 400, 'Request failed', err.message)
        host.log.error({ err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) }, 'device page failed')
        page(ctx, 500, 'Something went wrong', 'Something went wrong while connecting your device.')
      }
    }

    /** A form posted to a page: each field at most once. */
    async function readPageForm(ctx: RouteContext): Promise<FormParams> {
      const params = await readForm(ctx)
      for (const name of params.names()) if (params.count(name) > 1) throw new OAuthError('invalid_request', 'a form field is repeated')
      return params
    }

    /** This browser's CSRF secret; a fresh one when it has none yet. */
    function browserOf(ctx: RouteContext, issuer: string, create: boolean): string | undefined {
      const existing = readCookie(ctx, BROWSER_COOKIE)
      if (existing !== undefined && COOKIE_VALUE.test(existing)) return existing
      if (!create) return undefined
      const fresh = newCookieValue()
      // The issuer's whole path: /device and /connect/device both see it.
      setCookie(ctx, BROWSER_COOKIE, fresh, { path: pathBelowIssuer(issuer, '/'), maxAge: expiresIn + 600 })
      return fresh
    }

    function showCodeForm(ctx: RouteContext, browser: string, view: { status?: number; error?: string; userCode?: string } = {}): void {
      const action = `${ctx.state.issuer}${VERIFICATION_PATH}`
      setPageHeaders(ctx, [action])
      ctx.status = view.status ?? 200
      ctx.body = codeEntryPage({
        action,
        csrf: signer.macOf('device-code', browser),
        ...(view.userCode !== undefined ? { userCode: view.userCode } : {}),
        ...(view.error !== undefined ? { error: view.error } : {}),
      })
    }

    // RFC 8628 §3.3: the verification page; `user_code` (verification_uri_complete) only fills the field in.
    host.route('get', VERIFICATION_PATH, (ctx) => browserRoute(ctx, async () => {
      const browser = browserOf(ctx, ctx.state.issuer, true)!
      const given = ctx.query.user_code
      const userCode = typeof given === 'string' && given.length <= 64 ? given : undefined
      showCodeForm(ctx, browser, userCode !== undefined ? { userCode } : {})
    }))

    host.route('post', VERIFICATION_PATH, (ctx) => browserRoute(ctx, async () => {
      const params = await readPageForm(ctx)
      const browser = browserOf(ctx, ctx.state.issuer, false)
      const csrf = params.get('csrf')
      if (browser === undefined || csrf === undefined || !signer.matches('device-code', browser, csrf)) {
        host.log.warn({}, 'device code form rejected: CSRF check failed')
        return page(ctx, 403, 'Request blocked', 'This form was not submitted from the page it was shown on. Open the address shown on your device again.')
      }
      const typed = params.get('user_code')
      if (typed === undefined) return showCodeForm(ctx, browser, { status: 400, error: 'Enter the code shown on your device.' })
      // RFC 8628 §5.1: user codes are guessable, so guesses are counted per address, reserved
      // before the code is looked up (N concurrent guesses never get more than the limit checked).
      const guessKey = `device-guess:${secretKey(ctx.state.clientIp)}`
      const guesses = await store().increment(guessKey, window)
      if (guesses > maxUserCodeFailures) {
        host.log.warn({ event: 'device.user_code.throttled' }, 'user code guessing throttled')
        ctx.set('Retry-After', String(window))
        return showCodeForm(ctx, browser, { status: 429, error: 'Too many wrong codes. Please wait a while and try again.' })
      }
      const userCode = normalizeUserCode(typed)
      const id = userCode === undefined ? undefined : await codes.idOfUserCode(userCode)
      const record = id === undefined ? undefined : await codes.get(id)
      const now = Math.floor(Date.now() / 1000)
      if (id === undefined || !record || record.status !== 'pending' || record.exp <= now || !(await host.resolve('clients').find(record.client_id))) {
        return showCodeForm(ctx, browser, { status: 400, error: 'That code is not valid or has expired. Check the code on your device.', userCode: typed.slice(0, 64) })
      }
      // A right code is no failure.
      await store().decrement(guessKey)
      ctx.status = 303
      ctx.redirect(`${ctx.state.issuer}${INTERACTION_PATH}?ticket=${encodeURIComponent(ticketFor(id, record, userCode!, browser))}`)
    }))

    /**
     * The ticket that carries the chosen authorization through sign-in and confirmation:
     * its record id, expiry and user code (shown on the confirmation page; the store keeps
     * only its hash), MAC'd together with this browser's secret (a ticket seen elsewhere is
     * useless without the HttpOnly cookie).
     */
    function ticketFor(id: string, record: DeviceRecord, userCode: string, browser: string): string {
      const body = `${id}.${record.exp}.${userCode}`
      return `${body}.${signer.macOf('device-ticket', `${body}.${browser}`)}`
    }

    /** The record a ticket names, for this browser, while pending; otherwise an error page is written. */
    async function openTicket(ctx: RouteContext, ticket: string | undefined): Promise<{ id: string; record: DeviceRecord; client: Client; browser: string; userCode: string }> {
      const match = ticket === undefined ? null : TICKET.exec(ticket)
      const browser = browserOf(ctx, ctx.state.issuer, false)
      if (!match || browser === undefined || !signer.matches('device-ticket', `${match[1]}.${match[2]}.${match[3]}.${browser}`, match[4]!)) {
        host.log.warn({}, 'device page rejected: ticket or CSRF check failed')
        page(ctx, 403, 'Request blocked', 'This page was not opened from the device page in this browser. Open the address shown on your device again.')
        throw new PageAnswer()
      }
      const id = match[1]!
      const record = await codes.get(id)
      const client = record ? await host.resolve('clients').find(record.client_id) : undefined
      if (!record || !client || record.status !== 'pending' || record.exp <= Math.floor(Date.now() / 1000)) {
        page(ctx, 400, 'This code has expired', 'The code expired or was already used. Start again on your device.')
        throw new PageAnswer()
      }
      ctx.state.clientId = client.client_id
      return { id, record, client, browser, userCode: match[3]! }
    }

    async function accountName(sub: string): Promise<string | undefined> {
      const user = await host.resolve('users').findById(sub, { raw: [] })
      if (!user) return undefined
      return typeof user.username === 'string' ? user.username : user.sub
    }

    function showLogin(ctx: RouteContext, ticket: string, client: Client, browser: string, view: { status?: number; error?: string; username?: string } = {}): void {
      const action = `${ctx.state.issuer}${LOGIN_PATH}`
      setPageHeaders(ctx, [action])
      ctx.status = view.status ?? 200
      ctx.body = loginPage({
        action,
        pendingId: ticket,
        csrf: signer.macOf('device-login', `${ticket}.${browser}`),
        clientName: client.client_name ?? client.client_id,
        notices: [],
        options: [],
        ...(view.username !== undefined ? { username: view.username } : {}),
        ...(view.error !== undefined ? { error: view.error } : {}),
      })
    }

    async function showConfirm(ctx: RouteContext, ticket: string, opened: { record: DeviceRecord; client: Client; userCode: string }, session: Session, account: string): Promise<void> {
      const action = `${ctx.state.issuer}${CONFIRM_PATH}`
      setPageHeaders(ctx, [action])
      ctx.body = confirmPage({
        action,
        ticket,
        xsrf: signer.macOf('device-confirm', `${ticket}.${session.sid}`),
        clientName: opened.client.client_name ?? opened.client.client_id,
        clientId: opened.client.client_id,
        userCode: formatUserCode(opened.userCode),
        account,
        scopes: opened.record.scope.map((name) => ({ name, description: describeScope(name, host.config.scopes) })),
        switchAccount: `${ctx.state.issuer}${INTERACTION_PATH}?ticket=${encodeURIComponent(ticket)}&switch=1`,
      })
    }

    // After a right code: sign in as in SPEC §6 (an SSO session answers at once), then confirm.
    host.route('get', INTERACTION_PATH, (ctx) => browserRoute(ctx, async () => {
      const given = ctx.query.ticket
      const ticket = typeof given === 'string' ? given : undefined
      const opened = await openTicket(ctx, ticket)
      // "Use another account" on the confirmation page asks for the login form again.
      const session = ctx.query.switch === '1' ? undefined : await host.resolve('sessions').current(ctx)
      const account = session ? await accountName(session.sub) : undefined
      if (session && account !== undefined) return showConfirm(ctx, ticket!, opened, session, account)
      showLogin(ctx, ticket!, opened.client, opened.browser)
    }))

    host.route('post', LOGIN_PATH, (ctx) => browserRoute(ctx, async () => {
      const params = await readPageForm(ctx)
      const ticket = params.get('pending')
      const opened = await openTicket(ctx, ticket)
      const csrf = params.get('csrf')
      if (csrf === undefined || !signer.matches('device-login', `${ticket}.${opened.browser}`, csrf)) {
        host.log.warn({ client_id: opened.client.client_id }, 'device login form rejected: CSRF check failed')
        return page(ctx, 403, 'Sign-in blocked', 'This sign-in form was not submitted from the page it was shown on. Open the address shown on your device again.')
      }
      const username = params.get('username')
      const password = params.get('password')
      if (username === undefined || password === undefined) {
        return showLogin(ctx, ticket!, opened.client, opened.browser, { status: 400, error: 'Enter your username and password.', ...(username !== undefined ? { username } : {}) })
      }
      if (username.length > 256 || password.length > 1024) return showLogin(ctx, ticket!, opened.client, opened.browser, { status: 401, error: 'The username or password is incorrect.' })
      let user: User | undefined
      try {
        // The core's user service: its brute-force limits (per account, per address) apply here too.
        user = await host.resolve('users').authenticate({ username, password, context: { raw: [] }, client: opened.client, clientIp: ctx.state.clientIp })
      } catch (err) {
        if (isSignInThrottled(err)) return showLogin(ctx, ticket!, opened.client, opened.browser, { status: 429, error: 'Too many failed sign-in attempts. Please wait a while and try again.', username })
        throw err
      }
      if (!user) return showLogin(ctx, ticket!, opened.client, opened.browser, { status: 401, error: 'The username or password is incorrect.', username })
      await host.resolve('sessions').start(ctx, {
        sub: user.sub, amr: ['pwd'], ttlSeconds: sessionTtl, ...(typeof user.tenant === 'string' ? { tenant: user.tenant } : {}),
      })
      ctx.status = 303
      ctx.redirect(`${ctx.state.issuer}${INTERACTION_PATH}?ticket=${encodeURIComponent(ticket!)}`)
    }))

    host.route('post', CONFIRM_PATH, (ctx) => browserRoute(ctx, async () => {
      const params = await readPageForm(ctx)
      const ticket = params.get('ticket')
      const opened = await openTicket(ctx, ticket)
      const session = await host.resolve('sessions').current(ctx)
      const xsrf = params.get('xsrf')
      // The decision must come from the page rendered for this browser's session.
      if (!session || xsrf === undefined || !signer.matches('device-confirm', `${ticket}.${session.sid}`, xsrf)) {
        host.log.warn({ client_id: opened.client.client_id }, 'device confirmation rejected: CSRF check failed')
        return page(ctx, 403, 'Request blocked', 'This form was not submitted from the page it was shown on. Open the address shown on your device again.')
      }
      const allow = params.get('decision') === 'allow'
      const decided = await codes.decide(opened.id, {
        status: allow ? 'approved' : 'denied', sub: session.sub, sid: session.sid, auth_time: session.auth_time,
        ...(session.amr ? { amr: session.amr } : {}),
        ...(session.acr !== undefined ? { acr: session.acr } : {}),
        ...(session.tenant !== undefined ? { tenant: session.tenant } : {}),
      })
      if (!decided) return page(ctx, 400, 'This code has expired', 'The code expired or was already used. Start again on your device.')
      if (allow) await host.resolve('consent').grant(session.sub, opened.client.client_id, opened.record.scope)
      host.log.info({ event: allow ? 'device.approved' : 'device.denied', sub: session.sub, client_id: opened.client.client_id }, allow ? 'device approved' : 'device denied')
      setPageHeaders(ctx)
      ctx.body = donePage(allow, opened.client.client_name ?? opened.client.client_id)
    }))

    /* ------------------------------------------------------- token polling */

    async function poll(req: GrantRequest): Promise<Grant> {
      const deviceCode = req.params.device_code!
      if (deviceCode.length > 256) throw new OAuthError('invalid_grant', 'device_code is not valid')
      const id = secretKey(deviceCode)
      const record = await codes.get(id)
      if (!record) {
        if (await codes.wasRedeemed(id)) throw new OAuthError('invalid_grant', 'device_code was already used')
        throw new OAuthError('invalid_grant', 'device_code is not valid')
      }
      // RFC 6749 §5.2: a code issued to another client is invalid_grant (no hint it exists).
      if (record.client_id !== req.client.client_id) throw new OAuthError('invalid_grant', 'device_code is not valid', { detail: 'device_code of another client' })
      if (record.exp <= Math.floor(Date.now() / 1000)) throw new OAuthError('expired_token', 'the device_code has expired')
      if (record.status === 'denied') throw new OAuthError('access_denied', 'the user denied the request', { status: 400 })
      if (record.status === 'pending') {
        const rate = await codes.tooFast(id, record)
        if (rate.tooFast) throw new OAuthError('slow_down', `polling too fast: wait ${rate.interval} seconds between requests`)
        throw new OAuthError('authorization_pending', 'the user has not yet approved the request')
      }
      // Approved: exactly one poll gets it.
      const approved = await codes.redeem(id)
      if (!approved || approved.status !== 'approved' || approved.sub === undefined) throw new OAuthError('invalid_grant', 'device_code was already used')
      const context = { raw: [], ...(approved.tenant !== undefined ? { tenant: approved.tenant } : {}) }
      if (!(await req.services.users.isActive(approved.sub, context))) throw new OAuthError('invalid_grant', 'the user is not active')
      return {
        subject: approved.sub,
        scope: approved.scope,
        context,
        // A family of its own, as for an authorization code: ending the session revokes every token of it.
        grantId: randomToken(16),
        ...(approved.sid !== undefined ? { sid: approved.sid } : {}),
        idToken: {
          ...(approved.auth_time !== undefined ? { authTime: approved.auth_time } : {}),
          ...(approved.amr ? { amr: approved.amr } : {}),
          ...(approved.acr !== undefined ? { acr: approved.acr } : {}),
        },
      }
    }

    host.grant({ type: DEVICE_CODE_GRANT, parameters: ['device_code'], required: ['device_code'], allowPublicClients: true, handle: poll })
  },
})
