/**
 * @grantd/core — the plugin SDK and the server.
 *
 * Plugin authors need `definePlugin`, `OAuthError` and the types; embedders use
 * `createServer` with `loadConfigFile` / `validateConfig`.
 */
export * from './interfaces.js'
export { OAuthError, StoreUnavailableError, ConfigError, isOAuthError } from './errors.js'
export { createServer, type GrantdServer, type CreateServerOptions } from './app.js'
export { loadConfigFile, validateConfig, type ServerConfig, type PluginRef, type ClientConfig } from './config.js'
export { KeySet, generatePrivateJwk, type SigningAlg } from './tokens/keys.js'
export { parseAcrValues } from './endpoints/acr.js'
export { parseScope, isSubset, formatScope } from './tokens/scope.js'
export { hashSecret, parseHashedSecret, SecretVerifier } from './clients/client-secret.js'
export { randomToken, secretKey } from './tokens/tokens.js'
export * as option from './host/options.js'
export type { OptionRecord } from './host/options.js'
export { readForm, readJson, parseForm, FormParams, MAX_FORM_BYTES, MAX_PARAM_LENGTH, type BodyContext, type ReadBodyOptions } from './http/form-body.js'
export { isSignInThrottled, SIGN_IN_THROTTLED, type ThrottleSettings } from './ops/throttle.js'
export { checkResourceIndicator } from './tokens/resources.js'
export { normalizeUsername } from './ops/throttle.js'
export { isNonPublicAddress, nonPublicTarget } from './clients/network-guard.js'
export { audit, type AuditEvent, type AuditFields } from './ops/audit.js'
// Browser-facing helpers the core's own pages use, for plugins that serve pages (one cookie reader, one escaper).
export { readCookie } from './sessions/session-cookie.js'
export { escapeHtml } from './sessions/pages.js'
