/**
 * The ceiling: how many ES256 JWTs jose alone signs per second on one core, with a
 * payload shaped like grantd's access token. No server can issue more tokens than this,
 * so the ratio server/ceiling says how much the HTTP and OAuth work around signing costs.
 * Run pinned to the server's CPU; prints one JSON line.
 *
 * jose 6 signs through WebCrypto (`crypto.subtle.sign`), which Node runs as an async job,
 * so the figure that matters for a server is with many signatures in flight (as with 32
 * connections); the one-at-a-time figure is shown for contrast.
 */
import { KeyObject, randomUUID, sign as nodeSign } from 'node:crypto'
import { CompactSign, SignJWT, generateKeyPair } from 'jose'

const SECONDS = Number(process.env.SIGN_SECONDS ?? 3)
const IN_FLIGHT = 32
const { privateKey } = await generateKeyPair('ES256')
const header = { alg: 'ES256', kid: 'bench-key', typ: 'at+jwt' }
const encoder = new TextEncoder()

function claims(): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000)
  return { iss: 'http://127.0.0.1:4000', sub: 'svc', aud: 'svc', client_id: 'svc', scope: 'api', iat: now, exp: now + 300, jti: randomUUID() }
}

type Signer = () => Promise<string>

const variants: Record<string, Signer> = {
  'SignJWT+CryptoKey': () => new SignJWT(claims()).setProtectedHeader(header).sign(privateKey),
  'CompactSign+CryptoKey': () => new CompactSign(encoder.encode(JSON.stringify(claims()))).setProtectedHeader(header).sign(privateKey),
  'SignJWT+KeyObject': ((key) => () => new SignJWT(claims()).setProtectedHeader(header).sign(key))(KeyObject.from(privateKey)),
  // The node:crypto floor, as core/src/tokens/jws.ts signs: synchronous crypto.sign on a KeyObject, header encoded once.
  'node:crypto.sign+KeyObject': ((key, encodedHeader) => async () => {
    const input = `${encodedHeader}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}`
    return `${input}.${nodeSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`
  })(KeyObject.from(privateKey), Buffer.from(JSON.stringify(header)).toString('base64url')),
}

/** Signatures per second of wall time, and CPU microseconds per signature (all threads; less sensitive to neighbours). */
async function measure(sign: Signer, inFlight: number): Promise<{ perSecond: number; cpuMicros: number }> {
  const until = performance.now() + SECONDS * 1000
  let count = 0
  const cpuBefore = process.cpuUsage()
  const lane = async (): Promise<void> => {
    while (performance.now() < until) {
      await sign()
      count++
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: inFlight }, lane))
  const cpu = process.cpuUsage(cpuBefore)
  return { perSecond: Math.round(count / ((performance.now() - started) / 1000)), cpuMicros: Math.round(((cpu.user + cpu.system) / count) * 10) / 10 }
}

const results: Record<string, { inFlight32: number; serial: number; cpuMicrosPerSign: number }> = {}
for (const [name, sign] of Object.entries(variants)) {
  await measure(sign, IN_FLIGHT) // warm-up, and the JIT settles
  const many = await measure(sign, IN_FLIGHT)
  const one = await measure(sign, 1)
  results[name] = { inFlight32: many.perSecond, serial: one.perSecond, cpuMicrosPerSign: many.cpuMicros }
}
process.stdout.write(JSON.stringify({ secondsPerVariant: SECONDS, results }) + '\n')
