/**
 * What no answer may ever be, whatever was sent: a 5xx, silence, a non-OAuth error body
 * from the token endpoint family, an HTML page that runs input as markup, a header the
 * input wrote, a redirect off the registered targets, a stack trace, or a grant bought
 * with a forged credential.
 */
import type { FuzzCase } from './cases.js'
import { INJECTED_COOKIE, INJECTED_HEADER, MARKUP } from './hostile-values.js'
import type { RawAnswer } from './raw-client.js'
import type { Target } from './target.js'

export interface Finding {
  problem: string
  status: number
  summary: string
}

const STACK = /\n\s+at [^\n]+:\d+:\d+|node_modules|\/work\/|\bTypeError\b|\bReferenceError\b/

/** Answers to requests Node's HTTP parser refused before Koa saw them (core/src/server/lifecycle.ts answerUnparseable, or Node's bare status line). */
function fromHttpParser(answer: RawAnswer): boolean {
  if (![400, 408, 413, 414, 431, 505].includes(answer.status)) return false
  if (answer.body.length === 0) return !answer.headers.has('x-content-type-options')
  return /^\{"error":"invalid_request","error_description":"(malformed HTTP request|request headers too large|request timeout)"\}$/.test(answer.body.toString('utf8'))
}

/** Script and event handlers outside attribute values; quoted values are removed first so escaped input in them cannot match. */
function activeMarkup(html: string): string | undefined {
  if (/<script\b/i.test(html)) return '<script> tag'
  for (const tag of html.matchAll(/<[a-zA-Z][^>]*>/g)) {
    const bare = tag[0].replace(/"[^"]*"|'[^']*'/g, '""')
    if (/\son[a-z]+\s*=/i.test(bare)) return `event handler attribute in ${tag[0].slice(0, 80)}`
    if (/^<(iframe|svg|img|object|embed|base)\b/i.test(tag[0])) return `unexpected element ${tag[0].slice(0, 80)}`
  }
  for (const href of html.matchAll(/\b(?:href|action|src)\s*=\s*"([^"]*)"/gi)) {
    if (/^\s*(javascript|data|vbscript):/i.test(href[1]!.replace(/&#?\w+;/g, ''))) return `script URL in ${href[0].slice(0, 80)}`
  }
  return undefined
}

export function judge(fuzz: FuzzCase, answer: RawAnswer, target: Target): Finding[] {
  const findings: Finding[] = []
  const add = (problem: string): void => { findings.push({ problem, status: answer.status, summary: fuzz.summary }) }

  if (answer.timedOut) {
    add(`no answer within the deadline (${Math.round(answer.ms)} ms)`)
    return findings
  }
  if (answer.status === 0) {
    // Node may close on bytes it cannot parse at all; a request grantd accepted must be answered.
    if (fuzz.reachesApp) add('connection closed without an answer')
    return findings
  }
  if (answer.status >= 500) add(`server error ${answer.status}`)

  for (const line of answer.headerLines) {
    if (line.toLowerCase().startsWith(`${INJECTED_HEADER}:`)) add(`header injection: ${line}`)
  }
  for (const cookie of answer.headers.get('set-cookie') ?? []) if (cookie.toLowerCase().includes(INJECTED_COOKIE)) add(`cookie injection: ${cookie}`)
  const body = answer.body.toString('utf8')
  if (STACK.test(body)) add(`internals in the body: ${body.slice(0, 200)}`)

  if (!fuzz.reachesApp || fromHttpParser(answer)) return findings

  // Every answer grantd writes.
  if (answer.headers.get('x-content-type-options')?.[0] !== 'nosniff') add('missing X-Content-Type-Options: nosniff')
  if (!answer.headers.get('referrer-policy')) add('missing Referrer-Policy')
  if (answer.headers.has('x-powered-by')) add('X-Powered-By present')
  const type = answer.headers.get('content-type')?.[0] ?? ''
  const head = fuzz.request.subarray(0, 8).toString('latin1').startsWith('HEAD ')

  let json: Record<string, unknown> | undefined
  if (/json/i.test(type) && !head) {
    try {
      json = JSON.parse(body) as Record<string, unknown>
    } catch {
      add(`invalid JSON body: ${body.slice(0, 120)}`)
    }
  }
  // Token, introspection and revocation errors are OAuth JSON (RFC 6749 §5.2), never HTML or empty.
  if ((fuzz.endpoint.kind === 'token' || fuzz.endpoint.kind === 'oauth' || fuzz.endpoint.kind === 'userinfo') && answer.status >= 400 && !head) {
    if (!json || typeof json.error !== 'string' || typeof json.error_description !== 'string') add(`not an OAuth error body (${type}): ${body.slice(0, 120)}`)
    if (fuzz.endpoint.kind === 'token' && answer.headers.get('cache-control')?.[0] !== 'no-store') add('token endpoint error without Cache-Control: no-store')
  }

  if (/html/i.test(type)) {
    const csp = answer.headers.get('content-security-policy')?.[0] ?? ''
    if (!/frame-ancestors 'none'/.test(csp) || !/default-src 'none'/.test(csp)) add(`HTML without a strict CSP: ${csp}`)
    if (answer.headers.get('x-frame-options')?.[0] !== 'DENY') add('HTML without X-Frame-Options: DENY')
    const active = activeMarkup(body)
    if (active) add(`HTML reflects markup: ${active}`)
    for (const payload of MARKUP) if (body.includes(payload)) add(`HTML reflects input unescaped: ${payload}`)
  }

  const location = answer.headers.get('location')?.[0]
  if (location !== undefined) {
    let url: URL | undefined
    try {
      url = new URL(location, target.issuer)
    } catch {
      add(`unparseable Location: ${location.slice(0, 120)}`)
    }
    if (url) {
      const here = `${url.origin}${url.pathname}`
      if (!target.redirectTargets.some((allowed) => here === allowed || (allowed.endsWith('/') && here.startsWith(allowed)))) add(`redirect off the registered targets: ${location.slice(0, 160)}`)
      if (fuzz.mustNotGrant && url.searchParams.has('code')) add('a forged or tampered credential got an authorization code')
    }
  }
  if (fuzz.mustNotGrant && answer.status === 200 && json) {
    if (typeof json.access_token === 'string') add('a forged or tampered credential got a token')
    if (json.active === true) add('a tampered token introspected as active')
    if (fuzz.endpoint.kind === 'userinfo' && typeof json.sub === 'string') add('a tampered token was accepted at userinfo')
  }
  return findings
}
