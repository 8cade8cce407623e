/**
 * randomToken draws from a pool the CSPRNG refills (core/src/tokens/tokens.ts): every value
 * has its full length and entropy, and none repeats across refills.
 */
import t from 'tap'
import { randomToken } from '@grantd/core'

t.test('lengths: 256 bits by default, any size asked for', async (t) => {
  t.equal(Buffer.from(randomToken(), 'base64url').length, 32)
  t.equal(Buffer.from(randomToken(16), 'base64url').length, 16)
  t.equal(Buffer.from(randomToken(5000), 'base64url').length, 5000, 'larger than the pool: straight from the CSPRNG')
  t.match(randomToken(), /^[A-Za-z0-9_-]{43}$/)
})

t.test('no value repeats across many pool refills', async (t) => {
  const seen = new Set<string>()
  for (let i = 0; i < 50_000; i++) seen.add(randomToken(i % 3 === 0 ? 16 : 32))
  t.equal(seen.size, 50_000)
})

t.test('bytes look uniform (no zeroed or reused pool bytes)', async (t) => {
  const counts = new Array<number>(256).fill(0)
  for (let i = 0; i < 20_000; i++) for (const b of Buffer.from(randomToken(), 'base64url')) counts[b]!++
  const expected = (20_000 * 32) / 256
  t.ok(counts.every((c) => c > expected * 0.8 && c < expected * 1.2), 'every byte value within 20 % of its expected count')
})
