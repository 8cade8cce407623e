import { OAuthError, StoreUnavailableError } from '../errors.js'
import { parseForm, readForm, type FormParams } from '../http/form-body.js'
import type { Client, ClientDirectory, EndedSession, Logger, RouteContext, Session } from '../interfaces.js'
import type { TokenService } from '../tokens/tokens.js'
import { confirmLogoutPage, errorPage, setPageHeaders, signedOutPage } from './pages.js'
import type { SessionManager } from './session-service.js'

export const END_SESSION_PATH = '/connect/endsession'

export interface EndSessionDeps {
  sessions: SessionManager
  tokens: TokenService
  clients: Pick<ClientDirectory, 'find'>
  log: Logger
}

/** IdentityServer-style input limits for the parameters this endpoint reads. */
const LIMITS: Readonly<Record<string, number>> = {
  id_token_hint: 4096, client_id: 256, post_logout_redirect_uri: 2048, state: 2048, ui_locales: 128, logout_hint: 256, xsrf: 64, logout: 8,
}

/** A request the endpoint refuses: an HTML page, never a redirect to an unchecked address. */
class Refused extends Error {
  constructor(readonly status: number, readonly title: string, message: string) {
    super(message)
  }
}

interface LogoutRequest {
  client?: Client
  /** Validated against the client's post_logout_redirect_uris. */
  redirectUri?: string
  state?: string
  uiLocales?: string
  hint?: { sub: string; sid?: string }
}

/**
 * OpenID Connect RP-Initiated Logout 1.0 (SPEC §10), read top to bottom in the spec's order:
 * parse (GET query or POST form), validate the hint and the client, decide whether the
 * session may end at once or the user must confirm, end it, then send the browser back to
 * the RP (with `state`) or show the signed-out page with its front-channel iframes.
 */
export function endSessionEndpoint(deps: EndSessionDeps): (ctx: RouteContext) => Promise<void> {
  const { sessions, tokens, clients } = deps

  async function parse(ctx: RouteContext): Promise<FormParams> {
    const params = ctx.method === 'POST' ? await readForm(ctx) : parseForm(ctx.querystring)
    // RFC 6749 §3.2 spirit: only the parameters this endpoint reads are checked; others are ignored.
    for (const [name, limit] of Object.entries(LIMITS)) {
      if (params.count(name) > 1) throw new Refused(400, 'Sign-out failed', `The request repeats the parameter ${name}.`)
      let value: string | undefined
      try {
        value = params.get(name)
      } catch {
        throw new Refused(400, 'Sign-out failed', `The parameter ${name} is not valid.`)
      }
      if ((value?.length ?? 0) > limit) throw new Refused(400, 'Sign-out failed', `The parameter ${name} is too long.`)
    }
    return params
  }

  async function validate(ctx: RouteContext, params: FormParams, withHint: boolean): Promise<LogoutRequest> {
    const request: LogoutRequest = {}
    const hintText = withHint ? params.get('id_token_hint') : undefined
    if (hintText !== undefined) {
      const claims = await tokens.verifyIdTokenHint(hintText, ctx.state.issuer)
      if (!claims) throw new Refused(400, 'Sign-out failed', 'The id_token_hint is not an ID token this server issued.')
      request.hint = { sub: claims.sub!, ...(typeof claims.sid === 'string' ? { sid: claims.sid } : {}) }
      const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud!]
      const clientId = params.get('client_id')
      // §2: a client_id given with a hint must be one the hint was issued to.
      if (clientId !== undefined && !audiences.includes(clientId)) throw new Refused(400, 'Sign-out failed', 'The client_id does not match the id_token_hint.')
      const named = clientId ?? (typeof claims.azp === 'string' ? claims.azp : audiences.length === 1 ? audiences[0] : undefined)
      const client = named === undefined ? undefined : await clients.find(named)
      if (client) request.client = client
    } else {
      const clientId = params.get('client_id')
      if (clientId !== undefined) {
        const client = await clients.find(clientId)
        if (!client) throw new Refused(400, 'Unknown application', 'The application that sent you here is not known.')
        request.client = client
      }
    }
    const redirectUri = params.get('post_logout_redirect_uri')
    if (redirectUri !== undefined) {
      if (!request.client) throw new Refused(400, 'Sign-out failed', 'A post_logout_redirect_uri needs a client_id or an id_token_hint naming the application.')
      // §3.1: exact match against what the client registered, else no redirect.
      if (!(request.client.post_logout_redirect_uris ?? []).includes(redirectUri)) throw new Refused(400, 'Invalid redirect', 'The application asked to return to an address it has not registered for sign-out.')
      request.redirectUri = redirectUri
    }
    const state = params.get('state')
    if (state !== undefined) request.state = state
    const uiLocales = params.get('ui_locales')
    if (uiLocales !== undefined) request.uiLocales = uiLocales
    return request
  }

  function xsrfFor(session: Session): string {
    return sessions.cookie.mac('endsession', session.sid).toString('base64url')
  }

  function confirm(ctx: RouteContext, session: Session, request: LogoutRequest): void {
    const action = `${ctx.state.issuer}${END_SESSION_PATH}`
    setPageHeaders(ctx, { formTargets: [action, ...(request.redirectUri ? [request.redirectUri] : [])] })
    ctx.body = confirmLogoutPage({
      action,
      fields: {
        xsrf: xsrfFor(session),
        client_id: request.client?.client_id,
        post_logout_redirect_uri: request.redirectUri,
        state: request.state,
        ui_locales: request.uiLocales,
      },
      ...(request.client ? { clientName: request.client.client_name ?? request.client.client_id } : {}),
    })
  }

  async function finish(ctx: RouteContext, request: LogoutRequest, ended: EndedSession | undefined, stillSignedIn = false): Promise<void> {
    if (!stillSignedIn) sessions.clearCookie(ctx)
    // Back-channel: wait for first answers, never longer than the notifier's timeout.
    if (ended) await ended.notified
    const frames = (ended?.clients ?? []).filter((c) => c.frontchannel_logout_uri).map((c) => {
      const url = new URL(c.frontchannel_logout_uri!)
      // Front-Channel Logout 1.0 §2: iss and sid identify the session that ended.
      url.searchParams.append('iss', ended!.session.iss)
      url.searchParams.append('sid', ended!.session.sid)
      return url.href
    })
    let target: string | undefined
    if (request.redirectUri) {
      const url = new URL(request.redirectUri)
      if (request.state !== undefined) url.searchParams.append('state', request.state)
      target = url.href
    }
    ctx.set('Cache-Control', 'no-store')
    ctx.set('Pragma', 'no-cache')
    if (target && frames.length === 0) {
      ctx.status = ctx.method === 'POST' ? 303 : 302
      ctx.set('Location', target)
      return
    }
    setPageHeaders(ctx, { frames })
    ctx.body = signedOutPage({ frames, ...(target ? { continueTo: target } : {}), stillSignedIn })
  }

  async function run(ctx: RouteContext): Promise<void> {
    const params = await parse(ctx)
    const current = await sessions.current(ctx)

    // The user answered the confirmation page: it must be the one this server rendered for this session.
    if (ctx.method === 'POST' && params.get('xsrf') !== undefined) {
      const request = await validate(ctx, params, false)
      if (!current) return finish(ctx, request, undefined)
      if (!sessions.cookie.verify('endsession', current.sid, params.get('xsrf')!)) {
        deps.log.warn({ sub: current.sub }, 'sign-out form rejected: CSRF check failed')
        throw new Refused(403, 'Sign-out blocked', 'This sign-out form was not submitted from the page it was shown on.')
      }
      if (params.get('logout') !== 'yes') return finish(ctx, request, undefined, true)
      return finish(ctx, request, await sessions.end(current.sid, ctx.state.requestId))
    }

    const request = await validate(ctx, params, true)
    if (request.client) ctx.state.clientId = request.client.client_id
    const hint = request.hint
    if (hint) {
      if (current && current.sub === hint.sub) return finish(ctx, request, await sessions.end(current.sid, ctx.state.requestId))
      if (!current) {
        // A cross-site POST carries no cookie (SameSite=Lax): the hint's sid names the session.
        const named = hint.sid !== undefined ? await sessions.get(hint.sid) : undefined
        return finish(ctx, request, named && named.sub === hint.sub ? await sessions.end(named.sid, ctx.state.requestId) : undefined)
      }
      return confirm(ctx, current, request)
    }
    if (current) return confirm(ctx, current, request)
    return finish(ctx, request, undefined)
  }

  return async function endSession(ctx: RouteContext): Promise<void> {
    try {
      await run(ctx)
    } catch (err) {
      if (err instanceof Refused) {
        setPageHeaders(ctx)
        ctx.status = err.status
        ctx.body = errorPage(err.title, err.message)
        return
      }
      if (err instanceof StoreUnavailableError) {
        deps.log.warn({ err: err.message }, 'store unavailable during sign-out')
        setPageHeaders(ctx)
        ctx.status = 503
        ctx.set('Retry-After', '5')
        ctx.body = errorPage('Temporarily unavailable', 'Signing out is temporarily unavailable. Please try again in a moment.')
        return
      }
      if (err instanceof OAuthError && err.status < 500) {
        setPageHeaders(ctx)
        ctx.status = err.status === 413 ? 413 : 400
        ctx.body = errorPage('Sign-out failed', err.message)
        return
      }
      throw err
    }
  }
}
