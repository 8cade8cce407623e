import { OAuthError, type RouteContext } from '@grantd/core'

/** Stand-in for @grantd/core's readJson until it lands on this branch (same contract). */
export async function readJson(ctx: RouteContext): Promise<Record<string, unknown>> {
  const type = (ctx.get('content-type') || '').split(';')[0]!.trim().toLowerCase()
  if (type !== 'application/json') {
    ctx.req.resume()
    throw new OAuthError('invalid_request', 'content type must be application/json')
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length
    if (size > 16 * 1024) throw new OAuthError('invalid_request', 'request body exceeds 16384 bytes', { status: 413 })
    chunks.push(chunk as Buffer)
  }
  let body: unknown
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new OAuthError('invalid_request', 'the request body is not valid JSON')
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new OAuthError('invalid_request', 'the request body must be a JSON object')
  return body as Record<string, unknown>
}
