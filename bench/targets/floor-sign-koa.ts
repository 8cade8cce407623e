/**
 * The floor plus one signature: the floor's Koa app that also signs an RFC 9068-shaped
 * ES256 JWT with jose (the same SignJWT call grantd's token service makes) and returns it.
 * No client authentication, no logging. This is the practical ceiling for a
 * JWT-issuing Koa server on this machine; grantd's distance to it is the cost of
 * everything grantd does besides HTTP and signing.
 * Input: PORT, BENCH_JWK (a private ES256 JWK as JSON).
 */
import { createServer } from 'node:http'
import { randomUUID } from 'node:crypto'
import Koa from 'koa'
import { SignJWT, importJWK, type JWK } from 'jose'

const port = Number(process.env.PORT)
const jwk = JSON.parse(process.env.BENCH_JWK ?? '') as JWK
const key = await importJWK(jwk, 'ES256')
const header = { alg: 'ES256', kid: jwk.kid!, typ: 'at+jwt' }
const issuer = `http://127.0.0.1:${port}`
const app = new Koa()

function readText(req: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

app.use(async (ctx) => {
  if (ctx.method === 'GET' && ctx.path === '/healthz') {
    ctx.body = { status: 'ok' }
    return
  }
  if (ctx.method !== 'POST') {
    ctx.status = 405
    return
  }
  const form = new URLSearchParams(await readText(ctx.req))
  const scope = form.get('scope') ?? ''
  const now = Math.floor(Date.now() / 1000)
  const token = await new SignJWT({ iss: issuer, sub: 'svc', aud: 'svc', client_id: 'svc', scope, iat: now, exp: now + 300, jti: randomUUID() })
    .setProtectedHeader(header)
    .sign(key)
  ctx.set('Cache-Control', 'no-store')
  ctx.body = { access_token: token, token_type: 'Bearer', expires_in: 300, scope }
})

createServer(app.callback()).listen(port, '127.0.0.1')
process.on('SIGTERM', () => process.exit(0))
