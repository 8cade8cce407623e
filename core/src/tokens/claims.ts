import { OAuthError } from '../errors.js'
import {
  REGISTERED_CLAIMS, type ClaimsHook, type ClaimsHookInput, type JsonObject, type Logger, type ScopeDefinition,
} from '../interfaces.js'

/** A claims hook and the plugin that registered it (named in logs and errors). */
export interface RegisteredClaimsHook {
  readonly plugin: string
  readonly hook: ClaimsHook
}

/**
 * The one place user claims are released (SPEC §11): the user service says what it knows,
 * config `scopes` say which claims each granted scope releases, and `host.claims()` hooks
 * add their own. Registered claims stay the core's.
 */
export class ClaimsRelease {
  constructor(
    private readonly scopes: ReadonlyMap<string, ScopeDefinition>,
    private readonly hooks: readonly RegisteredClaimsHook[],
    private readonly log: Logger,
  ) {}

  get hasHooks(): boolean {
    return this.hooks.length > 0
  }

  /** OIDC Core §5.4: the user's claims that some granted scope lists. */
  forScopes(userClaims: JsonObject, scope: readonly string[]): JsonObject {
    const names = new Set<string>()
    for (const s of scope) for (const c of this.scopes.get(s)?.claims ?? []) names.add(c)
    return pick(userClaims, names)
  }

  /** Run every hook in load order; a later hook's value wins over an earlier one's. */
  async fromHooks(input: ClaimsHookInput): Promise<JsonObject> {
    const out: JsonObject = {}
    for (const { plugin, hook } of this.hooks) {
      const extra = await hook(input)
      if (extra === undefined || extra === null) continue
      if (typeof extra !== 'object' || Array.isArray(extra)) {
        this.log.error({ plugin, kind: input.kind }, `claims hook of plugin "${plugin}" returned something other than an object`)
        throw new OAuthError('server_error', 'internal error', { status: 500 })
      }
      const refused = Object.keys(extra).filter((k) => REGISTERED_CLAIMS.has(k))
      if (refused.length > 0) {
        // Never a token with a changed claim: the whole request fails instead.
        this.log.error({ plugin, kind: input.kind, claims: refused }, `claims hook of plugin "${plugin}" tried to set registered claim(s) ${refused.join(', ')}`)
        throw new OAuthError('server_error', 'internal error', { status: 500 })
      }
      Object.assign(out, extra)
    }
    return out
  }
}

/** The members of `source` named in `names` (own properties only). */
export function pick(source: JsonObject, names: Iterable<string>): JsonObject {
  const out: JsonObject = {}
  for (const name of names) {
    if (REGISTERED_CLAIMS.has(name) || !Object.prototype.hasOwnProperty.call(source, name)) continue
    const value = source[name]
    if (value !== undefined) out[name] = value
  }
  return out
}
