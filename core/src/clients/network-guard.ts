import { lookup } from 'node:dns/promises'
import { BlockList, isIP } from 'node:net'

/**
 * SSRF filtering for URIs the server itself calls on behalf of a client that registered
 * itself (RFC 7591 §5, RFC 9700 §4.15 spirit): no loopback, private, link-local, shared,
 * multicast or reserved targets, unless an operator allows them.
 */
const BLOCKED = new BlockList()
for (const [net, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24],
  ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) BLOCKED.addSubnet(net, bits, 'ipv4')
for (const [net, bits] of [
  ['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8], ['100::', 64], ['2001:db8::', 32],
] as const) BLOCKED.addSubnet(net, bits, 'ipv6')

/** The IPv4 address inside an IPv4-mapped, -compatible or NAT64 (64:ff9b::/96) IPv6 address. */
function embeddedIpv4(ip: string): string | undefined {
  const m = /^(?:::ffff:|::|64:ff9b::)(?:0:)?([0-9.]+|[0-9a-f]{1,4}:[0-9a-f]{1,4})$/i.exec(ip)
  if (!m) return undefined
  const tail = m[1]!
  if (isIP(tail) === 4) return tail
  const [hi, lo] = tail.split(':').map((h) => parseInt(h, 16)) as [number, number]
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`
}

/** Whether an IP address literal is one a registered client may not make the server call. */
export function isNonPublicAddress(ip: string): boolean {
  const family = isIP(ip)
  if (family === 4) return BLOCKED.check(ip, 'ipv4')
  if (family !== 6) return true
  const v4 = embeddedIpv4(ip)
  if (v4 !== undefined) return BLOCKED.check(v4, 'ipv4')
  return BLOCKED.check(ip, 'ipv6')
}

/**
 * Why the server must not call `uri` for a registered client, or `undefined` when it may:
 * the host is checked as a literal, and a name through every address it resolves to
 * (`resolve: false` skips DNS). A name that does not resolve now passes (it is checked
 * again before each call).
 */
export async function nonPublicTarget(uri: string, options: { resolve?: boolean } = {}): Promise<string | undefined> {
  let host: string
  try {
    host = new URL(uri).hostname
  } catch {
    return 'not an absolute URL'
  }
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1)
  const name = host.toLowerCase().replace(/\.$/, '')
  if (name === 'localhost' || name.endsWith('.localhost')) return `${host} is a loopback name`
  if (isIP(name) !== 0) return isNonPublicAddress(name) ? `${host} is not a public address` : undefined
  if (options.resolve === false) return undefined
  let addresses: { address: string }[]
  try {
    addresses = await lookup(name, { all: true, verbatim: true })
  } catch {
    return undefined
  }
  const bad = addresses.find((a) => isNonPublicAddress(a.address))
  return bad ? `${host} resolves to ${bad.address}, which is not a public address` : undefined
}
