import t from 'tap'
import { performance } from 'node:perf_hooks'
import { baseConfig, pkcePair, startFlowServer, WEB_REDIRECT } from '../authorization-code/flow.js'

/**
 * SPEC §9: parsing of any query or form is linear in its size. The attack: a 16 KB query
 * of thousands of distinct empty parameters made the authorization endpoint look every
 * name up again (quadratic), ~30x slower than one 16 KB parameter of the same size.
 * Timed against the real server over HTTP; the bound on the ratio of the fastest runs is generous.
 */

const RUNS = 21

/** The fastest of RUNS interleaved requests to each URL: the run least disturbed by other load on a shared machine. */
async function fastest(urls: readonly string[]): Promise<number[]> {
  const best = urls.map(() => Infinity)
  for (let i = 0; i < RUNS; i++) {
    for (const [k, url] of urls.entries()) {
      const start = performance.now()
      const res = await fetch(url, { redirect: 'manual' })
      await res.arrayBuffer()
      best[k] = Math.min(best[k]!, performance.now() - start)
    }
  }
  return best
}

t.test('a query of many distinct parameters costs about what one big parameter costs', async (t) => {
  const srv = await startFlowServer(baseConfig())
  t.teardown(srv.close)
  const { challenge } = pkcePair()
  const base = new URLSearchParams({
    response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 's', nonce: 'n',
    code_challenge: challenge, code_challenge_method: 'S256',
  }).toString()
  // Node refuses request heads over 16 KiB (431), so the query stays just under.
  const budget = 15 * 1024 - base.length - 1
  // ≈4,900 distinct empty parameters ("0&1&…&zz"), unknown to grantd and ignored (RFC 6749 §3.1).
  const names: string[] = []
  let used = 0
  for (let i = 0; used + i.toString(36).length + 1 <= budget; i++) {
    names.push(i.toString(36))
    used += i.toString(36).length + 1
  }
  const many = `${srv.url}/connect/authorize?${base}&${names.join('&')}`
  const one = `${srv.url}/connect/authorize?${base}&x=${'a'.repeat(many.length - srv.url.length - '/connect/authorize?'.length - base.length - 3)}`
  t.ok(names.length > 4000, `${names.length} parameters`)
  t.equal(many.length, one.length, 'both queries have the same size')

  // Both requests are valid: they reach the login page (the whole parse ran).
  for (const url of [many, one]) t.equal((await fetch(url, { redirect: 'manual' })).status, 200)
  // Warm up, then interleave so load from elsewhere hits both alike; a quadratic parse measured 30x.
  await fastest([one, many])
  const [single, spread] = (await fastest([one, many])) as [number, number]
  t.comment(`fastest: one parameter ${single.toFixed(1)} ms, ${names.length} parameters ${spread.toFixed(1)} ms`)
  t.ok(spread < Math.max(single * 10, single + 15), `many parameters (${spread.toFixed(1)} ms) within 10x of one (${single.toFixed(1)} ms)`)
})
