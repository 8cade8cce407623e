/**
 * The floor plus one signature: the floor's Koa app that also signs an RFC 9068-shaped
 * ES256 JWT with jose the way grantd's token service does (CompactSign over the claims'
 * JSON bytes) and returns it. No client authentication, no logging. This is the practical
 * ceiling for a JWT-issuing Koa server on this machine; grantd's distance to it is the
 * cost of everything grantd does besides HTTP and signing.
 * Input: PORT, BENCH_JWK (a private ES256 JWK as JSON).
 */
import { randomUUID } from 'node:crypto'
import { CompactSign, importJWK, type JWK } from 'jose'
import { issuer, serveFloor } from './floor-server.js'

const jwk = JSON.parse(process.env.BENCH_JWK ?? '') as JWK
const key = await importJWK(jwk, 'ES256')
const header = { alg: 'ES256', kid: jwk.kid!, typ: 'at+jwt' }
const utf8 = new TextEncoder()

serveFloor(async (form, ctx) => {
  const scope = form.get('scope') ?? ''
  const now = Math.floor(Date.now() / 1000)
  const claims = { iss: issuer, sub: 'svc', aud: 'svc', client_id: 'svc', scope, iat: now, exp: now + 300, jti: randomUUID() }
  const token = await new CompactSign(utf8.encode(JSON.stringify(claims))).setProtectedHeader(header).sign(key)
  ctx.body = { access_token: token, token_type: 'Bearer', expires_in: 300, scope }
})
