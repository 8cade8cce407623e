/**
 * A user service for refresh tests: alice signs in with wonderland, and a test can switch
 * her off (`active = false`) to check that a refresh asks again. Loaded from config by path.
 */
import { definePlugin, type AcrContext, type JsonObject, type PasswordLogin, type User, type UserService } from '@grantd/core'

export class SwitchableUsers implements UserService {
  active = true
  readonly activeChecks: Array<{ sub: string; context: AcrContext }> = []
  private readonly alice: User = { sub: 'u-alice', tenant: 'acme' }

  async authenticate({ username, password }: PasswordLogin): Promise<User | undefined> {
    return username === 'alice' && password === 'wonderland' && this.active ? this.alice : undefined
  }

  async authenticateExternal(): Promise<User | undefined> {
    return undefined
  }

  async findById(sub: string): Promise<User | undefined> {
    return sub === this.alice.sub && this.active ? this.alice : undefined
  }

  async claims(): Promise<JsonObject> {
    return { name: 'Alice' }
  }

  async isActive(sub: string, context: AcrContext): Promise<boolean> {
    this.activeChecks.push({ sub, context })
    return sub === this.alice.sub && this.active
  }
}

export default definePlugin({
  name: 'switchable-users',
  register(host) {
    host.users(new SwitchableUsers())
  },
})
