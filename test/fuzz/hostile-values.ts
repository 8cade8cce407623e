/**
 * Hostile values the fuzz suite draws from: markup and CRLF payloads whose reflection it
 * can detect, control characters, invalid UTF-8, overlong values just past each limit,
 * prototype-polluting names, and malformed JWTs.
 */
import { createHash } from 'node:crypto'
import type { Prng } from './prng.js'

/** A header name no real answer carries: seeing it means a CRLF in input became a header. */
export const INJECTED_HEADER = 'x-fuzz-injected'
export const INJECTED_COOKIE = 'fuzzinjected'

/** Markup that must never come back unescaped in an HTML page. */
export const MARKUP = [
  '<script>alert(1)</script>',
  '"><svg onload=alert(1)>',
  "'><img src=x onerror=alert(1)>",
  '" autofocus onfocus="alert(1)',
  "' autofocus onfocus='alert(1)",
  '</title><script>alert(1)</script>',
  '<iframe src=javascript:alert(1)>',
  '<a href="javascript:alert(1)">x</a>',
] as const

export const CRLF = [
  `x\r\n${INJECTED_HEADER}: 1`,
  `x\r\nSet-Cookie: ${INJECTED_COOKIE}=1`,
  `\r\n\r\n<html>${INJECTED_HEADER}`,
  `x\n${INJECTED_HEADER}: 1`,
  `x\r${INJECTED_HEADER}: 1`,
  `%0d%0a${INJECTED_HEADER}:%201`,
  `x\u010d\u010a${INJECTED_HEADER}: 1`,
] as const

const ODD = [
  '', ' ', '  ', '\t', '+', '%', '%%', '&', '=', '==', ';', ',', '"', "'", '\\', '/', '//', '.', '..', '*', '#', '?',
  'a\u0000b', '\u0000', '\u0007', '\u001b[31m', '\u007f', '\u0085', '\u2028', '\u2029', '\u202e', '\ufeff', '\ufffd',
  '\ud800', '\udfff', '\ud83d\ude00', 'ﬀ', 'İ', 'ǅ', 'ß', 'Ａ',
  '-1', '0', '1e309', 'NaN', 'Infinity', '0x10', '9007199254740993', 'true', 'null', 'undefined',
  '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf',
  '{"a":1}', '[]', '{}', '{"__proto__":{"admin":true}}',
  '../../etc/passwd', '..%2f..%2f', '%2e%2e%2f', 'C:\\Windows\\win.ini',
  '{{7*7}}', '${7*7}', '#{7*7}', '<%= 7*7 %>',
  "' OR '1'='1", '"; DROP TABLE users; --', '*)(uid=*))(|(uid=*',
  'http://evil.example/cb', '//evil.example', 'data:text/html,<b>x</b>', 'javascript:alert(1)', 'file:///etc/passwd',
  'http://127.0.0.1:5000/callback/../evil', 'http://127.0.0.1:5000/callback#frag', 'http://127.0.0.1:5000/callback?x=1',
  'HTTP://127.0.0.1:5000/callback', 'http://127.0.0.1:5000/callback%20', 'http://127.0.0.1:5000/callback/', 'http://127.0.0.1:5000/callback',
  'http://127.0.0.1:5000/spa', 'http://user@127.0.0.1:5000/callback',
]

/** Values at and just past the core's limits (form-body.ts, scope.ts, acr.ts). */
function overlong(p: Prng): string {
  switch (p.int(0, 6)) {
    case 0: return 'A'.repeat(p.pick([4095, 4096, 4097, 8192]))
    case 1: return Array.from({ length: p.pick([64, 65, 200]) }, (_, i) => `s${i}`).join(' ')
    case 2: return 'x'.repeat(p.pick([1024, 1025, 2048, 2049]))
    case 3: return Array.from({ length: p.int(10, 300) }, () => `${p.pick(['tenant', 'idp', 'loa', 'x'])}:${p.string(p.int(1, 12), 'abcXYZ09-_.<>"')}`).join(' ')
    case 4: return 'a '.repeat(p.int(30, 2000))
    case 5: return p.string(p.int(100, 3000), 'abcdefghijklmnopqrstuvwxyz0123456789-._~')
    default: return '\u00e9'.repeat(p.int(1000, 2100))
  }
}

function b64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url')
}

/** A JWT-shaped string that is wrong in some way: structure, JSON, alg, key references, claims, signature. */
export function malformedJwt(p: Prng, context: { issuer: string; clientId?: string; audience?: string }): string {
  const now = Math.floor(Date.now() / 1000)
  const headers: unknown[] = [
    { alg: 'none' }, { alg: 'none', typ: 'JWT' }, { alg: 'HS256' }, { alg: 'HS256', typ: 'at+jwt' }, { alg: 'ES256' },
    { alg: 'ES256', kid: '../../../../etc/passwd' }, { alg: 'RS256', jku: 'http://127.0.0.1:9/jwks.json' },
    { alg: 'ES256', x5u: 'http://127.0.0.1:9/cert.pem' }, { alg: 'ES256', crit: ['exp'] }, { alg: 'ES256', jwk: { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' } },
    { alg: { nested: true } }, { alg: 'ES256', typ: 'at+jwt', kid: p.string(300, 'ab') }, { alg: 'EdDSA' }, { alg: 'PS256' }, { alg: 'dir', enc: 'A128GCM' },
    [], 'string', null, 12,
  ]
  const claims: unknown[] = [
    { iss: context.issuer, sub: 'u-alice', aud: context.audience ?? context.issuer, exp: now + 300, iat: now, jti: 'j' },
    { iss: context.clientId ?? 'svc', sub: context.clientId ?? 'svc', aud: `${context.issuer}/connect/token`, exp: now + 60, jti: p.string(16, 'abc') },
    { iss: context.issuer, sub: 'u-alice', scope: 'openid api', client_id: 'svc', exp: 1e20, iat: -1, jti: ['a'] },
    { exp: 'tomorrow', iat: {}, nbf: now + 1e9 }, { sub: null, aud: [], iss: 123 }, { __proto__: { admin: true } }, [], 'claims', {},
  ]
  const segment = (): string => {
    switch (p.int(0, 9)) {
      case 0: return b64url(JSON.stringify(p.pick(headers)))
      case 1: return b64url(JSON.stringify(p.pick(claims)))
      case 2: return b64url(p.bytes(p.int(0, 64)))
      case 3: return b64url('{')
      case 4: return p.string(p.int(1, 40), 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=')
      case 5: return ''
      case 6: return 'eyJ' + p.string(p.int(0, 30), 'abcXYZ019_-')
      case 7: return b64url(p.bytes(64))
      case 8: return b64url(p.pick(MARKUP))
      default: return 'x'.repeat(p.int(1, 5000))
    }
  }
  const shape = p.int(0, 5)
  if (shape === 0) {
    // Structurally perfect, cryptographically worthless.
    return `${b64url(JSON.stringify(p.pick(headers.slice(0, 10))))}.${b64url(JSON.stringify(p.pick(claims)))}.${p.chance(0.3) ? '' : b64url(p.bytes(64))}`
  }
  const parts = p.pick([1, 2, 3, 3, 3, 4, 5, 6])
  return Array.from({ length: shape === 1 ? 3 : parts }, segment).join('.')
}

/** Corrupt a real token: flip a character in header, payload or signature, or rewrite a claim. */
export function tamperedJwt(p: Prng, token: string): string {
  const parts = token.split('.')
  if (parts.length !== 3) return token + 'x'
  let which = p.int(0, 3)
  if (which === 3) {
    const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Record<string, unknown>
    payload[p.pick(['scope', 'sub', 'exp', 'aud', 'client_id', 'iss'])] = p.pick(['openid api admin', 'u-bob', 9_999_999_999, 'other', 'evil'])
    const forged = `${parts[0]}.${b64url(JSON.stringify(payload))}.${parts[2]}`
    // The new value may equal the old one (re-encoding is then byte-identical): tamper elsewhere instead.
    if (forged !== token) return forged
  }
  if (which === 3) which = 1
  const part = parts[which]!
  // Never the last character: its low bits may be padding, and a change there can decode to the same bytes.
  const at = p.int(0, Math.max(0, part.length - 2))
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  let replacement = p.pick([...alphabet])
  if (replacement === part[at]) replacement = replacement === 'A' ? 'B' : 'A'
  parts[which] = part.slice(0, at) + replacement + part.slice(at + 1)
  if (which === 0 && p.chance(0.5)) parts[0] = b64url(JSON.stringify({ alg: 'none', typ: 'at+jwt' }))
  if (which === 2 && p.chance(0.3)) parts[2] = ''
  return parts.join('.')
}

/** One hostile value; `known` are real-looking values (client ids, tokens) mixed in so requests go deeper. */
export function hostileValue(p: Prng, known: readonly string[]): string {
  const roll = p.int(0, 99)
  if (roll < 25 && known.length > 0) return p.pick(known)
  if (roll < 37) return p.pick(MARKUP)
  if (roll < 47) return p.pick(CRLF)
  if (roll < 70) return p.pick(ODD)
  if (roll < 80) return overlong(p)
  if (roll < 90) return p.string(p.int(1, 80), ' !"#$%&\'()*+,-./0123456789:;<=>?@ABCZ[\\]^_`abcz{|}~\u00e9\u4e2d')
  return p.bytes(p.int(1, 40)).toString('latin1')
}

/** A PKCE pair for requests that should get past the first checks. */
export function pkce(p: Prng): { verifier: string; challenge: string } {
  const verifier = p.string(64, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}
