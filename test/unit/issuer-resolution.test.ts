/**
 * SPEC §4 issuer and proxy trust as pure logic: which peers may forward, which headers
 * count, and the client address behind a chain of proxies.
 */
import t from 'tap'
import type { IncomingMessage } from 'node:http'
import { IssuerResolver, ProxyTrust } from '../../core/src/http/issuer.js'

function req(peer: string, headers: Record<string, string | string[]>, encrypted = false): IncomingMessage {
  return { socket: { remoteAddress: peer, encrypted }, headers } as unknown as IncomingMessage
}
const FORWARDED = { host: '127.0.0.1:4000', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'id.example.com', 'x-forwarded-prefix': '/auth', 'x-forwarded-for': '203.0.113.9' }

t.test('ProxyTrust: booleans, addresses, CIDRs, IPv4-mapped IPv6', async (t) => {
  t.notOk(new ProxyTrust(false).enabled)
  t.notOk(new ProxyTrust(false).trusts('127.0.0.1'))
  t.ok(new ProxyTrust(true).trusts('198.51.100.1'))
  const list = new ProxyTrust(['10.0.0.0/8', '192.168.1.7', 'fd00::/8'])
  t.ok(list.enabled)
  for (const yes of ['10.1.2.3', '10.255.255.255', '192.168.1.7', '::ffff:10.0.0.1', 'fd12::1']) t.ok(list.trusts(yes), yes)
  for (const no of ['11.0.0.1', '192.168.1.8', '127.0.0.1', '::1', 'fe80::1', '', 'not-an-ip', undefined]) t.notOk(list.trusts(no), String(no))
  t.ok(new ProxyTrust([]).enabled, 'an empty list is "trust nobody", still a list')
  t.notOk(new ProxyTrust([]).trusts('127.0.0.1'))
  t.ok(new ProxyTrust(['::1/128']).trusts('::1'))
})

t.test('ProxyTrust: a bad entry is a config error naming its index', async (t) => {
  for (const [entries, message] of [
    [['10.0.0.0/8', 'nope'], /^proxy\.trust\[1\]: expected an IP address or CIDR$/],
    [['10.0.0.0/33'], /^proxy\.trust\[0\]: bad prefix length$/],
    [['::1/129'], /^proxy\.trust\[0\]: bad prefix length$/],
    [['10.0.0.0/x'], /^proxy\.trust\[0\]: bad prefix length$/],
    [['10.0.0.0/-1'], /^proxy\.trust\[0\]: bad prefix length$/],
    [['/8'], /^proxy\.trust\[0\]: expected/],
  ] as const) t.throws(() => new ProxyTrust(entries), { name: 'ConfigError', message }, entries.join(','))
})

t.test('a configured issuer is fixed; only the client address may come from a trusted proxy', async (t) => {
  const fixed = new IssuerResolver('https://login.example.org', new ProxyTrust(true))
  t.same(fixed.resolve(req('127.0.0.1', FORWARDED)), { issuer: 'https://login.example.org', secure: true, clientIp: '203.0.113.9' })
  t.same(fixed.resolve(req('127.0.0.1', { host: 'a b/c' })), { issuer: 'https://login.example.org', secure: true, clientIp: '127.0.0.1' }, 'even a junk Host')
  const untrusted = new IssuerResolver('http://127.0.0.1:4000', new ProxyTrust(false))
  t.same(untrusted.resolve(req('127.0.0.1', FORWARDED)), { issuer: 'http://127.0.0.1:4000', secure: false, clientIp: '127.0.0.1' })
})

t.test('derived issuer: Host alone unless the peer is trusted', async (t) => {
  const plain = new IssuerResolver(undefined, new ProxyTrust(false))
  t.same(plain.resolve(req('127.0.0.1', FORWARDED)), { issuer: 'http://127.0.0.1:4000', secure: false, clientIp: '127.0.0.1' })
  t.equal(plain.resolve(req('::1', { host: 'ID.Example.COM:8443' }))?.issuer, 'http://id.example.com:8443', 'host is case-folded')
  t.equal(plain.resolve(req('::1', { host: '[::1]:4000' }))?.issuer, 'http://[::1]:4000')
  t.equal(plain.resolve(req('127.0.0.1', { host: 'id.example.com' }, true))?.issuer, 'https://id.example.com', 'TLS socket')
  for (const bad of [undefined, '', 'a b', 'a/b', 'user@host', 'host:99999x', 'host\r\nx', 'evil.example/path']) {
    const headers: Record<string, string> = bad === undefined ? {} : { host: bad }
    t.equal(plain.resolve(req('127.0.0.1', headers)), undefined, `Host ${JSON.stringify(bad)} is refused`)
  }

  const trusted = new IssuerResolver(undefined, new ProxyTrust(['127.0.0.0/8']))
  t.same(trusted.resolve(req('127.0.0.1', FORWARDED)), { issuer: 'https://id.example.com/auth', secure: true, clientIp: '203.0.113.9' })
  t.equal(trusted.resolve(req('10.0.0.1', FORWARDED))?.issuer, 'http://127.0.0.1:4000', 'a peer outside the list is ignored')
  t.equal(trusted.resolve(req('10.0.0.1', FORWARDED))?.clientIp, '10.0.0.1')
  t.equal(trusted.resolve(req('::ffff:127.0.0.1', FORWARDED))?.issuer, 'https://id.example.com/auth', 'IPv4-mapped peer')
})

t.test('forwarded headers from a trusted peer: lists, partial sets, junk', async (t) => {
  const r = new IssuerResolver(undefined, new ProxyTrust(true))
  const issuer = (h: Record<string, string | string[]>) => r.resolve(req('127.0.0.1', { host: 'internal:8080', ...h }))?.issuer
  t.equal(issuer({ 'x-forwarded-proto': 'HTTPS' }), 'https://internal:8080')
  t.equal(issuer({ 'x-forwarded-proto': 'https, http', 'x-forwarded-host': 'id.example.com, internal' }), 'https://id.example.com', 'first (client-facing) hop')
  t.equal(issuer({ 'x-forwarded-proto': 'gopher' }), 'http://internal:8080', 'unknown protocol ignored')
  t.equal(issuer({ 'x-forwarded-prefix': '/auth/' }), 'http://internal:8080/auth', 'trailing slash dropped')
  t.equal(issuer({ 'x-forwarded-prefix': '/' }), 'http://internal:8080')
  t.equal(issuer({ 'x-forwarded-prefix': '/a/b-c_d.e~f' }), 'http://internal:8080/a/b-c_d.e~f')
  t.equal(issuer({ 'x-forwarded-host': 'ID.EXAMPLE.com' }), 'http://id.example.com')
  const junk: Array<Record<string, string>> = [{ 'x-forwarded-prefix': 'auth' }, { 'x-forwarded-prefix': '/a b' }, { 'x-forwarded-prefix': '/a?x=1' }, { 'x-forwarded-prefix': '/a#x' }, { 'x-forwarded-prefix': '/a//b' }, { 'x-forwarded-host': 'a/b' }, { 'x-forwarded-host': 'u@h' }]
  for (const headers of junk) {
    t.equal(issuer(headers), undefined, `refused: ${JSON.stringify(headers)}`)
  }
})

t.test('client address: the rightmost hop that is not a trusted proxy', async (t) => {
  const list = new IssuerResolver(undefined, new ProxyTrust(['10.0.0.0/8', '127.0.0.1']))
  const ip = (xff: string | string[], peer = '127.0.0.1') => list.resolve(req(peer, { host: 'h', 'x-forwarded-for': xff }))?.clientIp
  t.equal(ip('198.51.100.7, 10.0.0.2'), '198.51.100.7', 'skips the inner proxy')
  t.equal(ip('6.6.6.6, 198.51.100.7, 10.0.0.2'), '198.51.100.7', 'a spoofed leftmost hop does not win')
  t.equal(ip('10.0.0.3, 10.0.0.2'), '10.0.0.3', 'all trusted: the leftmost')
  t.equal(ip('garbage, 198.51.100.7'), '198.51.100.7', 'non-addresses are skipped')
  t.equal(ip('garbage'), '127.0.0.1', 'nothing usable: the peer')
  t.equal(ip(['198.51.100.1', '198.51.100.2, 10.0.0.9']), '198.51.100.2', 'repeated headers are one list')
  t.equal(ip('198.51.100.7', '192.0.2.1'), '192.0.2.1', 'an untrusted peer cannot forward')
})
