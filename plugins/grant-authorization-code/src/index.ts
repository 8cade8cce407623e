import {
  audit, definePlugin, isSignInThrottled, OAuthError, option, readForm, secretKey, StoreUnavailableError,
  type AcrContext, type AuthorizationService, type Client, type FormParams, type InteractionHandler, type PendingAuthorization,
  type PluginHost, type RouteContext, type Session, type User,
} from '@grantd/core'
import { AuthorizationParams, parseAuthorizationRequest, RedirectableError, UnredirectableError, type AuthorizationRequest } from './authorization-request.js'
import { AuthorizationCodes } from './codes.js'
import { CookieSigner, newCookieValue, pathBelowIssuer, readCookie, setCookie } from './cookies.js'
import { errorPage, loginPage, setPageHeaders } from './login-page.js'
import { PendingCodec, type CarriedRequest } from './pending.js'
import { redirectUriAllowed } from './redirect-uri.js'
import { RequestUris } from './request-uri.js'
import { consentPage, continueAsForm, describeScope } from './consent-page.js'

export { redirectUriAllowed } from './redirect-uri.js'
// For plugins that validate an authorization request outside this endpoint (PAR, RFC 9126 §2.1).
export { parseAuthorizationRequest, AuthorizationParams, RedirectableError, UnredirectableError, type AuthorizationRequest } from './authorization-request.js'
export { challengeOf, verifierMatches, isValidVerifier, pkceRequired, type PkceChallenge, type PkceMethod } from './pkce.js'
// The page layout and cookie helpers, for other plugins' pages (e.g. @grantd/grant-device-code): one look, one CSP.
export { escapeHtml, layout, setPageHeaders, errorPage, loginPage, type LoginPageInput } from './login-page.js'
export { describeScope } from './consent-page.js'
export { CookieSigner, newCookieValue, readCookie, setCookie, pathBelowIssuer } from './cookies.js'

export interface AuthorizationCodeOptions {
  /** Seconds a login session (SSO cookie) lasts. */
  sessionTtl: number
  /** Seconds a user has to finish signing in. */
  loginTtl: number
  /** Failed password attempts per authorization request before it ends with access_denied. */
  maxLoginAttempts: number
}

const DEFAULTS: AuthorizationCodeOptions = { sessionTtl: 8 * 3600, loginTtl: 600, maxLoginAttempts: 10 }

export function parseAuthorizationCodeOptions(raw: unknown): AuthorizationCodeOptions {
  const o = option.object(raw ?? {}, '(options)')
  const out = { ...DEFAULTS }
  const bounds: Record<keyof AuthorizationCodeOptions, [number, number]> = { sessionTtl: [60, 30 * 86400], loginTtl: [60, 3600], maxLoginAttempts: [1, 1000] }
  option.only(o, '(options)', Object.keys(bounds))
  for (const [k, v] of Object.entries(o)) out[k as keyof AuthorizationCodeOptions] = option.integer(v, k, ...bounds[k as keyof AuthorizationCodeOptions])
  return out
}

/** Binds a login form to the browser it was shown in (CSRF, RFC 9700 §4.7). */
const BROWSER_COOKIE = 'grantd_login'
const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/
export const AUTHORIZE_PATH = '/connect/authorize'
export const LOGIN_PATH = '/connect/login'
export const CONSENT_PATH = '/connect/consent'

type ClientBound = Omit<PendingAuthorization, 'id' | 'prompt' | 'acr'> & { acr: AcrContext }

/**
 * The authorization code grant (RFC 6749 §4.1) with PKCE (RFC 7636), its authorization
 * endpoint and login page (SPEC §6), and the `authorization` service other plugins
 * (e.g. @grantd/acr-idp) use to finish a sign-in they handled themselves.
 */
export default definePlugin<AuthorizationCodeOptions>({
  name: 'grant-authorization-code',
  options: parseAuthorizationCodeOptions,
  register(host: PluginHost<AuthorizationCodeOptions>) {
    const { sessionTtl, loginTtl, maxLoginAttempts } = host.options
    const { clients, tokens } = host.config
    const signer = new CookieSigner(host.config.cookieKeys)
    const store = () => host.resolve('store')
    const users = () => host.resolve('users')
    const interactions = (): readonly InteractionHandler[] => {
      try {
        return host.resolve('interactions')
      } catch {
        return []
      }
    }
    const longestAccessTtl = Math.max(tokens.accessTokenTtl, ...[...clients.values()].map((c) => c.access_token_ttl ?? 0),
      ...[...host.config.resources.values()].map((r) => r.accessTokenTtl ?? 0))
    const codes = new AuthorizationCodes(store, tokens.codeTtl, Math.max(tokens.refreshTokenTtl, longestAccessTtl), host.log, host.config.resources)
    // SSO sessions are the core's (SPEC §10): the same service ends them at /connect/endsession.
    const sessions = () => host.resolve('sessions')
    const carrier = new PendingCodec(signer, loginTtl)
    const requestUris = new RequestUris()
    /** Written once a sign-in succeeds: the request is single-use. */
    const doneKey = (carried: CarriedRequest): string => `authz-done:${secretKey(carried.rid)}`
    /** Failed password attempts of one request (maxLoginAttempts). */
    const triesKey = (carried: CarriedRequest): string => `authz-tries:${secretKey(carried.rid)}`
    const secondsLeft = (carried: CarriedRequest): number => Math.max(1, carried.exp - Math.floor(Date.now() / 1000) + 5)

    /* --------------------------------------------------------- responses */

    function page(ctx: RouteContext, status: number, title: string, message: string, error?: string): void {
      // The request log line names the OAuth error code of an error page (SPEC §13).
      ctx.state.error = error ?? (status === 503 ? 'temporarily_unavailable' : status >= 500 ? 'server_error' : status === 403 ? 'access_denied' : 'invalid_request')
      setPageHeaders(ctx)
      ctx.status = status
      ctx.body = errorPage(title, message)
    }

    /** RFC 6749 §4.1.2 / §4.1.2.1 with RFC 9207 `iss` on every response. */
    function redirectToClient(ctx: RouteContext, target: { redirectUri: string; state?: string | undefined; issuer: string }, params: Record<string, string>): void {
      const url = new URL(target.redirectUri)
      if (params.error !== undefined) ctx.state.error = params.error
      for (const [k, v] of Object.entries(params)) url.searchParams.append(k, v)
      if (target.state !== undefined) url.searchParams.append('state', target.state)
      url.searchParams.append('iss', target.issuer)
      ctx.set('Cache-Control', 'no-store')
      ctx.set('Pragma', 'no-cache')
      ctx.redirect(url.href)
    }

    /**
     * Browser-facing routes never answer with JSON: errors after the redirect_uri is known
     * go back to the client (§4.1.2.1), everything else ends on an HTML page.
     */
    async function browserRoute(ctx: RouteContext, target: ClientBound | undefined, run: () => Promise<void>): Promise<void> {
      try {
        await run()
      } catch (err) {
        if (err instanceof StoreUnavailableError) {
          host.log.warn({ err: err.message }, 'store unavailable during sign-in')
          if (target) return redirectToClient(ctx, target, { error: 'temporarily_unavailable', error_description: 'the service is temporarily unavailable' })
          return page(ctx, 503, 'Temporarily unavailable', 'Signing in is temporarily unavailable. Please try again in a moment.')
        }
        if (err instanceof OAuthError) {
          if (target) return redirectToClient(ctx, target, { error: err.error, error_description: err.message })
          return page(ctx, err.status >= 500 ? err.status : 400, 'Sign-in failed', err.message, err.error)
        }
        host.log.error({ err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) }, 'sign-in failed')
        page(ctx, 500, 'Sign-in failed', 'Something went wrong while signing you in.')
      }
    }

    /* ------------------------------------------------ pending authorizations */

    /** `client`: the one `s.client_id` names, looked up by the caller (config or registered, RFC 7591). */
    function toPending(id: string, s: CarriedRequest, client: Client | undefined): PendingAuthorization | undefined {
      if (client?.client_id !== s.client_id) return undefined
      if (!client || !redirectUriAllowed(client, s.redirect_uri)) return undefined
      return {
        id, client, redirectUri: s.redirect_uri, scope: s.scope, acr: s.acr, prompt: s.prompt, issuer: s.issuer,
        ...(s.state !== undefined ? { state: s.state } : {}),
        ...(s.nonce !== undefined ? { nonce: s.nonce } : {}),
        ...(s.code_challenge !== undefined ? { codeChallenge: s.code_challenge } : {}),
        ...(s.code_challenge_method !== undefined ? { codeChallengeMethod: s.code_challenge_method } : {}),
        ...(s.resources !== undefined ? { resources: s.resources } : {}),
      }
    }

    /**
     * The carried request behind each pending authorization this plugin handed out, so
     * completing one (`service.complete`) does not open (MAC and parse) its sealed id again.
     */
    const opened = new WeakMap<PendingAuthorization, CarriedRequest>()

    /** The carried request of `pending`: the one it was made from, or its sealed id opened; `undefined` once expired or altered. */
    function carriedOf(pending: PendingAuthorization): CarriedRequest | undefined {
      const known = opened.get(pending)
      return known !== undefined ? PendingCodec.current(known) : carrier.open(pending.id)
    }

    /** The request a login form or sign-in link carries; `undefined` when altered, expired or already used. */
    async function readPending(id: string, withTries = false): Promise<{ pending: PendingAuthorization; stored: CarriedRequest; tries: number } | undefined> {
      const stored = carrier.open(id)
      if (!stored) return undefined
      const pending = toPending(id, stored, await host.resolve('clients').find(stored.client_id))
      if (!pending) return undefined
      // The login form also needs the request's failed attempts: two reads sent together.
      const [done, tries] = await Promise.all([store().get(doneKey(stored)), withTries ? store().get(triesKey(stored)) : undefined])
      if (done !== undefined) return undefined
      opened.set(pending, stored)
      return { pending, stored, tries: Number(tries ?? 0) }
    }

    /* ------------------------------------------------------------- codes */

    async function issueCode(ctx: RouteContext, request: ClientBound, session: Session): Promise<void> {
      const code = await codes.issue({
        client_id: request.client.client_id,
        redirect_uri: request.redirectUri,
        scope: request.scope,
        sub: session.sub,
        auth_time: session.auth_time,
        iss: request.issuer,
        context: request.acr,
        sid: session.sid,
        sid_exp: session.exp,
        ...(request.nonce !== undefined ? { nonce: request.nonce } : {}),
        ...(session.acr !== undefined ? { acr: session.acr } : {}),
        ...(session.amr !== undefined ? { amr: session.amr } : {}),
        ...(session.idp !== undefined ? { idp: session.idp } : {}),
        ...(request.codeChallenge !== undefined ? { code_challenge: request.codeChallenge } : {}),
        ...(request.codeChallengeMethod !== undefined ? { code_challenge_method: request.codeChallengeMethod } : {}),
        ...(request.resources !== undefined ? { resources: request.resources } : {}),
      })
      redirectToClient(ctx, request, { code })
    }

    /** Single sign-on: an existing session answers the request when it satisfies it. */
    async function sessionFits(session: Session, request: AuthorizationRequest): Promise<boolean> {
      // OIDC Core §3.1.2.1: prompt=login and prompt=select_account always lead to a page.
      if (request.prompt.includes('login') || request.prompt.includes('select_account')) return false
      const age = Math.floor(Date.now() / 1000) - session.auth_time
      // OIDC Core §3.1.2.1 max_age; max_age=0 always asks again.
      if (request.maxAge !== undefined && age >= request.maxAge) return false
      if (request.acr.tenant !== undefined && session.tenant !== request.acr.tenant) return false
      if (request.acr.idp !== undefined && session.idp !== request.acr.idp) return false
      // SPEC §9: a session made through an external provider answers only clients that allow it.
      if (!idpAllowed(request.client, session.idp)) return false
      return (await users().findById(session.sub, request.acr)) !== undefined
    }

    /** A client's `identity_providers` decides which external sign-ins may reach it (SPEC §6, §9). */
    function idpAllowed(client: Client, idp: string | undefined): boolean {
      return idp === undefined || client.identity_providers.includes(idp)
    }

    /* ------------------------------------------------------------ service */

    const service: AuthorizationService = {
      async load(id) {
        return (await readPending(id))?.pending
      },
      async complete(ctx, pending, user: User, auth) {
        if (!idpAllowed(pending.client, auth.idp)) {
          host.log.warn({ client_id: pending.client.client_id, idp: auth.idp }, 'sign-in through a provider the client does not allow refused')
          return service.fail(ctx, pending, 'access_denied', 'this application does not allow that identity provider')
        }
        // Single use: a double-submitted form or a replayed callback finds the marker.
        const carried = carriedOf(pending)
        if (!carried || !(await store().add(doneKey(carried), '1', secondsLeft(carried)))) {
          return page(ctx, 400, 'This sign-in request has expired', 'The sign-in took too long or was already completed.')
        }
        const session = await sessions().start(ctx, {
          sub: user.sub,
          ttlSeconds: sessionTtl,
          ...(auth.amr && auth.amr.length > 0 ? { amr: [...auth.amr] } : {}),
          ...(auth.acr !== undefined ? { acr: auth.acr } : {}),
          ...(auth.idp !== undefined ? { idp: auth.idp } : {}),
          ...(typeof user.tenant === 'string' ? { tenant: user.tenant } : {}),
        })
        await authenticated(ctx, pending, session)
      },
      async fail(ctx, pending, error, description) {
        redirectToClient(ctx, pending, { error, ...(description !== undefined ? { error_description: description } : {}) })
      },
      useRequestUris(resolver) {
        requestUris.use(resolver)
      },
    }
    host.provide('authorization', service)
    host.discovery((issuer) => ({
      authorization_endpoint: `${issuer}${AUTHORIZE_PATH}`,
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      code_challenge_methods_supported: ['S256', 'plain'],
      // RFC 9207: every authorization response carries iss.
      authorization_response_iss_parameter_supported: true,
    }))

    /* ---------------------------------------------------------- login page */

    async function showLogin(ctx: RouteContext, pending: PendingAuthorization, stored: CarriedRequest, view: { error?: string; username?: string; status?: number } = {}): Promise<void> {
      // A refused sign-in's request log line carries an error code (SPEC §13): the page is not an OAuth response.
      if (view.status !== undefined && view.status >= 400) ctx.state.error = view.status === 400 ? 'invalid_request' : 'access_denied'
      const existing = readCookie(ctx, BROWSER_COOKIE)
      const browser = existing !== undefined && COOKIE_VALUE.test(existing) ? existing : newCookieValue()
      setCookie(ctx, BROWSER_COOKIE, browser, { path: pathBelowIssuer(pending.issuer, '/connect'), maxAge: loginTtl })
      const options = interactions()
        .flatMap((hook) => hook.loginOptions?.(pending) ?? [])
        .map((o) => ({ label: o.label, href: o.href.startsWith('/') ? `${pending.issuer}${o.href}` : o.href }))
        .filter((o) => /^https?:\/\//i.test(o.href))
      const action = `${pending.issuer}${LOGIN_PATH}`
      setPageHeaders(ctx, [action, pending.redirectUri])
      ctx.status = view.status ?? 200
      const username = view.username ?? stored.login_hint
      const csrf = signer.macOf('csrf', `${pending.id}.${browser}`)
      // prompt=select_account: offer the account this browser is signed in with (OIDC Core §3.1.2.1).
      const current = pending.prompt.includes('select_account') ? await sessions().current(ctx) : undefined
      const account = current && (await sessionUsable(current, pending, stored)) ? await accountName(current) : undefined
      ctx.body = loginPage({
        ...(account !== undefined ? { before: continueAsForm({ action, pendingId: pending.id, csrf, account }) } : {}),
        action,
        pendingId: pending.id,
        csrf,
        clientName: pending.client.client_name ?? pending.client.client_id,
        notices: stored.notices ?? [],
        options,
        ...(username !== undefined ? { username } : {}),
        ...(view.error !== undefined ? { error: view.error } : {}),
      })
    }

    /**
     * The client an authorization request names, for the parser: config clients as they are,
     * a registered one (RFC 7591) looked up in the host's client directory.
     */
    async function requestClients(query: string | AuthorizationParams): Promise<ReadonlyMap<string, Client>> {
      if (typeof query === 'string' || query.repeated('client_id')) return clients
      let clientId: string | undefined
      try {
        clientId = query.get('client_id')
      } catch {
        return clients
      }
      if (clientId === undefined || clients.has(clientId)) return clients
      const client = await host.resolve('clients').find(clientId)
      return client ? new Map([[clientId, client]]) : clients
    }

    /** Seal a validated request for the login form (SPEC §9: carried, not stored). */
    function carry(request: AuthorizationRequest, notices: readonly string[] = []): { pending: PendingAuthorization; stored: CarriedRequest } {
      const sealed = carrier.seal(request, notices)
      const pending = sealed === undefined ? undefined : toPending(sealed.sealed, sealed.carried, request.client)
      if (!pending || !sealed) throw new OAuthError('invalid_request', 'the authorization request is too large')
      opened.set(pending, sealed.carried)
      return { pending, stored: sealed.carried }
    }

    /**
     * The authorization endpoint (RFC 6749 §4.1.1), GET and POST alike (OIDC Core §3.1.2.1).
     * Nothing is stored here (SPEC §9): a session answers, a hook takes over, or the
     * validated request is carried by the login form.
     */
    async function authorize(ctx: RouteContext, source: string | AuthorizationParams): Promise<void> {
      let request: AuthorizationRequest
      try {
        // RFC 9126 §4: with request_uri, the pushed request replaces the front channel's parameters.
        const query = typeof source === 'string' && source.length <= 16 * 1024 ? AuthorizationParams.fromQuery(source) : source
        const known = await requestClients(query)
        const resolved = await requestUris.resolve(query, known)
        request = parseAuthorizationRequest(resolved.params, resolved.pushed ? await requestClients(resolved.params) : known, host.resolve('acr'), ctx.state.issuer, redirectUriAllowed, host.config.resources)
        requestUris.check(request, resolved.pushed)
      } catch (err) {
        if (err instanceof UnredirectableError) return page(ctx, err.status, err.title, err.message)
        if (err instanceof RedirectableError) {
          return redirectToClient(ctx, { redirectUri: err.redirectUri, state: err.state, issuer: ctx.state.issuer }, { error: err.error.error, error_description: err.error.message })
        }
        throw err
      }
      ctx.state.clientId = request.client.client_id
      await browserRoute(ctx, request, async () => {
        const session = await sessions().current(ctx)
        if (session && (await sessionFits(session, request))) return authenticated(ctx, request, session)

        const carried = carry(request)
        const pending = carried.pending
        const notices: string[] = []
        for (const hook of interactions()) {
          if (!hook.beforeLogin) continue
          const outcome = await hook.beforeLogin(ctx, pending)
          if (outcome === 'handled') return
          if (outcome && typeof outcome.notice === 'string') notices.push(outcome.notice)
        }
        // OIDC Core §3.1.2.6: no interaction allowed and nobody signed in.
        if (request.prompt.includes('none')) return service.fail(ctx, pending, 'login_required', 'the user is not signed in')
        const shown = notices.length > 0 ? carry(request, notices) : carried
        await showLogin(ctx, shown.pending, shown.stored)
      })
    }

    host.route('get', AUTHORIZE_PATH, (ctx) => authorize(ctx, ctx.querystring))

    // OIDC Core §3.1.2.1: POST with the parameters form-serialized. A POST from another
    // site carries no session cookie (SameSite=Lax): it shows the login form.
    host.route('post', AUTHORIZE_PATH, async (ctx) => {
      let form: FormParams
      try {
        form = await readForm(ctx)
      } catch (err) {
        if (!(err instanceof OAuthError)) throw err
        return page(ctx, err.status === 413 ? 413 : 400, 'Invalid request', 'The authorization request could not be read.')
      }
      const params = new AuthorizationParams()
      // The authorization endpoint's own limits apply (AuthorizationParams), as for GET.
      for (const name of form.names()) for (const value of form.all(name)) params.add(name, value)
      await authorize(ctx, params)
    })

    host.route('post', LOGIN_PATH, async (ctx) => {
      let params: FormParams
      try {
        params = await readForm(ctx)
        params.check(['pending', 'csrf', 'username', 'password', 'continue'])
      } catch (err) {
        if (!(err instanceof OAuthError)) throw err
        return page(ctx, err.status === 413 ? 413 : 400, 'Sign-in failed', 'The sign-in form could not be read.')
      }
      const id = params.get('pending')
      const loaded = id === undefined ? undefined : await browserSafeRead(ctx, id, true)
      if (loaded === null) return
      if (!loaded) return page(ctx, 400, 'This sign-in request has expired', 'The sign-in took too long or was already completed.')
      const { pending, stored, tries: attempts } = loaded
      ctx.state.clientId = pending.client.client_id

      // Login CSRF: the form must come from a page this server rendered for this browser.
      const browser = readCookie(ctx, BROWSER_COOKIE)
      const csrf = params.get('csrf')
      if (browser === undefined || csrf === undefined || !COOKIE_VALUE.test(browser) || !signer.matches('csrf', `${pending.id}.${browser}`, csrf)) {
        host.log.warn({ client_id: pending.client.client_id }, 'login form rejected: CSRF check failed')
        return page(ctx, 403, 'Sign-in blocked', 'This sign-in form was not submitted from the page it was shown on. Go back to the application and try again.')
      }

      await browserRoute(ctx, pending, async () => {
        if (params.get('continue') === '1') return continueAs(ctx, pending, stored)
        if (attempts >= maxLoginAttempts) return service.fail(ctx, pending, 'access_denied', 'too many failed sign-in attempts')
        // Only a wrong password is counted (and stored), after the core's per-address throttle
        // has seen it: a form posted without a guess costs the store nothing (SPEC §9).
        const failed = async (): Promise<number> => store().increment(triesKey(stored), secondsLeft(stored))
        const username = params.get('username')
        const password = params.get('password')
        if (username === undefined || password === undefined) {
          return showLogin(ctx, pending, stored, { error: 'Enter your username and password.', ...(username !== undefined ? { username } : {}), status: 400 })
        }
        if (username.length > 256 || password.length > 1024) return showLogin(ctx, pending, stored, { error: 'The username or password is incorrect.', status: 401 })
        let user: User | undefined
        try {
          user = await users().authenticate({ username, password, context: pending.acr, client: pending.client, clientIp: ctx.state.clientIp, ...(ctx.state.requestId !== undefined ? { requestId: ctx.state.requestId } : {}) })
        } catch (err) {
          // Brute-force limit (core throttle): a page the user can read, not an error sent to the client.
          if (isSignInThrottled(err)) return showLogin(ctx, pending, stored, { error: 'Too many failed sign-in attempts. Please wait a while and try again.', username, status: 429 })
          // The user database is down or slow (SPEC §12): a page, so the user can retry once it is back.
          if (err instanceof StoreUnavailableError) {
            host.log.warn({ err: err.message }, 'user service unavailable during sign-in')
            return page(ctx, 503, 'Temporarily unavailable', 'Signing in is temporarily unavailable. Please try again in a moment.')
          }
          throw err
        }
        if (!user) {
          await failed()
          return showLogin(ctx, pending, stored, { error: 'The username or password is incorrect.', username, status: 401 })
        }
        await service.complete(ctx, pending, user, { amr: ['pwd'] })
      })
    })

    /** Read the pending request for the login form; `null` when an error page was already written. */
    async function browserSafeRead(ctx: RouteContext, id: string, withTries = false): Promise<{ pending: PendingAuthorization; stored: CarriedRequest; tries: number } | undefined | null> {
      try {
        return await readPending(id, withTries)
      } catch (err) {
        if (!(err instanceof StoreUnavailableError)) throw err
        page(ctx, 503, 'Temporarily unavailable', 'Signing in is temporarily unavailable. Please try again in a moment.')
        return null
      }
    }

    /* ------------------------------------- consent and select_account (SPEC §10) */

    async function accountName(session: Session): Promise<string> {
      const user = await users().findById(session.sub, { raw: [] })
      return user && typeof user.username === 'string' ? user.username : session.sub
    }

    /** Whether the SSO session may answer a select_account request once the user picks it (max_age, tenant, idp still apply). */
    function sessionUsable(session: Session, pending: PendingAuthorization, stored: CarriedRequest): Promise<boolean> {
      const request: AuthorizationRequest = {
        ...pending, prompt: pending.prompt.filter((p) => p !== 'select_account'),
        ...(stored.max_age !== undefined ? { maxAge: stored.max_age } : {}),
      }
      return sessionFits(session, request)
    }

    /** The user is known (a new sign-in or the SSO session): ask for consent when needed, else issue the code. */
    async function authenticated(ctx: RouteContext, request: ClientBound & { prompt: readonly string[] }, session: Session): Promise<void> {
      const forced = request.prompt.includes('consent')
      const needed = forced || (request.client.require_consent === true && !(await host.resolve('consent').covers(session.sub, request.client.client_id, request.scope)))
      if (!needed) return issueCode(ctx, request, session)
      // OIDC Core §3.1.2.6: the page would be needed but no interaction is allowed.
      if (request.prompt.includes('none')) return redirectToClient(ctx, request, { error: 'consent_required', error_description: 'the user has not approved this application' })
      // The request travels on in the consent form, sealed like the login form's (nothing stored).
      const id = carry(request).pending.id
      const action = `${request.issuer}${CONSENT_PATH}`
      setPageHeaders(ctx, [action, request.redirectUri])
      ctx.body = consentPage({
        action,
        pendingId: id,
        xsrf: signer.macOf('consent', `${id}.${session.sid}`),
        clientName: request.client.client_name ?? request.client.client_id,
        scopes: request.scope.map((name) => ({ name, description: describeScope(name, host.config.scopes) })),
        account: await accountName(session),
      })
    }

    /** "Continue as" on the select_account login page: the SSO session's user, chosen explicitly. */
    async function continueAs(ctx: RouteContext, pending: PendingAuthorization, stored: CarriedRequest): Promise<void> {
      const session = await sessions().current(ctx)
      if (!session || !(await sessionUsable(session, pending, stored))) {
        return showLogin(ctx, pending, stored, { error: 'You are no longer signed in. Sign in again.', status: 400 })
      }
      if (!(await store().add(doneKey(stored), '1', secondsLeft(stored)))) {
        return page(ctx, 400, 'This sign-in request has expired', 'The sign-in took too long or was already completed.')
      }
      await authenticated(ctx, { ...pending, prompt: pending.prompt.filter((p) => p !== 'select_account' && p !== 'login') }, session)
    }

    host.route('post', CONSENT_PATH, async (ctx) => {
      let params: FormParams
      try {
        params = await readForm(ctx)
        params.check(['pending', 'xsrf', 'decision'])
      } catch (err) {
        if (!(err instanceof OAuthError)) throw err
        return page(ctx, err.status === 413 ? 413 : 400, 'Request failed', 'The form could not be read.')
      }
      const id = params.get('pending')
      const loaded = id === undefined ? undefined : await browserSafeRead(ctx, id)
      if (loaded === null) return
      if (!loaded) return page(ctx, 400, 'This request has expired', 'The request took too long or was already completed.')
      const { pending } = loaded
      ctx.state.clientId = pending.client.client_id
      await browserRoute(ctx, pending, async () => {
        const session = await sessions().current(ctx)
        const xsrf = params.get('xsrf')
        // The decision must come from the page rendered for this browser's session.
        if (!session || xsrf === undefined || !signer.matches('consent', `${pending.id}.${session.sid}`, xsrf)) {
          host.log.warn({ client_id: pending.client.client_id }, 'consent form rejected: CSRF check failed')
          return page(ctx, 403, 'Request blocked', 'This form was not submitted from the page it was shown on. Go back to the application and try again.')
        }
        // Single use: the decision is taken once.
        if (!(await store().add(doneKey(loaded.stored), '1', secondsLeft(loaded.stored)))) return page(ctx, 400, 'This request has expired', 'The request was already completed.')
        const decision = params.get('decision')
        if (decision !== 'allow') {
          audit(host.log, 'consent.denied', { sub: session.sub, client_id: pending.client.client_id, request_id: ctx.state.requestId }, 'consent denied')
          return redirectToClient(ctx, pending, { error: 'access_denied', error_description: 'the user denied the request' })
        }
        await host.resolve('consent').grant(session.sub, pending.client.client_id, pending.scope, ctx.state.requestId)
        await issueCode(ctx, pending, session)
      })
    })

    host.grant({
      type: 'authorization_code',
      parameters: ['code', 'redirect_uri', 'code_verifier'],
      required: ['code', 'redirect_uri'],
      allowPublicClients: true,
      handle: (req) => codes.redeem(req),
    })
  },
})
