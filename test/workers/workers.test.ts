/**
 * SPEC §13: `grantd start --workers N` on node:cluster — N processes on one port, a dead
 * worker is replaced, SIGTERM drains every worker and exits 0, the memory store refuses
 * N > 1, and `shutdown.timeoutSeconds` bounds the drain with a warning per request cut.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { basic, CLI, postForm, ROOT, startCli, type ChildServer } from '../helpers/server.js'
import { findRedis } from '../helpers/redis.js'

const SLOW_ROUTE = join(ROOT, 'test', 'fixtures', 'core', 'slow-route.mjs')
const dir = mkdtempSync(join(tmpdir(), 'grantd-workers-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function writeConfig(name: string, extra: Record<string, unknown>): string {
  const file = join(dir, name)
  writeFileSync(file, JSON.stringify({
    issuer: 'http://127.0.0.1:4000',
    log: { level: 'info' },
    plugins: ['@grantd/grant-client-credentials', SLOW_ROUTE],
    clients: [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' }],
    ...extra,
  }))
  return file
}

type Line = Record<string, unknown>
function lines(child: ChildServer): Line[] {
  return child.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line)
}

async function waitFor<T>(what: string, probe: () => T | undefined, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const found = probe()
    if (found !== undefined) return found
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function tokenStatus(url: string): Promise<number> {
  const res = await postForm(`${url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc', 'svc-secret'), connection: 'close' })
  return res.status
}

const started = (child: ChildServer): Line[] => lines(child).filter((l) => l.msg === 'worker started')

t.test('--workers 2 on Redis: a killed worker is replaced, requests keep succeeding, SIGTERM drains and exits 0', async (t) => {
  const redis = await findRedis()
  if (!redis) { t.skip('no Redis available (see notice above)', () => {}); return }
  t.teardown(() => redis.stop())
  const config = writeConfig('redis.json', {
    store: { use: '@grantd/store-redis', options: { url: redis.url, prefix: `grantd-ops-workers-${process.pid}:` } },
  })
  const child = await startCli(config, { args: ['--workers', '2'] })
  t.teardown(() => child.stop('SIGKILL'))
  await waitFor('two workers', () => (started(child).length === 2 ? true : undefined))
  await waitFor('the group listening', () => lines(child).find((l) => l.msg === 'grantd workers listening'))
  const [first, second] = started(child).map((l) => l.pid as number)
  t.not(first, second, 'two processes')
  t.equal(child.output().match(/^try: curl/gm)?.length, 1, 'one start-up hint for the group, not one per worker')
  for (let i = 0; i < 6; i++) t.equal(await tokenStatus(child.url), 200)

  // Kill both original workers, one after the other: the replacements alone must serve.
  for (const [n, pid] of [first!, second!].entries()) {
    process.kill(pid, 'SIGKILL')
    await waitFor(`replacement ${n + 1}`, () => (started(child).length === 3 + n ? true : undefined))
    await waitFor('the replacement listening', () => (lines(child).filter((l) => l.msg === 'worker listening').length === n + 1 ? true : undefined))
    const died = await waitFor('the death logged', () => lines(child).find((l) => l.msg === 'worker died: starting a replacement' && l.pid === pid))
    t.equal(died.signal, 'SIGKILL')
    let ok = 0
    const deadline = Date.now() + 10_000
    while (ok < 10 && Date.now() < deadline) {
      const status = await tokenStatus(child.url).catch(() => 0)
      if (status === 200) ok++
      else if (ok > 0) t.fail(`request failed (${status}) after the replacement served`)
      else await new Promise((r) => setTimeout(r, 50))
    }
    t.equal(ok, 10, `10 requests succeed after worker ${pid} was killed`)
  }
  const pids = started(child).map((l) => l.pid as number)
  t.equal(new Set(pids).size, 4)
  for (const pid of [first!, second!]) t.throws(() => process.kill(pid, 0), 'the killed worker is gone')

  // SIGTERM with a slow request in flight: it completes, then everything exits 0.
  const slow = fetch(`${child.url}/test/slow?ms=1200`).then(async (res) => ({ status: res.status, body: (await res.json()) as unknown }))
  await new Promise((r) => setTimeout(r, 300))
  const exited = once(child.proc, 'exit') as Promise<[number | null, string | null]>
  child.proc.kill('SIGTERM')
  t.same(await slow, { status: 200, body: { done: true, ms: 1200 } })
  const [code] = await exited
  t.equal(code, 0, child.output())
  for (const pid of pids.slice(2)) t.throws(() => process.kill(pid, 0), `worker ${pid} exited too`)
  t.ok(lines(child).some((l) => l.msg === 'shutting down: draining workers' && l.signal === 'SIGTERM'))
})

t.test('the memory store refuses more than one worker, with a one-line reason', async (t) => {
  const config = writeConfig('memory.json', {})
  const res = spawnSync(process.execPath, [CLI, 'start', '--config', config, '--port', '0', '--workers', '2'], { encoding: 'utf8', timeout: 30_000 })
  t.equal(res.status, 1)
  t.equal(res.stdout, '')
  t.match(res.stderr, /^grantd: --workers 2: the store "@grantd\/store-memory" keeps codes and tokens inside one process, so workers would not share them; use @grantd\/store-redis or --workers 1\n$/)
  for (const bad of ['0', 'two', '1.5', '-1']) {
    const r = spawnSync(process.execPath, [CLI, 'start', '--config', config, '--port', '0', `--workers=${bad}`], { encoding: 'utf8', timeout: 30_000 })
    t.equal(r.status, 1, bad)
    t.equal(r.stderr, `grantd: --workers: expected a number from 1 to 256, got "${bad}"\n`)
  }
})

t.test('the memory store runs on --workers 1; a worker that cannot boot stops the group instead of looping', async (t) => {
  const child = await startCli(writeConfig('one.json', {}), { args: ['--workers', '1'] })
  t.teardown(() => child.stop('SIGKILL'))
  t.equal(await tokenStatus(child.url), 200)
  t.equal(await child.stop('SIGTERM'), 0)

  // The primary reads the config, but the worker fails while loading the plugin (a store that throws at boot).
  const broken = writeConfig('broken.json', { plugins: [join(ROOT, 'test', 'fixtures', 'core', 'no-such-plugin.mjs')] })
  const res = spawnSync(process.execPath, [CLI, 'start', '--config', broken, '--port', '0', '--workers', '1'], { encoding: 'utf8', timeout: 30_000 })
  t.equal(res.status, 1, res.stdout + res.stderr)
  t.match(res.stdout, /worker exited before it listened: stopping/, 'the boot failure is logged')
  t.equal(res.stdout.match(/"worker started"/g)?.length ?? 0, 1, 'not restarted')
})

t.test('shutdown.timeoutSeconds bounds the drain; the request cut is logged as a warning', async (t) => {
  const child = await startCli(writeConfig('cut.json', { shutdown: { timeoutSeconds: 1 } }))
  t.teardown(() => child.stop('SIGKILL'))
  const slow = fetch(`${child.url}/test/slow?ms=4000`).then((res) => res.status, () => 'cut')
  await new Promise((r) => setTimeout(r, 300))
  const before = Date.now()
  const exited = once(child.proc, 'exit') as Promise<[number | null]>
  child.proc.kill('SIGTERM')
  t.equal(await slow, 'cut', 'the slow request did not get an answer')
  const [code] = await exited
  t.equal(code, 0)
  t.ok(Date.now() - before < 2500, `stopped at the timeout (${Date.now() - before} ms), not after the 4 s request`)
  const warn = lines(child).find((l) => l.msg === 'shutdown timeout: request cut before it finished')
  t.ok(warn, 'the cut request is logged')
  t.match(warn, { level: 40, method: 'GET', path: '/test/slow', timeoutSeconds: 1 })
})

t.test('shutdown.timeoutSeconds: a wrong type names the key', async (t) => {
  const config = writeConfig('badshutdown.json', { shutdown: { timeoutSeconds: 'soon' } })
  const res = spawnSync(process.execPath, [CLI, 'start', '--config', config], { encoding: 'utf8', timeout: 30_000 })
  t.equal(res.status, 1)
  t.equal(res.stderr, 'grantd: shutdown.timeoutSeconds: expected integer, got string\n')
})
