/** Options of `@grantd/acr-idp` (SPEC §6), validated at boot; errors name the key path. */
import { option } from '@grantd/core'

export interface ProviderOptions {
  /** The upstream OIDC issuer identifier; its discovery document is fetched from it. */
  readonly issuer: string
  readonly client_id: string
  readonly client_secret: string
  /** Requested upstream scope; must contain `openid`. Default `openid profile email`. */
  readonly scope: string
  /** Create a local user for upstream identities no user links (the user service decides how). */
  readonly autoProvision: boolean
}

export interface AcrIdpOptions {
  readonly providers: ReadonlyMap<string, ProviderOptions>
  /** External sign-ins one client address may start per 10 minutes (each stores a round-trip record). */
  readonly maxStartsPerAddress: number
}

/** Provider names appear in `acr_values` and in callback paths: keep them plain. */
export const PROVIDER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

const PROVIDER_KEYS = ['issuer', 'client_id', 'client_secret', 'scope', 'autoProvision']

export function parseAcrIdpOptions(raw: unknown): AcrIdpOptions {
  const o = option.object(raw ?? {}, '(options)')
  option.only(o, '(options)', ['providers', 'maxStartsPerAddress'])
  const max = o.maxStartsPerAddress === undefined ? undefined : option.integer(o.maxStartsPerAddress, 'maxStartsPerAddress', 1, 1_000_000)
  const providers = new Map<string, ProviderOptions>()
  const given = o.providers === undefined ? {} : option.object(o.providers, 'providers')
  for (const [name, value] of Object.entries(given)) {
    const at = option.at('providers', name)
    if (!PROVIDER_NAME.test(name)) option.fail(at, 'provider names are 1-64 letters, digits, ".", "_" or "-"')
    const p = option.object(value, at)
    option.only(p, at, PROVIDER_KEYS)
    const scope = p.scope === undefined ? 'openid profile email' : option.string(p.scope, `${at}.scope`)
    if (!scope.split(' ').includes('openid')) option.fail(`${at}.scope`, 'must include openid')
    providers.set(name, {
      issuer: option.url(p.issuer, `${at}.issuer`, { allowQuery: false }),
      client_id: option.string(p.client_id, `${at}.client_id`),
      client_secret: option.string(p.client_secret, `${at}.client_secret`),
      scope,
      autoProvision: p.autoProvision === undefined ? false : option.boolean(p.autoProvision, `${at}.autoProvision`),
    })
  }
  return { providers, maxStartsPerAddress: typeof max === 'number' ? max : 100 }
}
