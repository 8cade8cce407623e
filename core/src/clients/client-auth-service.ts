import { readAuthenticatedForm, type ClientAuthenticator } from './client-auth.js'
import type { ClientAuthService } from '../interfaces.js'

/**
 * The `clientAuth` service plugins resolve: the token endpoint's client authentication
 * (SPEC §5, with its secret-guessing limits) behind the host's contract, so a plugin endpoint
 * such as PAR (RFC 9126 §2: "the same client authentication as the token endpoint") never
 * re-implements it. It wraps `readAuthenticatedForm` and changes nothing in it.
 */
export function clientAuthService(authenticator: ClientAuthenticator): ClientAuthService {
  return {
    readForm: (ctx, options = {}) => readAuthenticatedForm(ctx, authenticator, options.reads ?? []),
  }
}
