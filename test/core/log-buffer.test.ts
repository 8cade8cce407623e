/**
 * The stdout logger batches lines (ops/logger.ts): a line must still reach stdout on a
 * server that gets no more traffic, a warning at once, and every line written before a
 * SIGTERM must be on stdout when the process has exited.
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { basic, postForm, startCli, type ChildServer } from '../helpers/server.js'

const dir = mkdtempSync(join(tmpdir(), 'grantd-log-buffer-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const file = join(dir, 'grantd.json')
writeFileSync(file, JSON.stringify({
  log: { level: 'info' },
  plugins: ['@grantd/grant-client-credentials'],
  clients: [{ client_id: 'svc', client_secret: 'svc-secret-0123456789', grant_types: ['client_credentials'], scope: 'api' }],
}))

interface Line { msg?: string; request_id?: string; event?: string; path?: string }

function lines(child: ChildServer): Line[] {
  return child.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line)
}

/** Wait (bounded) until `match` finds a line; the bound is a hang guard, not a timing assertion. */
async function waitForLine(child: ChildServer, match: (line: Line) => boolean): Promise<Line | undefined> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const found = lines(child).find(match)
    if (found || Date.now() > deadline) return found
    await new Promise((r) => setTimeout(r, 20))
  }
}

t.test('a lone request line and its audit line reach stdout without further traffic', async (t) => {
  const child = await startCli(file)
  t.teardown(() => child.stop('SIGKILL'))
  const res = await postForm(`${child.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc', 'svc-secret-0123456789') })
  t.equal(res.status, 200)
  const id = res.headers.get('x-request-id')
  t.ok(id)
  // Nothing else happens on this server: only the flush timer can write these.
  t.ok(await waitForLine(child, (l) => l.msg === 'request' && l.request_id === id), 'the request line arrives')
  t.ok(await waitForLine(child, (l) => l.event === 'token.issued' && l.request_id === id), 'the audit line arrives')
})

t.test('every line written before SIGTERM is on stdout after exit', async (t) => {
  const child = await startCli(file)
  const ids: string[] = []
  const requests = Array.from({ length: 25 }, () => postForm(`${child.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc', 'svc-secret-0123456789') }))
  for (const res of await Promise.all(requests)) {
    t.equal(res.status, 200)
    ids.push(res.headers.get('x-request-id')!)
  }
  // Stop at once: the lines of the last requests are still in the buffer.
  t.equal(await child.stop('SIGTERM'), 0)
  const logged = lines(child)
  for (const id of ids) {
    t.ok(logged.some((l) => l.msg === 'request' && l.request_id === id), `request line ${id}`)
    t.ok(logged.some((l) => l.event === 'token.issued' && l.request_id === id), `audit line ${id}`)
  }
})
