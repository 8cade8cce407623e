import type { Client } from '@grantd/core'

/** RFC 8252 §7.3: the loopback IP literals a native app may listen on; `localhost` is not one (§8.3). */
const LOOPBACK_WITHOUT_PORT = /^http:\/\/(127\.0\.0\.1|\[::1\])(?=[/?]|$)/
const PORT = /^:([1-9][0-9]{0,4})/

/**
 * Whether `requested` may be used as the redirect_uri of `client`. RFC 9700 §4.1.1:
 * exact string comparison with a registered URI, no normalisation. One exception, RFC 8252
 * §7.3 / §8.4: a public client (a native app) that registered a loopback URI *without a
 * port* (`http://127.0.0.1/cb`, `http://[::1]/cb`) may use it with any port, everything
 * else of the URI unchanged. Confidential clients and registrations with a port match exactly.
 */
export function redirectUriAllowed(client: Client, requested: string): boolean {
  if (client.redirect_uris.includes(requested)) return true
  if (client.confidential) return false
  for (const registered of client.redirect_uris) {
    const host = LOOPBACK_WITHOUT_PORT.exec(registered)
    if (!host || !requested.startsWith(host[0])) continue
    const rest = requested.slice(host[0].length)
    const port = PORT.exec(rest)
    if (!port || Number(port[1]) > 65535) continue
    if (rest.slice(port[0].length) === registered.slice(host[0].length)) return true
  }
  return false
}
