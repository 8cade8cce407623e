/**
 * SPEC §2: on SIGTERM/SIGINT `grantd start` stops accepting, finishes in-flight
 * requests and exits 0. The slow route comes from test/fixtures/core/slow-route.mjs.
 */
import t from 'tap'
import { once } from 'node:events'
import { join } from 'node:path'
import { ROOT, startCli } from '../helpers/server.js'

const GOOD = join(ROOT, 'test', 'fixtures', 'core', 'good.json')

t.test('SIGTERM while a slow request is in flight: it completes, then the process exits 0', async (t) => {
  const child = await startCli(GOOD)
  t.teardown(() => child.stop('SIGKILL'))
  const started = Date.now()
  const slow = fetch(`${child.url}/test/slow?ms=1200`).then(async (res) => ({ status: res.status, body: (await res.json()) as unknown, at: Date.now() }))
  // Let the request reach the handler before the signal.
  await new Promise((resolve) => setTimeout(resolve, 300))
  const exited = once(child.proc, 'exit') as Promise<[number | null, string | null]>
  child.proc.kill('SIGTERM')
  await new Promise((resolve) => setTimeout(resolve, 150))
  // Stopped accepting: a new connection is refused while the slow one drains.
  await t.rejects(fetch(`${child.url}/healthz`, { headers: { connection: 'close' } }), 'new connections are refused during the drain')
  const answer = await slow
  t.equal(answer.status, 200)
  t.same(answer.body, { done: true, ms: 1200 })
  t.ok(answer.at - started >= 1200, 'the request ran to its end')
  const [code, signal] = await exited
  // The drained connection was kept alive by the client: it must be closed, not waited out.
  t.ok(Date.now() - answer.at < 1500, `exits right after the last answer (${Date.now() - answer.at} ms)`)
  t.equal(code, 0, child.output())
  t.equal(signal, null)
  const lines = child.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
  t.ok(lines.some((l) => l.msg === 'shutting down: draining requests' && l.signal === 'SIGTERM'))
  t.ok(lines.some((l) => l.msg === 'request' && l.path === '/test/slow' && l.status === 200), 'the drained request is logged')
  t.ok(lines.some((l) => l.msg === 'stopped'))
})

t.test('SIGINT on an idle server (with a kept-alive connection) exits 0 promptly', async (t) => {
  const child = await startCli(GOOD)
  t.teardown(() => child.stop('SIGKILL'))
  // Leave a keep-alive connection open: an idle socket must not hold the process.
  t.equal((await fetch(`${child.url}/healthz`)).status, 200)
  const before = Date.now()
  t.equal(await child.stop('SIGINT'), 0)
  t.ok(Date.now() - before < 3000, 'idle connections do not delay the exit')
})
