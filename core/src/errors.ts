/**
 * One error type for every OAuth error the server answers (node-oidc-provider's
 * helpers/errors.js shape): `error` and `error_description` are public, `detail`
 * is logged and never sent.
 */

const STATUS: Readonly<Record<string, number>> = {
  invalid_request: 400,
  invalid_client: 401,
  invalid_grant: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  invalid_scope: 400,
  invalid_token: 401,
  insufficient_scope: 403,
  unsupported_token_type: 400,
  access_denied: 403,
  login_required: 400,
  server_error: 500,
  temporarily_unavailable: 503,
  request_too_large: 413,
  method_not_allowed: 405,
  not_found: 404,
}

/**
 * Marks OAuth errors across copies of @grantd/core: a plugin that bundles or installs
 * its own copy still throws errors the server recognises (`instanceof` checks the brand).
 */
const OAUTH_ERROR = Symbol.for('grantd.OAuthError')

/**
 * The error a plugin throws to refuse a request: `error` is the OAuth error code
 * (RFC 6749 §5.2, RFC 8693 §2.2.2, …), the message is the public `error_description`.
 * Anything else a plugin throws is logged and answered as `server_error`.
 */
export class OAuthError extends Error {
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as { [OAUTH_ERROR]?: unknown })[OAUTH_ERROR] === true
  }

  readonly [OAUTH_ERROR] = true
  readonly error: string
  readonly status: number
  /** Private detail for logs; never part of the response. */
  readonly detail?: string
  /** Extra response headers (e.g. WWW-Authenticate). */
  readonly headers: Record<string, string>

  constructor(error: string, description?: string, options: { status?: number; detail?: string; headers?: Record<string, string> } = {}) {
    super(description ?? error)
    this.name = 'OAuthError'
    this.error = error
    this.status = options.status ?? STATUS[error] ?? 400
    if (options.detail !== undefined) this.detail = options.detail
    this.headers = options.headers ?? {}
  }

  get description(): string {
    return this.message
  }

  toJSON(): { error: string; error_description: string } {
    return { error: this.error, error_description: this.message }
  }
}

/** Thrown by stores when the backend cannot be reached; answered as 503 temporarily_unavailable. */
export class StoreUnavailableError extends Error {
  constructor(message = 'store unavailable', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StoreUnavailableError'
  }
}

/** A configuration problem; the CLI prints the message on one line and exits non-zero. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

export function isOAuthError(err: unknown): err is OAuthError {
  return err instanceof OAuthError
}
