/**
 * The refresh floor: the least a Koa server on Redis can do for a rotating refresh token.
 * It reads the urlencoded body, atomically takes the presented token's record out of
 * Redis (GETDEL of its SHA-256, command 1), stores a new token's record (SET … EX,
 * command 2), signs an RFC 9068-shaped ES256 JWT with jose and answers both tokens. It
 * signs the way grantd's token service does (jose CompactSign over the claims' JSON
 * bytes, cheaper than SignJWT), so the floor is not slowed by a costlier signing call.
 * No client authentication, no family bookkeeping, no reuse detection, no logging.
 *
 * `grant_type=refresh_token` with a token it never issued answers 400, so a load run
 * against it really is a chain of rotations; any other grant_type mints a first token
 * (the benchmark's seeds) with one SET.
 *
 * FLOOR_EXTRA_READS=n adds n sequential GETs of the presented token's key before the
 * GETDEL: the same floor with as many Redis round trips as grantd's refresh makes, to
 * tell the cost of round trips from the cost of everything else.
 * Input: PORT, REDIS_URL, BENCH_JWK (a private ES256 JWK as JSON), FLOOR_EXTRA_READS (0).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { CompactSign, importJWK, type JWK } from 'jose'
import { issuer, serveFloor } from './floor-server.js'

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
const jwk = JSON.parse(process.env.BENCH_JWK ?? '') as JWK
const key = await importJWK(jwk, 'ES256')
const header = { alg: 'ES256', kid: jwk.kid!, typ: 'at+jwt' }
const prefix = `floor:${randomBytes(4).toString('hex')}:`
const TTL = 3600
const EXTRA_READS = Number(process.env.FLOOR_EXTRA_READS ?? 0)
const utf8 = new TextEncoder()

const storageKey = (token: string): string => prefix + createHash('sha256').update(token).digest('base64url')

serveFloor(async (form, ctx) => {
  let record = { sub: 'u-bench', client_id: 'ro', scope: form.get('scope') ?? 'api offline_access' }
  if (form.get('grant_type') === 'refresh_token') {
    const key = storageKey(form.get('refresh_token') ?? '')
    for (let i = 0; i < EXTRA_READS; i++) await redis.get(key)
    const stored = await redis.getdel(key)
    if (stored === null) {
      ctx.status = 400
      ctx.body = { error: 'invalid_grant' }
      return
    }
    record = JSON.parse(stored) as typeof record
  }
  const refreshToken = randomBytes(32).toString('base64url')
  await redis.set(storageKey(refreshToken), JSON.stringify(record), 'EX', TTL)
  const now = Math.floor(Date.now() / 1000)
  const claims = { iss: issuer, sub: record.sub, aud: record.client_id, client_id: record.client_id, scope: record.scope, iat: now, exp: now + 300, jti: randomUUID() }
  const accessToken = await new CompactSign(utf8.encode(JSON.stringify(claims))).setProtectedHeader(header).sign(key)
  ctx.body = { access_token: accessToken, token_type: 'Bearer', expires_in: 300, scope: record.scope, refresh_token: refreshToken }
}, () => redis.disconnect())
