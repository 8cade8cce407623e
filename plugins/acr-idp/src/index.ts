import { randomBytes } from 'node:crypto'
import * as oauth from 'oauth4webapi'
import {
  definePlugin, OAuthError, secretKey, StoreUnavailableError,
  type AuthorizationService, type Client, type PendingAuthorization, type PluginHost, type RouteContext,
} from '@grantd/core'
import { errorPage } from './error-page.js'
import { parseAcrIdpOptions, PROVIDER_NAME, type AcrIdpOptions } from './options.js'
import { RelyingParty, UpstreamError } from './relying-party.js'
import { openRoundTrip, roundTripKey, sealRoundTrip, type RoundTripRecord } from './round-trip.js'

export { parseAcrIdpOptions, type AcrIdpOptions, type ProviderOptions } from './options.js'

/** How long a browser has to finish signing in upstream. */
const EXTERNAL_LOGIN_TTL = 600
/** Binds the upstream round trip to the browser that started it (login CSRF, RFC 9700 §4.7). */
const BROWSER_COOKIE = 'grantd_ext'
const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/
/** prompt values that mean the same upstream (OIDC Core §3.1.2.1). */
const FORWARDED_PROMPTS = ['none', 'login', 'consent', 'select_account']

type ParamContext = RouteContext & { params?: Record<string, string | undefined> }

/** The sign-in links carry the whole pending request (MAC-protected, up to 4000 characters). */
function queryParam(ctx: RouteContext, name: string, maxLength = 2048): string | undefined {
  const value = ctx.query[name]
  return typeof value === 'string' && value !== '' && value.length <= maxLength ? value : undefined
}

function readBrowserCookie(ctx: RouteContext): string | undefined {
  for (const part of (ctx.get('cookie') || '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === BROWSER_COOKIE) {
      const value = part.slice(eq + 1).trim()
      if (COOKIE_VALUE.test(value)) return value
    }
  }
  return undefined
}

/** One browser-binding value per browser, reused so parallel tabs do not cancel each other. */
function bindBrowser(ctx: RouteContext): string {
  const value = readBrowserCookie(ctx) ?? randomBytes(32).toString('base64url')
  const base = new URL(ctx.state.issuer).pathname.replace(/\/+$/, '')
  ctx.append('Set-Cookie', `${BROWSER_COOKIE}=${value}; Path=${base}/connect/external/; Max-Age=${EXTERNAL_LOGIN_TTL}; HttpOnly; SameSite=Lax${ctx.state.secure ? '; Secure' : ''}`)
  return value
}

function callbackPath(name: string): string {
  return `/connect/external/${name}/callback`
}

/**
 * `acr_values=idp:NAME` (SPEC §6): the authorization endpoint skips its login form and
 * sends the browser to the upstream OIDC provider NAME, when the client's
 * `identity_providers` allows it; the login form offers a "Sign in with NAME" button
 * for each allowed provider. grantd is the relying party through oauth4webapi (PKCE
 * S256, state and nonce kept server-side encrypted under the state, single-use), and the upstream identity is
 * mapped by the user service's `authenticateExternal`.
 */
export default definePlugin<AcrIdpOptions>({
  name: 'acr-idp',
  dependencies: ['grant-authorization-code'],
  options: parseAcrIdpOptions,
  register(host: PluginHost<AcrIdpOptions>) {
    const parties = new Map<string, RelyingParty>()
    for (const [name, provider] of host.options.providers) parties.set(name, new RelyingParty(name, provider))

    for (const client of host.config.clients.values()) {
      for (const idp of client.identity_providers) {
        if (!parties.has(idp)) host.log.warn({ client_id: client.client_id, idp }, 'client allows an identity provider that acr-idp does not configure: browser sign-in with it shows a notice')
      }
    }

    const allowed = (client: Client, name: string): boolean => parties.has(name) && client.identity_providers.includes(name)

    function authorization(): AuthorizationService | undefined {
      try {
        return host.resolve('authorization')
      } catch {
        return undefined
      }
    }

    /** Remember the round trip, bind it to this browser, and redirect to the upstream authorization endpoint. */
    async function startUpstream(ctx: RouteContext, party: RelyingParty, pending: PendingAuthorization, service: AuthorizationService): Promise<void> {
      const state = oauth.generateRandomState()
      const nonce = oauth.generateRandomNonce()
      const codeVerifier = oauth.generateRandomCodeVerifier()
      const redirectUri = `${ctx.state.issuer}${callbackPath(party.name)}`
      const prompt = pending.prompt.filter((p) => FORWARDED_PROMPTS.includes(p)).join(' ')
      let url: URL
      try {
        url = await party.authorizationUrl({ redirectUri, state, nonce, codeChallenge: await oauth.calculatePKCECodeChallenge(codeVerifier), ...(prompt ? { prompt } : {}) })
      } catch (err) {
        if (!(err instanceof UpstreamError)) throw err
        host.log.warn({ idp: party.name, detail: err.detail }, 'external identity provider unavailable')
        await service.fail(ctx, pending, err.error, err.message)
        return
      }
      const store = host.resolve('store')
      // SPEC §9: a federated login is the first thing an anonymous request stores; capped per address.
      const started = await store.increment(`ext-addr:${secretKey(ctx.state.clientIp)}`, EXTERNAL_LOGIN_TTL)
      if (started > host.options.maxStartsPerAddress) {
        host.log.warn({ idp: party.name }, 'too many external sign-ins started from one address')
        await service.fail(ctx, pending, 'temporarily_unavailable', 'too many sign-ins were started from this address; try again later')
        return
      }
      const browser = bindBrowser(ctx)
      const record: RoundTripRecord = { pending: pending.id, idp: party.name, codeVerifier, nonce, redirectUri, browser: secretKey(browser) }
      // Keyed by the state's hash and encrypted under a key derived from the state (round-trip.ts).
      await store.put(roundTripKey(state), sealRoundTrip(state, record), EXTERNAL_LOGIN_TTL)
      ctx.set('Cache-Control', 'no-store')
      ctx.redirect(url.href)
    }

    /** Anything unexpected in a browser-facing route ends on a page, never a JSON 500 with detail. */
    async function browserRoute(ctx: RouteContext, run: () => Promise<void>): Promise<void> {
      try {
        await run()
      } catch (err) {
        if (err instanceof StoreUnavailableError) {
          host.log.warn({ err: err.message }, 'store unavailable during external sign-in')
          errorPage(ctx, 503, 'Sign-in is temporarily unavailable', 'The service is temporarily unavailable. Please try again in a moment.')
          return
        }
        if (err instanceof OAuthError) {
          errorPage(ctx, err.status >= 500 ? err.status : 400, 'Sign-in failed', err.message)
          return
        }
        host.log.error({ err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) }, 'external sign-in failed')
        errorPage(ctx, 500, 'Sign-in failed', 'The sign-in could not be completed.')
      }
    }

    host.acr({
      prefix: 'idp',
      parse(value) {
        if (!PROVIDER_NAME.test(value)) throw new OAuthError('invalid_request', 'idp in acr_values is malformed')
        return { idp: value }
      },
    })

    host.interaction({
      name: 'acr-idp',
      async beforeLogin(ctx, pending) {
        const name = pending.acr.idp
        if (name === undefined) return undefined
        // SPEC §6: a provider the client may not use shows the form with a notice, never a redirect.
        if (!allowed(pending.client, name)) return { notice: `Signing in with "${name}" is not available for this application.` }
        const service = authorization()
        if (!service) return { notice: 'External sign-in is not available right now.' }
        await startUpstream(ctx, parties.get(name)!, pending, service)
        return 'handled'
      },
      loginOptions(pending) {
        return pending.client.identity_providers
          .filter((name) => parties.has(name))
          .map((name) => ({ label: `Sign in with ${name}`, href: `/connect/external/${name}/start?pending=${encodeURIComponent(pending.id)}` }))
      },
    })

    // The login page's "Sign in with NAME" buttons.
    host.route('get', '/connect/external/:name/start', (ctx) => browserRoute(ctx, async () => {
      const party = parties.get((ctx as ParamContext).params?.name ?? '')
      if (!party) return errorPage(ctx, 404, 'Unknown identity provider', 'This identity provider is not configured.')
      const id = queryParam(ctx, 'pending', 4096)
      if (id === undefined) return errorPage(ctx, 400, 'Sign-in failed', 'The sign-in link is incomplete.')
      const service = authorization()
      if (!service) return errorPage(ctx, 503, 'Sign-in is not available', 'The authorization endpoint is not loaded.')
      const pending = await service.load(id)
      if (!pending) return errorPage(ctx, 400, 'This sign-in request has expired', 'The sign-in request is unknown or has expired.')
      if (!allowed(pending.client, party.name)) return errorPage(ctx, 403, 'Sign-in not available', `Signing in with "${party.name}" is not available for this application.`)
      await startUpstream(ctx, party, pending, service)
    }))

    // The redirect_uri registered upstream: {issuer}/connect/external/{NAME}/callback.
    host.route('get', '/connect/external/:name/callback', (ctx) => browserRoute(ctx, async () => {
      const party = parties.get((ctx as ParamContext).params?.name ?? '')
      if (!party) return errorPage(ctx, 404, 'Unknown identity provider', 'This identity provider is not configured.')
      const state = queryParam(ctx, 'state')
      if (state === undefined) return errorPage(ctx, 400, 'Sign-in failed', 'The identity provider\'s response has no state.')
      // Single use: a replayed or forged state finds nothing.
      const raw = await host.resolve('store').consume(roundTripKey(state))
      const record = raw === undefined ? undefined : openRoundTrip(state, raw)
      if (!record || record.idp !== party.name) return errorPage(ctx, 400, 'Sign-in failed', 'This sign-in response is unknown, expired or was already used.')
      const browser = readBrowserCookie(ctx)
      if (browser === undefined || secretKey(browser) !== record.browser) {
        host.log.warn({ idp: party.name }, 'external sign-in callback from a browser that did not start it')
        return errorPage(ctx, 400, 'Sign-in failed', 'This sign-in was started in another browser.')
      }
      const service = authorization()
      if (!service) return errorPage(ctx, 503, 'Sign-in is not available', 'The authorization endpoint is not loaded.')
      const pending = await service.load(record.pending)
      if (!pending) return errorPage(ctx, 400, 'This sign-in request has expired', 'The sign-in took too long.')

      // From here on the client's redirect_uri is known: errors go back to it (RFC 6749 §4.1.2.1).
      let identity
      try {
        identity = await party.complete(new URLSearchParams(ctx.querystring), { state, nonce: record.nonce, redirectUri: record.redirectUri, codeVerifier: record.codeVerifier })
      } catch (err) {
        if (!(err instanceof UpstreamError)) throw err
        host.log.warn({ idp: party.name, error: err.error, detail: err.detail }, 'external sign-in failed')
        return service.fail(ctx, pending, err.error, err.message)
      }
      const user = await host.resolve('users').authenticateExternal({
        idp: party.name,
        subject: identity.subject,
        claims: identity.claims,
        context: pending.acr,
        client: pending.client,
        provider: { autoProvision: host.options.providers.get(party.name)!.autoProvision },
      })
      if (!user) {
        host.log.info({ idp: party.name }, 'external identity not linked to a user')
        return service.fail(ctx, pending, 'access_denied', `this ${party.name} account is not linked to a user here`)
      }
      await service.complete(ctx, pending, user, { idp: party.name, amr: ['fed'] })
    }))
  },
})
