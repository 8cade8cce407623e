/**
 * Turns a seeded PRNG into one hostile request against a target: the strategy, the
 * endpoint, the exact bytes, and what the answer must not be.
 */
import { buildRequest } from './raw-client.js'
import { CRLF, hostileValue, malformedJwt, MARKUP, pkce, tamperedJwt } from './hostile-values.js'
import type { Prng } from './prng.js'
import { ACCESS_TOKEN_TYPE, clientAssertion, freshLogin, JWT_BEARER_ASSERTION, SECRETS, TOKEN_EXCHANGE, WEB_REDIRECT, type Endpoint, type Target } from './target.js'

export interface FuzzCase {
  strategy: string
  endpoint: Endpoint
  request: Buffer
  /** Node's HTTP parser accepts the request, so grantd itself answers (its header and body rules apply). */
  reachesApp: boolean
  /** A forged or tampered credential: it must not buy a code, a token or an active introspection. */
  mustNotGrant: boolean
  /** Short, printable description for findings. */
  summary: string
}

type Pairs = Array<[string, string]>

const PARAM_NAMES = [
  'grant_type', 'client_id', 'client_secret', 'client_assertion', 'client_assertion_type', 'scope', 'code', 'redirect_uri',
  'code_verifier', 'refresh_token', 'username', 'password', 'acr_values', 'subject_token', 'subject_token_type',
  'requested_token_type', 'audience', 'resource', 'actor_token', 'actor_token_type', 'token', 'token_type_hint',
  'access_token', 'response_type', 'state', 'nonce', 'code_challenge', 'code_challenge_method', 'prompt', 'max_age',
  'login_hint', 'pending', 'csrf', 'response_mode', 'request', 'request_uri', 'claims', 'id_token_hint', 'ui_locales',
  '__proto__', 'constructor', 'hasOwnProperty', '', 'a[b]', 'scope[]', 'x'.repeat(129), 'Grant_Type', 'grant_type ',
]

function latin1(s: string): Buffer {
  return Buffer.from(s, 'latin1')
}

/** Percent-encode the UTF-8 bytes (lone surrogates become U+FFFD instead of throwing like encodeURIComponent). */
function percent(s: string): string {
  let out = ''
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte)
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/** Encode form pairs in one of several ways, from correct to hostile (raw bytes, bad escapes, invalid UTF-8). */
function encodeForm(p: Prng, pairs: Pairs): Buffer {
  const style = p.int(0, 9)
  const enc = (s: string): string => percent(s).replace(/%20/g, p.chance(0.5) ? '+' : '%20')
  if (style <= 5) return Buffer.from(pairs.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&'), 'utf8')
  if (style === 6) return Buffer.from(pairs.map(([k, v]) => `${k}=${v}`).join(p.pick(['&', '&&', ';', '&amp;'])), 'utf8')
  if (style === 7) {
    // Broken percent-escapes and escapes that decode to invalid UTF-8.
    const bad = ['%', '%g0', '%zz', '%ff%fe', '%c0%af', '%ed%a0%80', '%00', '%0d%0a', '%e2%80', '%f4%90%80%80']
    return Buffer.from(pairs.map(([k, v]) => `${enc(k)}=${enc(v)}${p.pick(bad)}`).join('&'), 'latin1')
  }
  if (style === 8) {
    // Raw invalid UTF-8 and control bytes straight in the body.
    const parts = pairs.map(([k, v]) => Buffer.concat([Buffer.from(`${enc(k)}=`), p.bytes(p.int(1, 12)), Buffer.from(enc(v))]))
    return Buffer.concat(parts.flatMap((b, i) => (i === 0 ? [b] : [Buffer.from('&'), b])))
  }
  return Buffer.from(pairs.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&') + p.pick(['&', '=', '&=', '&&&', '=&=', '%']), 'utf8')
}

function contentType(p: Prng): string | undefined {
  return p.pick([
    'application/x-www-form-urlencoded', 'application/x-www-form-urlencoded', 'application/x-www-form-urlencoded',
    'application/x-www-form-urlencoded; charset=utf-8', 'application/x-www-form-urlencoded; charset=utf-16',
    'APPLICATION/X-WWW-FORM-URLENCODED', ' application/x-www-form-urlencoded ', 'application/x-www-form-urlencoded;;;',
    'application/json', 'multipart/form-data; boundary=fuzz', 'text/plain', 'text/html', '*/*', '', 'application/x-www-form-urlencoded, application/json',
    undefined,
  ])
}

/** A grant-shaped parameter set for the token endpoint, so hostile values reach the grant handlers. */
async function grantPairs(p: Prng, target: Target): Promise<Pairs> {
  const v = (fallback: string): string => (p.chance(0.35) ? hostileValue(p, target.known) : fallback)
  const { verifier, challenge } = pkce(p)
  void challenge
  const grants: Array<() => Pairs> = [
    () => [['grant_type', 'client_credentials'], ['scope', v('api')]],
    () => [['grant_type', 'password'], ['username', v('alice')], ['password', v('x')], ['scope', v('openid api')], ...(p.chance(0.4) ? [['acr_values', v('tenant:acme')] as [string, string]] : [])],
    () => [['grant_type', 'refresh_token'], ['refresh_token', p.chance(0.5) ? tamperedJwt(p, target.tokens.refresh) : v(target.tokens.refresh.slice(0, -2) + 'xx')], ['scope', v('api')]],
    () => [['grant_type', 'authorization_code'], ['code', v('AAAAAAAAAAAAAAAAAAAAAA.' + 'B'.repeat(43))], ['redirect_uri', v(WEB_REDIRECT)], ['code_verifier', v(verifier)]],
    () => [['grant_type', TOKEN_EXCHANGE], ['subject_token', p.chance(0.5) ? tamperedJwt(p, target.tokens.client) : malformedJwt(p, { issuer: target.issuer })],
      ['subject_token_type', v(ACCESS_TOKEN_TYPE)], ...(p.chance(0.5) ? [['audience', v('gateway')] as [string, string]] : [])],
    () => [['grant_type', v('urn:x:unknown')]],
  ]
  return p.pick(grants)()
}

/** Client authentication for a token-ish request: right, wrong, malformed, or two at once. */
async function clientAuth(p: Prng, target: Target): Promise<{ headers: Array<[string, string | Buffer]>; pairs: Pairs; forged: boolean }> {
  const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64')
  switch (p.int(0, 11)) {
    case 0: return { headers: [['Authorization', `Basic ${b64(`svc:${SECRETS.svc}`)}`]], pairs: [], forged: false }
    case 1: return { headers: [['Authorization', `Basic ${b64(`web:${SECRETS.web}`)}`]], pairs: [], forged: false }
    case 2: return { headers: [], pairs: [['client_id', 'ro'], ['client_secret', SECRETS.ro!]], forged: false }
    case 3: return { headers: [['Authorization', `Basic ${b64(`${hostileValue(p, target.known)}:${hostileValue(p, target.known)}`)}`]], pairs: [], forged: true }
    case 4: {
      // Malformed Basic: not base64, no colon, bad escapes, huge, wrong scheme, extra parts.
      const value = p.pick([
        'Basic', 'Basic ', 'Basic !!!!', `Basic ${b64('nocolon')}`, `Basic ${b64('svc%zz:svc-secret')}`, `Basic ${b64('%ff%fe:%00')}`,
        `Basic ${b64(':::::')}`, `Basic ${b64(p.bytes(p.int(1, 64)))}`, `Basic ${'A'.repeat(p.pick([1000, 8000, 15000]))}`,
        `Basic ${b64('svc:svc-secret')} extra`, `basic ${b64('svc:svc-secret')}`, `Basic  ${b64('svc:svc-secret')}`,
        `Bearer ${target.tokens.client}`, `Digest username="svc"`, `Basic ${b64(`${'a'.repeat(5000)}:${'b'.repeat(5000)}`)}`,
        `Basic ${b64('svc:svc-secret')}=====`, `Basic ${b64(`svc:${CRLF[0]}`)}`,
      ])
      return { headers: [['Authorization', value]], pairs: [], forged: true }
    }
    case 5: return { headers: [], pairs: [['client_id', 'jwt'], ['client_assertion_type', JWT_BEARER_ASSERTION], ['client_assertion', malformedJwt(p, { issuer: target.issuer, clientId: 'jwt', audience: `${target.issuer}/connect/token` })]], forged: true }
    case 6: {
      // Signed with the registered key but hostile in its claims, or a real one tampered.
      const claims = p.pick<Record<string, unknown>>([{ aud: 'http://evil.example' }, { exp: 1 }, { exp: 4_102_444_800 }, { jti: ['x'] }, { sub: 'svc' }, { iss: 'svc' }, { nbf: 4_102_444_800 }, {}])
      let assertion = await clientAssertion(target.clientKey, target.issuer, claims)
      const forged = Object.keys(claims).length > 0 || p.chance(0.5)
      if (forged && Object.keys(claims).length === 0) assertion = tamperedJwt(p, assertion)
      return { headers: [], pairs: [['client_assertion_type', p.chance(0.8) ? JWT_BEARER_ASSERTION : hostileValue(p, target.known)], ['client_assertion', assertion]], forged }
    }
    case 7: return { headers: [['Authorization', `Basic ${b64(`svc:${SECRETS.svc}`)}`]], pairs: [['client_id', 'svc'], ['client_secret', SECRETS.svc!]], forged: true }
    case 8: return { headers: [], pairs: [['client_id', p.pick(['spa', 'web', 'nobody', hostileValue(p, target.known)])]], forged: true }
    case 9: return { headers: [['Authorization', `Basic ${b64(`svc:${SECRETS.svc}x`)}`]], pairs: [], forged: true }
    case 10: return { headers: [], pairs: [], forged: true }
    default: return { headers: [['Authorization', Buffer.concat([Buffer.from('Basic '), p.bytes(p.int(1, 30)).filter((b) => b !== 10 && b !== 13)])]], pairs: [], forged: true }
  }
}

function mutatePairs(p: Prng, pairs: Pairs, target: Target): Pairs {
  const out = [...pairs]
  const rounds = p.int(0, 3)
  for (let i = 0; i < rounds; i++) {
    const op = p.int(0, 5)
    if (op === 0 && out.length > 0) out.splice(p.int(0, out.length - 1), 1)
    else if (op === 1 && out.length > 0) out.push(p.pick(out)) // repeated parameter
    else if (op === 2) out.push([p.pick(PARAM_NAMES), hostileValue(p, target.known)])
    else if (op === 3 && out.length > 0) {
      const at = p.int(0, out.length - 1)
      out[at] = [out[at]![0], hostileValue(p, target.known)]
    } else if (op === 4) for (let n = p.int(20, 80); n > 0; n--) out.push([`p${n}`, 'x'])
    else out.push([p.pick(PARAM_NAMES), p.pick([...MARKUP, ...CRLF])])
  }
  return out
}

function jsonBody(pairs: Pairs): Buffer {
  return Buffer.from(JSON.stringify(Object.fromEntries(pairs)))
}

function multipartBody(pairs: Pairs): Buffer {
  return Buffer.from(pairs.map(([k, v]) => `--fuzz\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('') + '--fuzz--\r\n', 'utf8')
}

interface RequestParts {
  method: string
  path: string
  headers: Array<[string, string | Buffer]>
  body?: Buffer
}

/** Standard framing: Host, Connection: close and a truthful Content-Length (unless the case lies on purpose). */
function frame(target: Target, parts: RequestParts, options: { host?: string | false; contentLength?: boolean } = {}): Buffer {
  const headers: Array<[string, string | Buffer]> = []
  if (options.host !== false) headers.push(['Host', options.host ?? `127.0.0.1:${target.srv.port}`])
  headers.push(...parts.headers)
  headers.push(['Connection', 'close'])
  if (parts.body && options.contentLength !== false) headers.push(['Content-Length', String(parts.body.length)])
  return buildRequest({ method: parts.method, target: parts.path, headers, ...(parts.body ? { body: parts.body } : {}) })
}

function summarize(strategy: string, endpoint: Endpoint, request: Buffer): string {
  const text = request.subarray(0, 300).toString('latin1').replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
  return `${strategy} ${endpoint.path}: ${text}${request.length > 300 ? `… (${request.length} bytes)` : ''}`
}

function query(pairs: Pairs): string {
  return pairs.map(([k, v]) => `${percent(k)}=${percent(v)}`).join('&')
}

/** One fuzz case for `target`, fully determined by `p`. */
export async function generateCase(p: Prng, target: Target): Promise<FuzzCase> {
  const endpoint = p.pick(target.endpoints)
  const strategy = p.pick(['form', 'form', 'grant', 'grant', 'jwt', 'body', 'method', 'query', 'reflect', 'login', 'session', 'raw', 'headers', 'path'])
  let reachesApp = true
  let mustNotGrant = false
  let request: Buffer
  const host = `127.0.0.1:${target.srv.port}`

  switch (strategy) {
    case 'form':
    case 'grant': {
      const auth = await clientAuth(p, target)
      const base = strategy === 'grant' ? await grantPairs(p, target) : Array.from({ length: p.int(0, 8) }, (): [string, string] => [p.pick(PARAM_NAMES), hostileValue(p, target.known)])
      const pairs = mutatePairs(p, [...base, ...auth.pairs], target)
      const path = strategy === 'grant' ? p.pick(target.endpoints.filter((e) => e.kind === 'token')).path : endpoint.path
      const ct = contentType(p)
      request = frame(target, { method: 'POST', path, headers: [...auth.headers, ...(ct !== undefined ? [['Content-Type', ct] as [string, string]] : [])], body: encodeForm(p, pairs) })
      return { strategy, endpoint: target.endpoints.find((e) => e.path === path)!, request, reachesApp, mustNotGrant, summary: summarize(strategy, endpoint, request) }
    }
    case 'jwt': {
      // Malformed or tampered JWTs wherever one is accepted: Bearer, access_token, token, subject_token, client_assertion.
      const jwt = p.chance(0.5) ? malformedJwt(p, { issuer: target.issuer, clientId: 'jwt' }) : tamperedJwt(p, p.pick([target.tokens.client, target.tokens.user]))
      mustNotGrant = true
      const place = p.int(0, 4)
      const b64 = (s: string): string => Buffer.from(s).toString('base64')
      let parts: RequestParts
      let ep: Endpoint
      if (place === 0) {
        ep = target.endpoints.find((e) => e.kind === 'userinfo')!
        parts = { method: p.pick(['GET', 'POST']), path: ep.path, headers: [['Authorization', `${p.pick(['Bearer', 'bearer', 'Bearer '])} ${jwt}`]] }
      } else if (place === 1) {
        ep = target.endpoints.find((e) => e.kind === 'userinfo')!
        parts = { method: 'POST', path: ep.path, headers: [['Content-Type', 'application/x-www-form-urlencoded']], body: Buffer.from(query([['access_token', jwt]])) }
      } else if (place === 2) {
        ep = p.pick(target.endpoints.filter((e) => e.kind === 'oauth'))
        parts = { method: 'POST', path: ep.path, headers: [['Content-Type', 'application/x-www-form-urlencoded'], ['Authorization', `Basic ${b64(`svc:${SECRETS.svc}`)}`]], body: Buffer.from(query([['token', jwt], ...(p.chance(0.5) ? [['token_type_hint', p.pick(['access_token', 'refresh_token', 'x'])] as [string, string]] : [])])) }
      } else if (place === 3) {
        ep = p.pick(target.endpoints.filter((e) => e.kind === 'token'))
        parts = { method: 'POST', path: ep.path, headers: [['Content-Type', 'application/x-www-form-urlencoded'], ['Authorization', `Basic ${b64(`svc:${SECRETS.svc}`)}`]], body: Buffer.from(query([['grant_type', TOKEN_EXCHANGE], ['subject_token', jwt], ['subject_token_type', ACCESS_TOKEN_TYPE], ['scope', 'api']])) }
      } else {
        ep = p.pick(target.endpoints.filter((e) => e.kind === 'token'))
        parts = { method: 'POST', path: ep.path, headers: [['Content-Type', 'application/x-www-form-urlencoded']], body: Buffer.from(query([['grant_type', 'client_credentials'], ['scope', 'api'], ['client_id', 'jwt'], ['client_assertion_type', JWT_BEARER_ASSERTION], ['client_assertion', jwt]])) }
      }
      request = frame(target, parts)
      return { strategy, endpoint: ep, request, reachesApp, mustNotGrant, summary: summarize(strategy, ep, request) }
    }
    case 'body': {
      const pairs = mutatePairs(p, await grantPairs(p, target), target)
      const kind = p.int(0, 6)
      let body: Buffer
      let ct: string | undefined = 'application/x-www-form-urlencoded'
      if (kind === 0) body = p.bytes(p.int(0, 4096))
      else if (kind === 1) { body = jsonBody(pairs); ct = p.pick(['application/json', 'application/x-www-form-urlencoded']) }
      else if (kind === 2) { body = multipartBody(pairs); ct = p.pick(['multipart/form-data; boundary=fuzz', 'application/x-www-form-urlencoded']) }
      else if (kind === 3) body = Buffer.concat([encodeForm(p, pairs), Buffer.alloc(p.int(1, 64))]) // NUL padding
      else if (kind === 4) body = Buffer.alloc(p.pick([16 * 1024, 16 * 1024 + 1, 20_000, 64 * 1024]), 'a=b&')
      else if (kind === 5) body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), encodeForm(p, pairs)]) // BOM
      else body = Buffer.from(query(pairs.concat(Array.from({ length: p.pick([63, 64, 65, 500]) }, (_, i): [string, string] => [`k${i}`, 'v']))))
      const chunked = p.chance(0.2)
      const headers: Array<[string, string | Buffer]> = [...(ct ? [['Content-Type', ct] as [string, string]] : []), ['Authorization', `Basic ${Buffer.from(`svc:${SECRETS.svc}`).toString('base64')}`]]
      if (chunked) {
        headers.push(['Transfer-Encoding', 'chunked'])
        const chunks: Buffer[] = []
        for (let i = 0; i < body.length; i += 1000) {
          const piece = body.subarray(i, i + 1000)
          chunks.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'))
        }
        chunks.push(Buffer.from('0\r\n\r\n'))
        request = frame(target, { method: 'POST', path: endpoint.path, headers, body: Buffer.concat(chunks) }, { contentLength: false })
      } else request = frame(target, { method: 'POST', path: endpoint.path, headers, body })
      return { strategy, endpoint, request, reachesApp, mustNotGrant, summary: summarize(strategy, endpoint, request) }
    }
    case 'method': {
      const method = p.pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'PROPFIND', 'SEARCH', 'PURGE'])
      const body = p.chance(0.5) ? encodeForm(p, [['grant_type', 'client_credentials'], ['scope', 'api']]) : undefined
      request = frame(target, { method, path: endpoint.path, headers: [['Content-Type', 'application/x-www-form-urlencoded']], ...(body ? { body } : {}) })
      return { strategy, endpoint, request, reachesApp, mustNotGrant, summary: summarize(strategy, endpoint, request) }
    }
    case 'query': {
      // The authorization request with hostile values; CRLF and markup in what gets reflected (state, redirect_uri, login_hint, client_name…).
      const ep = p.chance(0.7) ? target.endpoints.find((e) => e.kind === 'authorize')! : endpoint
      const { challenge } = pkce(p)
      const base: Pairs = [['response_type', 'code'], ['client_id', 'web'], ['redirect_uri', WEB_REDIRECT], ['scope', 'openid api'], ['state', 's'], ['code_challenge', challenge], ['code_challenge_method', 'S256']]
      const pairs = mutatePairs(p, base, target)
      for (const name of ['state', 'redirect_uri', 'login_hint', 'nonce', 'scope', 'prompt', 'acr_values', 'client_id', 'max_age', 'response_mode']) {
        if (p.chance(0.2)) pairs.push([name, p.chance(0.6) ? p.pick([...MARKUP, ...CRLF]) : hostileValue(p, target.known)])
      }
      const dedupe = p.chance(0.6)
      const seen = new Set<string>()
      const final = dedupe ? pairs.reverse().filter(([k]) => (seen.has(k) ? false : (seen.add(k), true))).reverse() : pairs
      let q = query(final)
      if (p.chance(0.15)) q += p.pick(['&%', '&%zz', '&a=%ff%fe', '&=', '&&', '#frag', '&a=%00'])
      request = frame(target, { method: 'GET', path: `${ep.path}?${q}`, headers: p.chance(0.3) ? [['Cookie', `grantd_session=${target.session}`]] : [] })
      return { strategy, endpoint: ep, request, reachesApp, mustNotGrant, summary: summarize(strategy, ep, request) }
    }
    case 'reflect': {
      // A well-formed authorization request with markup or CRLF in exactly one parameter a page or redirect may reflect.
      const ep = target.endpoints.find((e) => e.kind === 'authorize')!
      const { challenge } = pkce(p)
      const pairs: Pairs = [['response_type', 'code'], ['client_id', 'web'], ['redirect_uri', WEB_REDIRECT], ['scope', 'openid api'], ['state', 's'], ['nonce', 'n'], ['code_challenge', challenge], ['code_challenge_method', 'S256']]
      const payload = p.pick([...MARKUP, ...CRLF])
      const name = p.pick(['state', 'login_hint', 'nonce', 'acr_values', 'redirect_uri', 'client_id', 'scope', 'prompt', 'response_type', 'code_challenge', 'max_age', 'ui_locales'])
      const value = name === 'acr_values' ? `${p.pick(['idp', 'tenant', 'x'])}:${payload}` : name === 'redirect_uri' ? `${WEB_REDIRECT}${payload}` : payload
      const at = pairs.findIndex(([k]) => k === name)
      if (at === -1) pairs.push([name, value])
      else pairs[at] = [name, value]
      request = frame(target, { method: 'GET', path: `${ep.path}?${query(pairs)}`, headers: [] })
      return { strategy, endpoint: ep, request, reachesApp, mustNotGrant, summary: summarize(strategy, ep, request) }
    }
    case 'login': {
      // A real login form, then tampering: cookie, CSRF token, pending id, fields, repeats.
      const ep = target.endpoints.find((e) => e.kind === 'login')!
      const login = await freshLogin(target, p.chance(0.2) ? { login_hint: p.pick([...MARKUP]) } : {})
      if (!login) throw new Error('fuzz: no login form')
      const username = p.pick(['alice', hostileValue(p, target.known), p.pick([...MARKUP, ...CRLF])])
      const fields: Pairs = [['pending', login.fields.pending ?? ''], ['csrf', login.fields.csrf ?? ''], ['username', username], ['password', hostileValue(p, target.known)]]
      let cookie = login.cookie
      // Half the time the form is genuine and only the credentials are hostile (the page re-renders them).
      const tamper = p.chance(0.5) ? 9 : p.int(0, 8)
      if (tamper === 0) cookie = cookie.slice(0, -1) + (cookie.endsWith('A') ? 'B' : 'A')
      else if (tamper === 1) cookie = `${cookie}; ${cookie.replace(/=.*/, `=${hostileValue(p, target.known)}`)}`
      else if (tamper === 2) cookie = `grantd_login=${'A'.repeat(p.pick([43, 44, 600, 9000]))}`
      else if (tamper === 3) cookie = `grantd_login=${target.session}`
      else if (tamper === 4) fields[1] = ['csrf', fields[1]![1].slice(0, -1) + 'x']
      else if (tamper === 5) fields[0] = ['pending', hostileValue(p, target.known)]
      else if (tamper === 6) cookie = ''
      else if (tamper === 7) fields.push([p.pick(['pending', 'csrf', 'username', 'password']), 'again'])
      else if (tamper === 8) fields[1] = ['csrf', '']
      // tamper 9: the credentials alone are hostile (the form is genuine).
      const headers: Array<[string, string | Buffer]> = [['Content-Type', contentType(p) ?? 'application/x-www-form-urlencoded']]
      if (cookie) headers.push(['Cookie', p.chance(0.1) ? Buffer.concat([Buffer.from(cookie), Buffer.from([0xff, 0xfe])]) : cookie])
      // alice's real password is never sent, so no login may succeed.
      const sent = mutatePairs(p, fields, target).map(([k, v]): [string, string] => [k, v === 'wonderland' ? 'wonderland?' : v])
      request = frame(target, { method: 'POST', path: ep.path, headers, body: encodeForm(p, sent) })
      return { strategy, endpoint: ep, request, reachesApp, mustNotGrant: true, summary: summarize(strategy, ep, request) }
    }
    case 'session': {
      // A tampered session cookie with prompt=none: the answer must be login_required, never a code.
      const ep = target.endpoints.find((e) => e.kind === 'authorize')!
      const value = target.session
      const dot = value.lastIndexOf('.')
      // Flip a character inside the MAC (not the last: its 2 low bits are padding, so a change there can decode to the same bytes).
      const at = p.int(dot + 1, value.length - 2)
      const forged = p.pick([
        value.slice(0, at) + (value[at] === 'A' ? 'B' : 'A') + value.slice(at + 1),
        value.slice(1),
        value.slice(0, dot),
        `${value.slice(0, dot)}.`,
        `x${value}`,
        `${value}x`,
        `${value.slice(dot + 1)}.${value.slice(0, dot)}`,
        `${'A'.repeat(43)}.${value.slice(dot + 1)}`,
        hostileValue(p, target.known),
        value.toUpperCase(),
        `"${value}"`,
        percent(value) + '%00',
      ])
      const { challenge } = pkce(p)
      const q = query([['response_type', 'code'], ['client_id', 'web'], ['redirect_uri', WEB_REDIRECT], ['scope', 'openid'], ['state', 's'], ['prompt', 'none'], ['code_challenge', challenge], ['code_challenge_method', 'S256']])
      const cookie = p.pick([`grantd_session=${forged}`, `grantd_session=${forged}; grantd_session=${forged}`, `a=b; grantd_session=${forged}`, `grantd_session =${forged}`])
      request = frame(target, { method: 'GET', path: `${ep.path}?${q}`, headers: [['Cookie', forged === value ? '' : cookie]] })
      return { strategy, endpoint: ep, request, reachesApp, mustNotGrant: forged !== value, summary: summarize(strategy, ep, request) }
    }
    case 'raw': {
      // Bytes Node's HTTP parser must refuse (or accept) without grantd misbehaving.
      reachesApp = false
      const kind = p.int(0, 11)
      const path = endpoint.path
      if (kind === 0) request = Buffer.concat([p.bytes(p.int(1, 200)), Buffer.from('\r\n\r\n')])
      else if (kind === 1) request = buildRequest({ method: 'GET', target: path, requestLine: latin1(p.pick([`GET  ${path} HTTP/1.1`, `GET ${path} HTTP/9.9`, `GET ${path}`, `GET ${path} HTTP/1.1 extra`, `${path} GET HTTP/1.1`, `G\u0000T ${path} HTTP/1.1`, `GET ${path}\u0000 HTTP/1.1`, `GET /${'a'.repeat(20_000)} HTTP/1.1`])), headers: [['Host', host], ['Connection', 'close']] })
      else if (kind === 2) request = buildRequest({ method: 'GET', target: path, headers: [['Host', host], ['X-Bad', Buffer.from([0x61, p.pick([0x00, 0x7f, 0x0b, 0x0c, 0x08]), 0x62])], ['Connection', 'close']] })
      else if (kind === 3) request = buildRequest({ method: 'GET', target: path, headers: [['Host', host], [p.pick(['Bad Name', 'Bad:Name', 'Bad\u0000', '', '(x)', 'ü']), 'v'], ['Connection', 'close']] })
      else if (kind === 4) request = Buffer.from(`POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 5\r\nContent-Length: 50\r\nConnection: close\r\n\r\nhello`)
      else if (kind === 5) request = Buffer.from(`POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: ${host}\r\n\r\n`)
      else if (kind === 6) request = Buffer.from(`POST ${path} HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\n${p.pick(['zz', '-1', '10000000000000000', '1;ext=\u0000', '3\r\nabcdef'])}\r\n\r\n`)
      else if (kind === 7) request = buildRequest({ method: 'GET', target: path, headers: [['Host', host], ['X-Big', 'a'.repeat(p.pick([16 * 1024, 17 * 1024, 40 * 1024]))], ['Connection', 'close']] })
      else if (kind === 8) request = buildRequest({ method: 'GET', target: path, headers: [['Host', host], ...Array.from({ length: p.pick([200, 2500]) }, (_, i): [string, string] => [`X-H${i}`, 'v']), ['Connection', 'close']] })
      else if (kind === 9) request = Buffer.from(`GET ${path} HTTP/1.1\nHost: ${host}\nX-Folded: a\r\n  b\r\nConnection: close\r\n\r\n`)
      else if (kind === 10) request = Buffer.from(`POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${p.pick(['-1', '1e3', '0x10', ' 5', '99999999999999999999', 'abc'])}\r\nConnection: close\r\n\r\nhello`)
      else request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: ${p.pick(['gzip, chunked', 'chunked, gzip', 'identity', 'xchunked', 'chunked\u000b'])}\r\nConnection: close\r\n\r\n0\r\n\r\n`)
      return { strategy, endpoint, request, reachesApp, mustNotGrant, summary: summarize(strategy, endpoint, request) }
    }
    case 'headers': {
      // Hostile Host / X-Forwarded-* (trusted on the derived-issuer target), cookies, Accept, Origin.
      const value = (): string => p.pick([...MARKUP, 'evil.example', 'evil.example:443', '127.0.0.1:1@evil', '[::1]', 'a'.repeat(300), 'ex ample', 'x"y', '', '127.0.0.1:99999', '127.0.0.1:65536', '[::::]', '[zz]', '[::1]:0', 'a..b', `${host}/path`, 'javascript'])
      const headers: Array<[string, string | Buffer]> = []
      const hostValue = p.chance(0.3) ? value() : host
      for (const name of ['X-Forwarded-Host', 'X-Forwarded-Proto', 'X-Forwarded-Prefix', 'X-Forwarded-For', 'Forwarded', 'X-Real-IP', 'Origin', 'Accept', 'Accept-Language', 'Cookie', 'Referer', 'X-HTTP-Method-Override']) {
        if (p.chance(0.25)) headers.push([name, p.pick([value(), 'https', 'http', 'ftp', '/auth', '/<b>', '//evil', '/../x', '1.2.3.4, 5.6.7.8', 'unknown', 'for=1.2.3.4;proto=https', '*/*', 'text/html', 'DELETE', `grantd_session=${hostileValue(p, target.known).replace(/[\r\n]/g, '')}`])])
      }
      const ep = p.chance(0.5) ? target.endpoints.find((e) => e.kind === 'authorize')! : endpoint
      const { challenge } = pkce(p)
      const path = ep.kind === 'authorize' ? `${ep.path}?${query([['response_type', 'code'], ['client_id', 'web'], ['redirect_uri', WEB_REDIRECT], ['scope', 'openid'], ['state', 's'], ['code_challenge', challenge], ['code_challenge_method', 'S256']])}` : ep.path
      const method = ep.methods.includes('GET') ? 'GET' : 'POST'
      const body = method === 'POST' ? Buffer.from(query([['grant_type', 'client_credentials'], ['scope', 'api']])) : undefined
      if (body) headers.push(['Content-Type', 'application/x-www-form-urlencoded'], ['Authorization', `Basic ${Buffer.from(`svc:${SECRETS.svc}`).toString('base64')}`])
      request = frame(target, { method, path, headers, ...(body ? { body } : {}) }, { host: hostValue === '' ? false : hostValue })
      // An empty or unparseable Host may be refused by Node itself.
      reachesApp = hostValue !== '' && !/[<>" ]/.test(hostValue) && !/[^\x20-\x7e]/.test(hostValue)
      return { strategy, endpoint: ep, request, reachesApp, mustNotGrant, summary: summarize(strategy, ep, request) }
    }
    default: {
      // Path games: trailing slashes, doubled slashes, encoded dots and NULs, case, overlong, query on POST endpoints.
      const path = endpoint.path
      const variant = p.pick([
        `${path}/`, `/${path}`, path.replace('/', '//'), path.toUpperCase(), `${path}%00`, `${path}%2f`, `${path}/..%2f..%2fetc%2fpasswd`,
        `${path};jsessionid=1`, `${path}?${query([[p.pick(PARAM_NAMES), hostileValue(p, target.known)]])}`, `/%2e%2e${path}`, `${path}#x`,
        `${path}?${'a=b&'.repeat(p.pick([10, 1000]))}`, `${path}/${'x'.repeat(p.pick([100, 4000]))}`, '/', '*', `${path}%`, `${path}%zz`,
        `/connect/external/${p.pick(['%3Cscript%3E', 'upstream%00', '..', 'a'.repeat(300)])}/${p.pick(['start', 'callback'])}?state=${percent(p.pick([...MARKUP]))}&pending=${percent(hostileValue(p, target.known))}`,
      ])
      const method = p.pick(endpoint.methods)
      const body = method === 'POST' ? Buffer.from(query([['grant_type', 'client_credentials'], ['scope', 'api']])) : undefined
      request = frame(target, { method, path: variant, headers: body ? [['Content-Type', 'application/x-www-form-urlencoded']] : [], ...(body ? { body } : {}) })
      // The federation routes answer browsers with pages, whatever endpoint the case started from.
      if (variant.startsWith('/connect/external/')) return { strategy, endpoint: { path: '/connect/external/:name', kind: 'browser', methods: ['GET'] }, request, reachesApp: true, mustNotGrant, summary: summarize(strategy, endpoint, request) }
      // Some of these are not valid request targets for Node's parser ('#', raw '%').
      reachesApp = !variant.includes('#') && variant !== '*'
      return { strategy, endpoint, request, reachesApp, mustNotGrant, summary: summarize(strategy, endpoint, request) }
    }
  }
}
