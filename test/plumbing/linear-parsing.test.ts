/**
 * SPEC §9: parsing of any form is linear in its size. A 16 KB body of ~4,900 distinct empty
 * parameters (the most entries 16 KB can hold) must cost about what one 16 KB parameter
 * costs; a parser that is quadratic in the number of parameters (a merge per parameter, a
 * scan of all names per insert, qs-style array concatenation of repeats) would take tens of
 * milliseconds more per request and blow the ratio (a quadratic parser measured 40x). The bound
 * is generous and compares the fastest of many interleaved runs: the machine is shared, and the
 * fastest run is the one least disturbed by other load.
 */
import t from 'tap'
import { basic, startServer } from '../helpers/server.js'
import { FORM, rawRequest } from '../core/raw-http.js'

const SVC = basic('svc', 'svc-secret')
const LIMIT = 16 * 1024
const BASE = 'grant_type=client_credentials&scope=api'
const ROUNDS = 41
const MAX_RATIO = 10

/** Distinct names, shortest first, each an empty parameter, until the body is just under 16 KiB. */
function distinctParams(): { body: string; count: number } {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
  let body = BASE
  let count = 0
  const names = function* (): Generator<string> {
    for (const a of alphabet) yield a
    for (const a of alphabet) for (const b of alphabet) yield a + b
    for (const a of alphabet) for (const b of alphabet) for (const c of alphabet) yield a + b + c
  }
  for (const name of names()) {
    if (body.length + name.length + 1 > LIMIT) break
    body += `&${name}`
    count++
  }
  return { body, count }
}

function fastest(values: number[]): number {
  return Math.min(...values)
}

t.test('form parsing is linear in the body size', async (t) => {
  const srv = await startServer({
    issuer: 'http://issuer.test',
    plugins: ['@grantd/grant-client-credentials'],
    clients: [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' }],
  })
  t.teardown(srv.close)

  const many = distinctParams()
  const repeated = `${BASE}${'&x'.repeat(Math.floor((LIMIT - BASE.length) / 2))}`
  const one = `${BASE}&pad=${'a'.repeat(LIMIT - BASE.length - 5)}`
  t.ok(many.count > 4800, `${many.count} distinct parameters`)
  for (const body of [many.body, repeated, one]) t.ok(body.length <= LIMIT && body.length > LIMIT - 8, `body of ${body.length} bytes`)

  const bodies = { many: many.body, repeated, one }
  const times: Record<keyof typeof bodies, number[]> = { many: [], repeated: [], one: [] }
  for (let i = 0; i < ROUNDS; i++) {
    // Interleaved, so a burst of load from elsewhere hits every kind alike.
    for (const kind of Object.keys(bodies) as Array<keyof typeof bodies>) {
      const started = performance.now()
      const res = await rawRequest(srv.url, { path: '/connect/token', headers: { authorization: SVC, 'content-type': FORM }, body: bodies[kind] })
      times[kind].push(performance.now() - started)
      if (res.status !== 200) t.fail(`${kind}: ${res.status} ${res.text.slice(0, 200)}`)
    }
  }
  const oneMs = fastest(times.one)
  for (const kind of ['many', 'repeated'] as const) {
    const ratio = fastest(times[kind]) / oneMs
    t.ok(ratio < MAX_RATIO, `${kind}: fastest ${fastest(times[kind]).toFixed(2)} ms vs one parameter ${oneMs.toFixed(2)} ms (ratio ${ratio.toFixed(2)} < ${MAX_RATIO})`)
  }
})
