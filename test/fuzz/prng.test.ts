import t from 'tap'
import { Prng } from './prng.js'

t.test('the same seed replays the same sequence; different seeds differ', async (t) => {
  const a = new Prng(42)
  const b = new Prng(42)
  const c = new Prng(43)
  const seqA = Array.from({ length: 16 }, () => a.u32())
  t.same(Array.from({ length: 16 }, () => b.u32()), seqA)
  t.notSame(Array.from({ length: 16 }, () => c.u32()), seqA)
  t.same(Prng.forCase(7, 3).bytes(8), Prng.forCase(7, 3).bytes(8))
  t.notSame(Prng.forCase(7, 3).bytes(8), Prng.forCase(7, 4).bytes(8))
})

t.test('values are spread over their range', async (t) => {
  const p = new Prng(1)
  const counts = new Array<number>(10).fill(0)
  for (let i = 0; i < 10_000; i++) counts[p.int(0, 9)]!++
  for (const n of counts) t.ok(n > 850 && n < 1150, `bucket count ${n} near 1000`)
  const bytes = p.bytes(4096)
  t.ok(new Set(bytes).size > 250, 'bytes cover nearly every value')
})
