import { HttpMethodEnum, koaBody } from 'koa-body'
import type { ParameterizedContext } from 'koa'
import { OAuthError } from '../errors.js'

/** SPEC §5: bodies over 16 KiB are refused with 413 and an OAuth error body. */
export const MAX_FORM_BYTES = 16 * 1024
/** IdentityServer-style limit on every parameter grantd reads; oversize values fail early. */
export const MAX_PARAM_LENGTH = 4096

/**
 * A parsed `application/x-www-form-urlencoded` body. Every name maps to all of its values.
 * RFC 6749 §3.2: unrecognised parameters are ignored, so the checks run only on the
 * parameters an endpoint reads: {@link get} refuses a repeated parameter (§3.1: "MUST NOT
 * be included more than once"), an oversize value and NUL; {@link check} does the same
 * for a list of names without reading them.
 */
export class FormParams {
  /** One string per name; an array only once a name repeats (a 16 KiB body can hold ~5,000 names: no array each). */
  private readonly values = new Map<string, string | string[]>()

  add(name: string, value: string): void {
    const prior = this.values.get(name)
    if (prior === undefined) this.values.set(name, value)
    else if (typeof prior === 'string') this.values.set(name, [prior, value])
    else prior.push(value)
  }

  /** The single value of `name`; repeated, too long or NUL is `invalid_request`. Empty counts as absent (RFC 6749 §3.1). */
  get(name: string): string | undefined {
    const value = this.values.get(name)
    if (value === undefined) return undefined
    if (typeof value !== 'string') throw new OAuthError('invalid_request', `parameter ${shown(name)} is repeated`)
    if (value.length > MAX_PARAM_LENGTH) throw new OAuthError('invalid_request', `parameter ${shown(name)} is too long`)
    if (value.includes('\u0000')) throw new OAuthError('invalid_request', 'parameters must not contain NUL')
    return value === '' ? undefined : value
  }

  /** Apply {@link get}'s checks to every name an endpoint reads, before it reads any. */
  check(names: Iterable<string>): void {
    for (const name of names) this.get(name)
  }

  has(name: string): boolean {
    return this.get(name) !== undefined
  }

  /** Every value of `name`, unchecked (an endpoint that applies its own rules, e.g. the authorization endpoint). */
  all(name: string): readonly string[] {
    const value = this.values.get(name)
    return value === undefined ? [] : typeof value === 'string' ? [value] : value
  }

  names(): IterableIterator<string> {
    return this.values.keys()
  }

  count(name: string): number {
    const value = this.values.get(name)
    return value === undefined ? 0 : typeof value === 'string' ? 1 : value.length
  }
}

function shown(name: string): string {
  return name.length > 64 ? `${name.slice(0, 64)}…` : name
}

/** The media type of a Content-Type header, lower-cased; `undefined` when absent. */
function mediaType(header: string | undefined): string | undefined {
  if (!header) return undefined
  const semi = header.indexOf(';')
  return (semi === -1 ? header : header.slice(0, semi)).trim().toLowerCase()
}

/** The `charset` parameter of a Content-Type header, lower-cased and unquoted. */
function charsetOf(header: string): string | undefined {
  const match = /;\s*charset\s*=\s*(?:"([^"]*)"|([^\s;]*))/i.exec(header)
  return match ? (match[1] ?? match[2] ?? '').toLowerCase() : undefined
}

export function isFormContentType(header: string | undefined): boolean {
  return mediaType(header) === 'application/x-www-form-urlencoded'
}

export function isJsonContentType(header: string | undefined): boolean {
  return mediaType(header) === 'application/json'
}

/**
 * Parse a urlencoded string (WHATWG rules: `+` is a space, a bad escape stays literal,
 * invalid UTF-8 becomes U+FFFD). One pass, linear in the input: no limit here on count or
 * length, since unknown parameters are ignored whatever their size (the body limit bounds
 * them); the limits apply when a parameter is read ({@link FormParams.get}).
 */
export function parseForm(text: string): FormParams {
  const params = new FormParams()
  if (text.length === 0) return params
  for (const [name, value] of new URLSearchParams(text)) params.add(name, value)
  return params
}

/** What the body readers accept as a Koa context: any route's `ctx`. */
export type BodyContext = ParameterizedContext<object>

export interface ReadBodyOptions {
  /** Largest accepted body in bytes; default {@link MAX_FORM_BYTES} (16 KiB). */
  limit?: number
}

type KoaBodyMiddleware = ReturnType<typeof koaBody>

const formReaders = new Map<number, KoaBodyMiddleware>()
const jsonReaders = new Map<number, KoaBodyMiddleware>()
const PARSED_METHODS = [HttpMethodEnum.POST, HttpMethodEnum.PUT, HttpMethodEnum.PATCH, HttpMethodEnum.DELETE]

/**
 * koa-body reads the form (limit, decoding, content type) as text: grantd parses the text
 * itself ({@link parseForm}), because koa-body's own form parse (qs) merges repeated
 * parameters into arrays, so repeats could not be refused, and its result would be thrown
 * away. Reading the urlencoded type through koa-body's text reader skips that wasted qs
 * pass (≈4 % of a client_credentials request's CPU in the profile); the limit, the
 * encoding and the length check are the same co-body/raw-body path as the form reader's.
 */
function formReader(limit: number): KoaBodyMiddleware {
  let reader = formReaders.get(limit)
  if (!reader) {
    reader = koaBody({
      urlencoded: false, json: false, text: true, multipart: false,
      textTypes: ['application/x-www-form-urlencoded'],
      includeUnparsed: true, textLimit: limit, encoding: 'utf-8',
      parsedMethods: PARSED_METHODS,
    })
    formReaders.set(limit, reader)
  }
  return reader
}

function jsonReader(limit: number): KoaBodyMiddleware {
  let reader = jsonReaders.get(limit)
  if (!reader) {
    reader = koaBody({
      urlencoded: false, json: true, text: false, multipart: false,
      jsonLimit: limit, jsonStrict: true, encoding: 'utf-8', jsonTypes: ['application/json'],
      parsedMethods: PARSED_METHODS,
    })
    jsonReaders.set(limit, reader)
  }
  return reader
}

/** The form or JSON already read from this request: a body can be read once, and every caller gets the same answer. */
const readBodies = new WeakMap<object, FormParams | Record<string, unknown>>()

/** Checks shared by both readers: the encodings grantd can read, before any byte is read. */
function refuseUnreadable(ctx: BodyContext, what: string): void {
  const header = ctx.get('content-type')
  const charset = charsetOf(header)
  // RFC 6749 Appendix B and RFC 8259 §8.1: UTF-8 only.
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') throw refusal(ctx, `${what} must be UTF-8`)
  // A compressed body would be inflated without a bound on the inflated size (RFC 9110 §8.4: refuse unknown codings).
  const coding = ctx.get('content-encoding').trim().toLowerCase()
  if (coding !== '' && coding !== 'identity') throw refusal(ctx, 'content encoding is not supported')
}

/** An error answered before the body was read: drain it, so a kept-alive connection stays usable. */
function refusal(ctx: BodyContext, description: string): OAuthError {
  ctx.req.resume()
  return new OAuthError('invalid_request', description)
}

async function run(ctx: BodyContext, reader: KoaBodyMiddleware, limit: number): Promise<void> {
  try {
    await reader(ctx as Parameters<KoaBodyMiddleware>[0], async () => {})
  } catch (err) {
    ctx.req.resume()
    const status = (err as { status?: unknown }).status
    if (status === 413) throw new OAuthError('invalid_request', `request body exceeds ${limit} bytes`, { status: 413 })
    const type = (err as { type?: unknown }).type
    if (type === 'request.aborted') throw new OAuthError('invalid_request', 'request aborted')
    if (err instanceof SyntaxError) throw new OAuthError('invalid_request', 'the request body is not valid JSON', { detail: err.message })
    throw new OAuthError('invalid_request', 'could not read the request body', { detail: (err as Error).message })
  }
}

/**
 * Read the request's `application/x-www-form-urlencoded` body (UTF-8, at most 16 KiB by
 * default): any other content type is `invalid_request`, an oversize body 413 with an
 * OAuth error body. Call it from any route; a second call returns the same parameters.
 */
export async function readForm(ctx: BodyContext, options: ReadBodyOptions = {}): Promise<FormParams> {
  const cached = readBodies.get(ctx)
  if (cached instanceof FormParams) return cached
  const limit = options.limit ?? MAX_FORM_BYTES
  if (!isFormContentType(ctx.get('content-type') || undefined)) throw refusal(ctx, 'content type must be application/x-www-form-urlencoded')
  refuseUnreadable(ctx, 'the form')
  await run(ctx, formReader(limit), limit)
  const params = parseForm(ctx.request.rawBody ?? '')
  // The text koa-body left must not be mistaken for the form: the parameters are `params`.
  ctx.request.body = undefined
  readBodies.set(ctx, params)
  return params
}

/**
 * Read the request's `application/json` body (UTF-8, at most 16 KiB by default) as an
 * object: another content type, malformed JSON, a non-object or a `__proto__` key is
 * `invalid_request`, an oversize body 413. For endpoints that take JSON (registration).
 */
export async function readJson(ctx: BodyContext, options: ReadBodyOptions = {}): Promise<Record<string, unknown>> {
  const cached = readBodies.get(ctx)
  if (cached !== undefined && !(cached instanceof FormParams)) return cached
  const limit = options.limit ?? MAX_FORM_BYTES
  if (!isJsonContentType(ctx.get('content-type') || undefined)) throw refusal(ctx, 'content type must be application/json')
  refuseUnreadable(ctx, 'JSON')
  await run(ctx, jsonReader(limit), limit)
  const body: unknown = ctx.request.body
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new OAuthError('invalid_request', 'the request body must be a JSON object')
  const json = body as Record<string, unknown>
  readBodies.set(ctx, json)
  return json
}
