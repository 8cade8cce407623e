import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose'

/** The request every target gets: RFC 6749 §4.4 client_credentials with client_secret_basic. */
export const CLIENT_ID = 'svc'
export const CLIENT_SECRET = 'svc-secret'
export const FORM = 'grant_type=client_credentials&scope=api'
export const HEADERS: Record<string, string> = {
  'content-type': 'application/x-www-form-urlencoded',
  authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
}

/**
 * Before a target is measured: it must answer 200, and a token server must return an
 * ES256 JWT access token that verifies against the benchmark's public key. Returns a
 * short description of what came back.
 */
export async function verifyTarget(url: string, expectJwt: boolean, publicJwk: JWK): Promise<string> {
  const res = await fetch(url, { method: 'POST', headers: HEADERS, body: FORM })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}: ${text.slice(0, 300)}`)
  const body = JSON.parse(text) as Record<string, unknown>
  if (!expectJwt) return `200 ${text.slice(0, 80)}`
  const token = body.access_token
  if (typeof token !== 'string') throw new Error(`${url}: no access_token in ${text.slice(0, 300)}`)
  const header = decodeProtectedHeader(token)
  if (header.alg !== 'ES256') throw new Error(`${url}: access token alg is ${String(header.alg)}, expected ES256`)
  const { payload } = await jwtVerify(token, createLocalJWKSet({ keys: [publicJwk] }))
  if (payload.client_id !== CLIENT_ID || payload.scope !== 'api') throw new Error(`${url}: unexpected claims ${JSON.stringify(payload)}`)
  return `200 ${String(header.typ)} ES256 JWT, ${token.length} chars, claims ${Object.keys(payload).join(',')}`
}
