/**
 * The store keys' schedule (core/src/tokens/key-store.ts), pure logic: when a successor is made,
 * when it signs, when a retired key goes. The black-box test (store-keys.test.ts) runs the
 * same rules through two processes; these cover the edges it cannot wait for.
 */
import t from 'tap'
import { plan, publishAheadMs, statusAt } from '../../core/src/tokens/key-store.js'

const DAY = 86_400_000
const settings = { rotateDays: 30, algs: ['ES256' as const] }
const key = (signFrom: number, signUntil?: number) => ({ kid: `k${signFrom}`, alg: 'ES256' as const, enc: 'x', signFrom, ...(signUntil !== undefined ? { signUntil } : {}) })

t.test('publish-ahead is rotateDays/4, at least a day', async (t) => {
  t.equal(publishAheadMs({ rotateDays: 30 }), 7.5 * DAY)
  t.equal(publishAheadMs({ rotateDays: 4 }), DAY)
  t.equal(publishAheadMs({ rotateDays: 2 }), DAY, 'never under a day')
})

t.test('an empty store gets one key per alg that signs at once', async (t) => {
  const { create, changed } = plan({ v: 1, keys: [] }, { rotateDays: 30, algs: ['ES256', 'RS256'] }, 1000, 0)
  t.ok(changed)
  t.same(create, [{ alg: 'ES256', signFrom: 1000 }, { alg: 'RS256', signFrom: 1000 }])
})

t.test('the successor: none before rotateDays - publishAhead, then one that signs publishAhead later', async (t) => {
  t.notOk(plan({ v: 1, keys: [key(0)] }, settings, 22 * DAY, 0).changed, 'day 22: nothing to do')
  const { record, create } = plan({ v: 1, keys: [key(0)] }, settings, 22.5 * DAY, 0)
  t.same(create, [{ alg: 'ES256', signFrom: 30 * DAY }])
  t.equal(record.keys[0]!.signUntil, 30 * DAY, 'the old key signs until the new one starts')
})

t.test('after a long outage the successor still waits a full publish-ahead period before it signs', async (t) => {
  const now = 90 * DAY
  const { record, create } = plan({ v: 1, keys: [key(0)] }, settings, now, 0)
  t.same(create, [{ alg: 'ES256', signFrom: now + 7.5 * DAY }], 'not at once, though the old key is 60 days overdue')
  t.equal(statusAt(record.keys[0]!, now + DAY, 0), 'current', 'the old key keeps signing meanwhile')
})

t.test('states follow the schedule; a retired key stays for the retention, then is pruned', async (t) => {
  const k = key(10 * DAY, 40 * DAY)
  t.equal(statusAt(k, 5 * DAY, 600_000), 'next')
  t.equal(statusAt(k, 20 * DAY, 600_000), 'current')
  t.equal(statusAt(k, 40 * DAY, 600_000), 'retired')
  t.equal(statusAt(k, 40 * DAY + 599_999, 600_000), 'retired')
  t.equal(statusAt(k, 40 * DAY + 600_000, 600_000), undefined)
  const { record, changed } = plan({ v: 1, keys: [k, key(40 * DAY)] }, settings, 40 * DAY + 600_000, 600_000)
  t.ok(changed)
  t.same(record.keys.map((x) => x.kid), [`k${40 * DAY}`], 'pruned')
})

t.test('an alg dropped from keys.algs is retired (kept for its tokens), not deleted', async (t) => {
  const rs = { ...key(0), kid: 'rs', alg: 'RS256' as const }
  const { record } = plan({ v: 1, keys: [key(0), rs] }, settings, DAY, 0)
  t.equal(record.keys.find((x) => x.kid === 'rs')!.signUntil, DAY)
})
