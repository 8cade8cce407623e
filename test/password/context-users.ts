/**
 * A user service for tests that remembers the acr context each call received, and
 * accepts `idp:corp-ldap` on the password grant (an IdentityServer3-style directory
 * chosen by acr_values). Loaded from config as a relative plugin path.
 */
import { definePlugin, type AcrContext, type Client, type PasswordLogin, type User, type UserService } from '@grantd/core'

export class ContextUsers implements UserService {
  readonly seen: AcrContext[] = []
  readonly activeChecks: string[] = []
  active = true

  async authenticate({ username, password, context }: PasswordLogin): Promise<User | undefined> {
    this.seen.push(context)
    if (username !== 'erin' || password !== 'pw') return undefined
    return { sub: context.idp ? `${context.idp}|erin` : 'u-erin', ...(context.tenant ? { tenant: context.tenant } : {}) }
  }

  async authenticateExternal(): Promise<User | undefined> {
    return undefined
  }

  async findById(sub: string): Promise<User | undefined> {
    return { sub }
  }

  async claims(): Promise<Record<string, never>> {
    return {}
  }

  async isActive(sub: string): Promise<boolean> {
    this.activeChecks.push(sub)
    return this.active
  }

  acceptsPasswordIdp(idp: string, client: Client): boolean {
    return idp === 'corp-ldap' && client.client_id !== 'no-ldap'
  }
}

export default definePlugin({
  name: 'context-users',
  register(host) {
    host.users(new ContextUsers())
  },
})
