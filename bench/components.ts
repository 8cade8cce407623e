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
import { createLogger } from '../core/dist/logger.js'
import { parseForm } from '../core/dist/form-body.js'
import { isSubset, parseScope } from '../core/dist/scope.js'
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

// Signing: jose is the only way tokens are signed; which of its entry points, with which key type.
const { privateKey } = await generateKeyPair('ES256')
const keyObject = KeyObject.from(privateKey)
const header = { alg: 'ES256', kid: 'bench-key', typ: 'at+jwt' }
const utf8 = new TextEncoder()
const claims = (): Record<string, unknown> => {
  const now = Math.floor(Date.now() / 1000)
  return { iss: 'http://127.0.0.1:4000', sub: 'svc', aud: 'svc', client_id: 'svc', scope: 'api', iat: now, exp: now + 300, jti: randomUUID() }
}
for (let rep = 0; rep < 3; rep++) {
  await measureAsync('sign: jose CompactSign + CryptoKey (now)', 10_000, () => new CompactSign(utf8.encode(JSON.stringify(claims()))).setProtectedHeader(header).sign(privateKey))
  await measureAsync('sign: jose SignJWT + CryptoKey (before)', 10_000, () => new SignJWT(claims()).setProtectedHeader(header).sign(privateKey))
  await measureAsync('sign: jose SignJWT + KeyObject', 10_000, () => new SignJWT(claims()).setProtectedHeader(header).sign(keyObject))
}
const signAlg = { name: 'ECDSA', hash: 'SHA-256' }
const signingInput = utf8.encode('x'.repeat(330))
await measureAsync('sign: crypto.subtle.sign alone (under jose)', 10_000, () => crypto.subtle.sign(signAlg, privateKey, signingInput))

const width = Math.max(...Object.keys(results).map((k) => k.length))
for (const [name, micros] of Object.entries(results)) process.stdout.write(`${name.padEnd(width)}  ${String(micros).padStart(7)} µs CPU\n`)
const out = join(HERE, 'results', `${isoDate()}-components.json`)
await writeFile(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, note: 'CPU microseconds per call on the server CPU; the last of repeated measurements', results }, null, 2) + '\n')
process.stdout.write(`wrote ${out}\n`)
