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
export { KeySet, generatePrivateJwk, type SigningAlg } from './keys.js'
export { parseAcrValues } from './acr.js'
export { parseScope, isSubset, formatScope } from './scope.js'
export { hashSecret, parseHashedSecret, SecretVerifier } from './client-secret.js'
export { randomToken, secretKey } from './tokens.js'
export * as option from './options.js'
export type { OptionRecord } from './options.js'
export { readForm, readJson, parseForm, FormParams, MAX_FORM_BYTES, MAX_PARAM_LENGTH, type BodyContext, type ReadBodyOptions } from './form-body.js'
export { isSignInThrottled, SIGN_IN_THROTTLED, type ThrottleSettings } from './throttle.js'
export { checkResourceIndicator } from './resources.js'
export { normalizeUsername } from './throttle.js'
export { isNonPublicAddress, nonPublicTarget } from './network-guard.js'
export { audit, type AuditEvent, type AuditFields } from './audit.js'
