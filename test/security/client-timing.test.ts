/**
 * Audit finding 4 (SPEC §9): an unknown client_id, a client without a secret and a client
 * with a clear secret cost what a wrong secret for a hashed-secret client costs (a decoy
 * scrypt with the configured parameters), so response times do not tell which client_ids
 * exist. Samples are interleaved and medians compared with generous bounds (a shared,
 * noisy machine): before the fix an unknown id answered about ten times faster.
 */
import t from 'tap'
import { hashSecret } from '@grantd/core'
import { basic, postForm, startServer, type RunningServer } from '../helpers/server.js'

const SAMPLES = 17

async function time(srv: RunningServer, id: string, secret: string): Promise<number> {
  const started = performance.now()
  const res = await postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic(id, secret) })
  const ms = performance.now() - started
  if (res.status !== 401 || res.json.error_description !== 'client authentication failed') throw new Error(`unexpected answer ${res.status} ${res.text}`)
  return ms
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

t.test('unknown client_id, secretless client and clear-secret client cost what a wrong hashed secret costs', async (t) => {
  const srv = await startServer({
    issuer: 'http://issuer.test',
    // Limits far above the sample count: the reservations run, the locks never trip.
    throttle: { maxFailuresPerClient: 10_000, maxFailuresPerAddress: 10_000 },
    plugins: ['@grantd/grant-client-credentials', '@grantd/grant-authorization-code'],
    clients: [
      { client_id: 'hashed', client_secret: await hashSecret('the-secret'), grant_types: ['client_credentials'], scope: 'api' },
      { client_id: 'clear', client_secret: 'clear-secret', grant_types: ['client_credentials'], scope: 'api' },
      { client_id: 'public', grant_types: ['authorization_code'], redirect_uris: ['http://127.0.0.1:5000/cb'], scope: 'openid' },
    ],
  })
  t.teardown(srv.close)
  const kinds: Record<string, () => Promise<number>> = {
    wrongSecret: () => time(srv, 'hashed', 'wrong-secret'),
    unknownId: () => time(srv, `nobody-${Math.random()}`, 'wrong-secret'),
    secretless: () => time(srv, 'public', 'wrong-secret'),
    clearWrong: () => time(srv, 'clear', 'wrong-secret'),
  }
  for (const run of Object.values(kinds)) await run() // warm up
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]))
  for (let i = 0; i < SAMPLES; i++) {
    for (const [kind, run] of Object.entries(kinds)) samples[kind]!.push(await run())
  }
  const reference = median(samples.wrongSecret!)
  t.ok(reference > 5, `a wrong hashed secret costs a real scrypt (${reference.toFixed(1)} ms)`)
  for (const kind of ['unknownId', 'secretless', 'clearWrong']) {
    const ratio = median(samples[kind]!) / reference
    t.ok(ratio > 0.5 && ratio < 2, `${kind}: median ${median(samples[kind]!).toFixed(1)} ms, ${ratio.toFixed(2)}× a wrong secret`)
  }
})

t.test('the decoy takes the parameters of the costliest configured hash', async (t) => {
  const srv = await startServer({
    issuer: 'http://issuer.test',
    throttle: { maxFailuresPerClient: 0, maxFailuresPerAddress: 0 },
    plugins: ['@grantd/grant-client-credentials'],
    clients: [
      { client_id: 'cheap', client_secret: await hashSecret('a', 12), grant_types: ['client_credentials'], scope: 'api' },
      { client_id: 'costly', client_secret: await hashSecret('b', 15), grant_types: ['client_credentials'], scope: 'api' },
    ],
  })
  t.teardown(srv.close)
  const costly: number[] = []
  const unknown: number[] = []
  for (let i = 0; i < 9; i++) {
    costly.push(await time(srv, 'costly', 'wrong'))
    unknown.push(await time(srv, 'nobody', 'wrong'))
  }
  const ratio = median(unknown) / median(costly)
  t.ok(ratio > 0.5 && ratio < 2, `unknown ${median(unknown).toFixed(1)} ms vs ln=15 ${median(costly).toFixed(1)} ms (${ratio.toFixed(2)}×)`)
})
