/**
 * `npm run components`: CPU cost of the pieces of grantd's token hot path, one at a time,
 * in one process pinned to the server CPU (re-run under taskset by this script). These
 * are the measurements behind the changes in core/ — each alternative is measured next
 * to what grantd uses. Prints a table and writes bench/results/<date>-components.json.
 */
import { createHash, hash, KeyObject, randomUUID, timingSafeEqual } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Writable } from 'node:stream'
import { CompactSign, SignJWT, generateKeyPair } from 'jose'
import { pino } from 'pino'
import { createLogger } from '../core/dist/ops/logger.js'
import { parseForm } from '../core/dist/http/form-body.js'
import { isSubset, parseScope } from '../core/dist/tokens/scope.js'
import { JwsSigner } from '../core/dist/tokens/jws.js'
import { KeySet } from '../core/dist/tokens/keys.js'
import { TokenService } from '../core/dist/tokens/tokens.js'
import type { Client, Store } from '../core/dist/interfaces.js'
import { hasTaskset } from './lib/machine.js'
import { isoDate, round } from './lib/stats.js'

const HERE = fileURLToPath(new URL('.', import.meta.url))
if (hasTaskset() && process.env.COMPONENTS_PINNED !== '1') {
  const run = spawnSync('taskset', ['-c', '1', process.execPath, '--import=tsx', fileURLToPath(import.meta.url)], { stdio: 'inherit', env: { ...process.env, COMPONENTS_PINNED: '1' } })
  process.exit(run.status ?? 1)
}

const results: Record<string, number> = {}

/** CPU microseconds per call (user + system, all threads), after a warm-up of a tenth. */
function measure(name: string, n: number, fn: () => unknown): void {
  for (let i = 0; i < n / 10; i++) fn()
  const before = process.cpuUsage()
  for (let i = 0; i < n; i++) fn()
  const used = process.cpuUsage(before)
  results[name] = round((used.user + used.system) / n, 2)
}

/** The same for an async operation, 32 in flight (as with 32 connections). */
async function measureAsync(name: string, n: number, fn: () => Promise<unknown>): Promise<void> {
  let left = n / 10
  const lanes = (): Promise<void[]> => Promise.all(Array.from({ length: 32 }, async () => { while (left-- > 0) await fn() }))
  await lanes()
  left = n
  const before = process.cpuUsage()
  await lanes()
  const used = process.cpuUsage(before)
  results[name] = round((used.user + used.system) / n, 1)
}

// Request log line: what grantd's logger costs next to pino with its wildcard paths on every line.
const requestLine = (): Record<string, unknown> => ({ method: 'POST', path: '/connect/token', status: 200, ms: 1.23, ip: '127.0.0.1', client_id: 'svc' })
const nowhere = (): Writable => new Writable({ write(_chunk, _enc, done) { done() } })
const paths = ['password', 'client_secret', 'secret', 'token', 'access_token', 'refresh_token', 'id_token', 'code', 'authorization', '*.password', '*.client_secret', '*.token', '*.authorization', '*.code']
const grantdLog = createLogger('info', nowhere())
const wildcardPino = pino({ level: 'info', base: { name: 'grantd' }, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths, censor: '[redacted]' } }, nowhere())
const plainPino = pino({ level: 'info', base: { name: 'grantd' }, timestamp: pino.stdTimeFunctions.isoTime }, nowhere())
const warnLog = createLogger('warn', nowhere())
for (let rep = 0; rep < 2; rep++) {
  measure('log line: grantd createLogger (info)', 100_000, () => grantdLog.info(requestLine(), 'request'))
  measure('log line: one pino, wildcard redaction (before)', 100_000, () => wildcardPino.info(requestLine(), 'request'))
  measure('log line: pino, no redaction', 100_000, () => plainPino.info(requestLine(), 'request'))
  measure('log line: grantd createLogger at warn (disabled)', 100_000, () => warnLog.info(requestLine(), 'request'))
}

// Client authentication pieces.
const stored = hash('sha256', 'svc-secret', 'buffer')
measure('secret digest: crypto.hash (now)', 200_000, () => timingSafeEqual(hash('sha256', 'svc-secret', 'buffer'), stored))
measure('secret digest: createHash (before)', 200_000, () => timingSafeEqual(createHash('sha256').update('svc-secret').digest(), stored))
measure('Basic header decode', 200_000, () => {
  const m = /^Basic +([A-Za-z0-9+/=_-]{1,2048}) *$/i.exec('Basic c3ZjOnN2Yy1zZWNyZXQ=')
  const text = Buffer.from(m![1]!, 'base64').toString('utf8')
  const colon = text.indexOf(':')
  return [decodeURIComponent(text.slice(0, colon).replace(/\+/g, ' ')), decodeURIComponent(text.slice(colon + 1).replace(/\+/g, ' '))]
})
measure('form parse (grantd parseForm)', 200_000, () => parseForm('grant_type=client_credentials&scope=api'))
const allowed = new Set(['api'])
measure('scope parse + subset check', 200_000, () => isSubset(parseScope('api')!, allowed))
measure('randomUUID (jti)', 200_000, () => randomUUID())

// Signing: jose's entry points (how grantd signed before core/src/tokens/jws.ts), and node:crypto (now).
const { privateKey } = await generateKeyPair('ES256')
const keyObject = KeyObject.from(privateKey)
const header = { alg: 'ES256', kid: 'bench-key', typ: 'at+jwt' }
const utf8 = new TextEncoder()
const claims = (): Record<string, unknown> => {
  const now = Math.floor(Date.now() / 1000)
  return { iss: 'http://127.0.0.1:4000', sub: 'svc', aud: 'svc', client_id: 'svc', scope: 'api', iat: now, exp: now + 300, jti: randomUUID() }
}
for (let rep = 0; rep < 3; rep++) {
  await measureAsync('sign: jose CompactSign + CryptoKey (before jws.ts)', 10_000, () => new CompactSign(utf8.encode(JSON.stringify(claims()))).setProtectedHeader(header).sign(privateKey))
  await measureAsync('sign: jose SignJWT + CryptoKey (before CompactSign)', 10_000, () => new SignJWT(claims()).setProtectedHeader(header).sign(privateKey))
  await measureAsync('sign: jose SignJWT + KeyObject', 10_000, () => new SignJWT(claims()).setProtectedHeader(header).sign(keyObject))
}
for (const alg of ['ES256', 'RS256'] as const) {
  const { privateKey: key } = await generateKeyPair(alg)
  const signer = new JwsSigner(key, { alg, kid: 'bench-key', typ: 'at+jwt' })
  const h = { alg, kid: 'bench-key', typ: 'at+jwt' }
  for (let rep = 0; rep < 2; rep++) {
    measure(`sign ${alg}: jws.ts JwsSigner, node:crypto (now)`, alg === 'ES256' ? 10_000 : 1_000, () => signer.sign(JSON.stringify(claims())))
    await measureAsync(`sign ${alg}: jose CompactSign + CryptoKey (before)`, alg === 'ES256' ? 10_000 : 1_000, () => new CompactSign(utf8.encode(JSON.stringify(claims()))).setProtectedHeader(h).sign(key))
  }
}
// The token service around the signer: claims, the time-claim check, at_hash.
const keySet = await KeySet.generate()
const noStore = {} as Store
const tokenService = new TokenService(keySet, noStore, { accessTokenTtl: 300, idTokenTtl: 300, codeTtl: 60, refreshTokenTtl: 2592000, refreshTokenRotation: true, refreshTokenReuseInterval: 0, accessTokenFormat: 'jwt', tenantClaim: 'tenant' })
const client = { client_id: 'web', id_token_signed_response_alg: 'ES256' } as unknown as Client
const accessToken = await tokenService.signAccessToken({ issuer: 'http://127.0.0.1:4000', client, subject: 'u-alice', scope: 'openid api', audience: 'web', ttl: 300 })
const idClaims = { name: 'Alice', email: 'alice@example.com', email_verified: true, preferred_username: 'alice' }
for (let rep = 0; rep < 2; rep++) {
  await measureAsync('TokenService.signAccessToken ES256', 10_000, () => tokenService.signAccessToken({ issuer: 'http://127.0.0.1:4000', client, subject: 'u-alice', scope: 'openid api', audience: 'web', ttl: 300, grantId: 'g' }))
  await measureAsync('TokenService.signId ES256 with at_hash', 10_000, () => tokenService.signId({ issuer: 'http://127.0.0.1:4000', client, subject: 'u-alice', claims: idClaims, options: { nonce: 'n', authTime: 1, amr: ['pwd'] }, accessToken, ttl: 300 }))
}
measure('at_hash: createHash (before)', 200_000, () => { const d = createHash('sha256').update(accessToken).digest(); return d.subarray(0, d.length / 2).toString('base64url') })
measure('at_hash: crypto.hash one-shot', 200_000, () => { const d = hash('sha256', accessToken, 'buffer'); return d.subarray(0, d.length / 2).toString('base64url') })
measure('secretKey: createHash base64url (before)', 200_000, () => createHash('sha256').update('a-32-byte-random-code-aaaaaaaaaaaaaaaaaaaaa').digest('base64url'))
measure('secretKey: crypto.hash base64url', 200_000, () => hash('sha256', 'a-32-byte-random-code-aaaaaaaaaaaaaaaaaaaaa', 'base64url'))

const signAlg = { name: 'ECDSA', hash: 'SHA-256' }
const signingInput = utf8.encode('x'.repeat(330))
await measureAsync('sign: crypto.subtle.sign alone (under jose)', 10_000, () => crypto.subtle.sign(signAlg, privateKey, signingInput))

const width = Math.max(...Object.keys(results).map((k) => k.length))
for (const [name, micros] of Object.entries(results)) process.stdout.write(`${name.padEnd(width)}  ${String(micros).padStart(7)} µs CPU\n`)
const out = join(HERE, 'results', `${isoDate()}-components.json`)
await writeFile(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, note: 'CPU microseconds per call on the server CPU; the last of repeated measurements', results }, null, 2) + '\n')
process.stdout.write(`wrote ${out}\n`)
