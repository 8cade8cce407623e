import { BlockList, isIP } from 'node:net'
import type { IncomingMessage } from 'node:http'
import { ConfigError } from '../errors.js'
import type { RequestState } from '../interfaces.js'

const HOST = /^(?:[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/
const PREFIX = /^(?:\/[A-Za-z0-9._~!$&'()*+,;=:@-]+)*$/
/** RFC 9112 §3.2.2 absolute-form: scheme and authority of the request target. */
const ABSOLUTE_FORM = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)/

/** Which peers may set X-Forwarded-* (SPEC §4 `proxy.trust`). */
export class ProxyTrust {
  private readonly all: boolean
  private readonly list: BlockList | undefined

  constructor(trust: boolean | readonly string[]) {
    this.all = trust === true
    if (Array.isArray(trust)) {
      const list = new BlockList()
      trust.forEach((entry, i) => {
        const [addr, bits] = entry.split('/')
        const family = isIP(addr ?? '')
        if (!addr || family === 0) throw new ConfigError(`proxy.trust[${i}]: expected an IP address or CIDR`)
        const type = family === 6 ? 'ipv6' : 'ipv4'
        if (bits === undefined) list.addAddress(addr, type)
        else {
          const prefix = Number(bits)
          if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32)) throw new ConfigError(`proxy.trust[${i}]: bad prefix length`)
          list.addSubnet(addr, prefix, type)
        }
      })
      this.list = list
    }
  }

  get enabled(): boolean {
    return this.all || this.list !== undefined
  }

  trusts(address: string | undefined): boolean {
    if (this.all) return true
    if (!this.list || !address) return false
    const plain = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address
    const family = isIP(plain)
    if (family === 0) return false
    return this.list.check(plain, family === 6 ? 'ipv6' : 'ipv4')
  }
}

function first(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value
  if (v === undefined) return undefined
  const comma = v.indexOf(',')
  return (comma === -1 ? v : v.slice(0, comma)).trim()
}

/**
 * Computes the per-request public base URL and client address. A configured issuer
 * wins over anything the request says; forwarded headers count only from a trusted peer.
 */
export class IssuerResolver {
  private readonly fixed: RequestState | undefined

  constructor(private readonly configured: string | undefined, private readonly trust: ProxyTrust) {
    if (configured) this.fixed = { issuer: configured, clientIp: '', secure: configured.startsWith('https:') }
  }

  resolve(req: IncomingMessage): RequestState | undefined {
    const peer = req.socket.remoteAddress ?? ''
    const trusted = this.trust.enabled && this.trust.trusts(peer)
    const clientIp = trusted ? this.forwardedFor(req, peer) : peer
    if (this.fixed) return { issuer: this.fixed.issuer, secure: this.fixed.secure, clientIp }

    let proto = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http'
    let host = req.headers.host
    let prefix = ''
    const target = req.url ?? '/'
    if (!target.startsWith('/') && target !== '*') {
      // RFC 9112 §3.2.2: with an absolute-form target the server MUST ignore Host and use the
      // target's authority (§3.3: the target URI is the request target), so the host a proxy
      // routed on is the host in `iss`. Only http(s) URLs with a plain authority are accepted.
      const absolute = ABSOLUTE_FORM.exec(target)
      const scheme = absolute?.[1]!.toLowerCase()
      if (!absolute || (scheme !== 'http' && scheme !== 'https')) return undefined
      proto = scheme
      host = absolute[2]
    }
    if (trusted) {
      const fProto = first(req.headers['x-forwarded-proto'])?.toLowerCase()
      if (fProto === 'https' || fProto === 'http') proto = fProto
      const fHost = first(req.headers['x-forwarded-host'])
      if (fHost) host = fHost
      const fPrefix = first(req.headers['x-forwarded-prefix'])
      if (fPrefix) {
        const trimmed = fPrefix.replace(/\/+$/, '')
        if (!PREFIX.test(trimmed)) return undefined
        prefix = trimmed
      }
    }
    if (!host || !HOST.test(host)) return undefined
    const issuer = `${proto}://${host.toLowerCase()}${prefix}`
    // The pattern admits what no URL can hold (port 99999, `[::::]`); plugins parse the issuer, so refuse those here.
    if (!URL.canParse(issuer)) return undefined
    return { issuer, clientIp, secure: proto === 'https' }
  }

  /** Rightmost address not belonging to a trusted proxy (leftmost when every peer is trusted). */
  private forwardedFor(req: IncomingMessage, peer: string): string {
    const header = req.headers['x-forwarded-for']
    const raw = Array.isArray(header) ? header.join(',') : header
    if (!raw) return peer
    const hops = raw.split(',').map((h) => h.trim()).filter((h) => isIP(h) !== 0)
    if (hops.length === 0) return peer
    for (let i = hops.length - 1; i >= 0; i--) {
      if (!this.trust.trusts(hops[i])) return hops[i]!
    }
    return hops[0]!
  }
}
