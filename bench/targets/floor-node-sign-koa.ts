/**
 * The node:crypto signing floor: the floor's Koa app plus one ES256 signature of an RFC
 * 9068-shaped token made directly with node:crypto (`crypto.sign` on a KeyObject made once,
 * `dsaEncoding: 'ieee-p1363'`, the header encoded once), the cheapest way Node signs a JWT.
 * grantd signs the same way since core/src/tokens/jws.ts; its distance to this target is the cost
 * of everything grantd does besides HTTP and one signature.
 * Input: PORT, BENCH_JWK (a private ES256 JWK as JSON).
 */
import { createPrivateKey, randomUUID, sign } from 'node:crypto'
import { issuer, serveFloor } from './floor-server.js'

const jwk = JSON.parse(process.env.BENCH_JWK ?? '') as { kid: string }
const key = createPrivateKey({ key: jwk, format: 'jwk' })
const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid: jwk.kid, typ: 'at+jwt' })).toString('base64url')

serveFloor((form, ctx) => {
  const scope = form.get('scope') ?? ''
  const now = Math.floor(Date.now() / 1000)
  const claims = { iss: issuer, sub: 'svc', aud: 'svc', client_id: 'svc', scope, iat: now, exp: now + 300, jti: randomUUID() }
  const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')
  ctx.body = { access_token: `${input}.${signature}`, token_type: 'Bearer', expires_in: 300, scope }
})
