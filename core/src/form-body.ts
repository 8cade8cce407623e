import type { IncomingMessage } from 'node:http'
import { OAuthError } from './errors.js'

/** SPEC §5: bodies over 16 KiB are refused with 413 and an OAuth error body. */
export const MAX_FORM_BYTES = 16 * 1024
/** IdentityServer-style per-parameter limit; oversize values fail early. */
export const MAX_PARAM_LENGTH = 4096
export const MAX_PARAMS = 64

/**
 * A parsed `application/x-www-form-urlencoded` body. Every name maps to all of its
 * values so callers can refuse duplicates (RFC 6749 §3.1: "parameters MUST NOT be
 * included more than once").
 */
export class FormParams {
  private readonly values = new Map<string, string[]>()

  add(name: string, value: string): void {
    const list = this.values.get(name)
    if (list) list.push(value)
    else this.values.set(name, [value])
  }

  /** The single value of `name`; a repeated parameter is `invalid_request`. Empty counts as absent (RFC 6749 §3.1). */
  get(name: string): string | undefined {
    const list = this.values.get(name)
    if (!list) return undefined
    if (list.length > 1) throw new OAuthError('invalid_request', `parameter ${name} is repeated`)
    const value = list[0]
    return value === '' ? undefined : value
  }

  has(name: string): boolean {
    return this.get(name) !== undefined
  }

  /** Every value of `name`, in order (repeatable parameters). */
  all(name: string): readonly string[] {
    return this.values.get(name) ?? []
  }

  names(): IterableIterator<string> {
    return this.values.keys()
  }

  count(name: string): number {
    return this.values.get(name)?.length ?? 0
  }
}

export function isFormContentType(header: string | undefined): boolean {
  if (!header) return false
  const semi = header.indexOf(';')
  const type = (semi === -1 ? header : header.slice(0, semi)).trim().toLowerCase()
  return type === 'application/x-www-form-urlencoded'
}

/** Parse a urlencoded string with bounds on count and length; malformed escapes fail cleanly. */
export function parseForm(text: string): FormParams {
  const params = new FormParams()
  if (text.length === 0) return params
  let count = 0
  for (const [name, value] of new URLSearchParams(text)) {
    if (++count > MAX_PARAMS) throw new OAuthError('invalid_request', 'too many parameters')
    if (name.length > 128) throw new OAuthError('invalid_request', 'parameter name too long')
    if (value.length > MAX_PARAM_LENGTH) throw new OAuthError('invalid_request', `parameter ${name.slice(0, 64)} is too long`)
    if (value.includes('\u0000') || name.includes('\u0000')) throw new OAuthError('invalid_request', 'parameters must not contain NUL')
    params.add(name, value)
  }
  return params
}

/** Read the request body as text, refusing more than `limit` bytes with 413. */
export function readBody(req: IncomingMessage, limit = MAX_FORM_BYTES): Promise<string> {
  const declared = req.headers['content-length']
  if (declared !== undefined && Number(declared) > limit) {
    req.resume()
    return Promise.reject(tooLarge(limit))
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let done = false
    const finish = (err: Error | undefined, text?: string): void => {
      if (done) return
      done = true
      req.removeListener('data', onData)
      req.removeListener('end', onEnd)
      req.removeListener('error', onError)
      req.removeListener('aborted', onAborted)
      if (err) {
        req.resume()
        reject(err)
      } else resolve(text ?? '')
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > limit) finish(tooLarge(limit))
      else chunks.push(chunk)
    }
    const onEnd = (): void => {
      const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
      // Invalid UTF-8 becomes U+FFFD; such a value can never match a stored secret.
      finish(undefined, buf.toString('utf8'))
    }
    const onError = (): void => finish(new OAuthError('invalid_request', 'could not read the request body'))
    const onAborted = (): void => finish(new OAuthError('invalid_request', 'request aborted'))
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('aborted', onAborted)
  })
}

function tooLarge(limit: number): OAuthError {
  return new OAuthError('invalid_request', `request body exceeds ${limit} bytes`, { status: 413 })
}

/** Read and parse a form body; wrong content type is `invalid_request` (SPEC §5). */
export async function readForm(req: IncomingMessage, limit = MAX_FORM_BYTES): Promise<FormParams> {
  if (!isFormContentType(req.headers['content-type'])) {
    req.resume()
    throw new OAuthError('invalid_request', 'content type must be application/x-www-form-urlencoded')
  }
  // A compressed body would be parsed as garbage; refuse codings we do not decode (RFC 9110 §8.4).
  const coding = req.headers['content-encoding']?.trim().toLowerCase()
  if (coding && coding !== 'identity') {
    req.resume()
    throw new OAuthError('invalid_request', 'content encoding is not supported')
  }
  return parseForm(await readBody(req, limit))
}
