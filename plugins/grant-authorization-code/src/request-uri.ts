import { OAuthError, StoreUnavailableError, type AuthorizationParameters, type Client, type RequestUriResolver } from '@grantd/core'
import { AuthorizationParams, RedirectableError, UnredirectableError, type AuthorizationRequest } from './authorization-request.js'

/** The same bound parseAuthorizationRequest puts on a raw query. */
const MAX_QUERY = 16 * 1024

function safeGet(query: AuthorizationParams, name: string): string | undefined {
  try {
    return query.get(name)
  } catch {
    return undefined
  }
}

/**
 * The authorization endpoint's `request_uri` extension point (RFC 9126 §4). Without a
 * resolver nothing changes: `request_uri` is `request_uri_not_supported`. With one (the PAR
 * plugin registers it through the `authorization` service), `client_id` + `request_uri` stand
 * for the pushed request, every other front-channel parameter is ignored, and the pushed
 * parameters are validated exactly like a query.
 */
export class RequestUris {
  private resolver: RequestUriResolver | undefined

  use(resolver: RequestUriResolver): void {
    if (this.resolver) throw new Error(`request_uri is already answered by ${this.resolver.name}`)
    this.resolver = resolver
  }

  /** The parameters to validate, and whether they were pushed. Failures are pages, never redirects. */
  async resolve(source: string | AuthorizationParams, clients: ReadonlyMap<string, Client>): Promise<{ params: string | AuthorizationParams; pushed: boolean }> {
    if (!this.resolver || (typeof source === 'string' && source.length > MAX_QUERY)) return { params: source, pushed: false }
    const query = typeof source === 'string' ? AuthorizationParams.fromQuery(source) : source
    const given = query.all('request_uri')
    // RFC 6749 §3.1: an empty parameter is an absent one.
    if (given.length === 0 || (given.length === 1 && given[0] === '')) return { params: query, pushed: false }
    // The redirect_uri in the front channel is not the request's: nothing here may redirect (RFC 9126 §4).
    if (query.repeated('request_uri') || query.repeated('client_id')) throw new UnredirectableError('Invalid request', 'The request names more than one request_uri or client (invalid_request).')
    const clientId = safeGet(query, 'client_id')
    if (clientId === undefined) throw new UnredirectableError('Invalid request', 'The request does not say which application sent you (client_id is missing).')
    const client = clients.get(clientId)
    if (!client) throw new UnredirectableError('Unknown application', 'The application that sent you here is not known.')
    const requestUri = safeGet(query, 'request_uri')
    if (requestUri === undefined) throw new UnredirectableError('Invalid request', 'The request_uri is malformed (invalid_request_uri).')

    let pushed: AuthorizationParameters
    try {
      pushed = await this.resolver.resolve(requestUri, client)
    } catch (err) {
      if (err instanceof OAuthError) throw new UnredirectableError('Invalid request', `${err.message} (${err.error}).`)
      if (err instanceof StoreUnavailableError) throw new UnredirectableError('Temporarily unavailable', 'Signing in is temporarily unavailable. Please try again in a moment.', 503)
      throw err
    }
    const params = new AuthorizationParams()
    for (const [name, value] of pushed) params.add(name, value)
    // A resolver hands back the request of the client that presented it, or nothing (RFC 9126 §4).
    if (params.repeated('client_id') || safeGet(params, 'client_id') !== client.client_id) {
      throw new UnredirectableError('Invalid request', 'The request_uri was not issued to this application (invalid_request_uri).')
    }
    return { params, pushed: true }
  }

  /** RFC 9126 §5, §6: when PAR is required, a request that was not pushed is refused at the client. */
  check(request: AuthorizationRequest, pushed: boolean): void {
    if (pushed) return
    if (request.client.require_pushed_authorization_requests === true || this.resolver?.requires?.(request.client) === true) {
      throw new RedirectableError(new OAuthError('invalid_request', 'authorization requests of this client must be pushed first (PAR, RFC 9126)'), request.redirectUri, request.state)
    }
  }
}
