/**
 * Redis faults (issue 5): the test runs its own redis-server (with an append-only file,
 * so a restart keeps what was written), kills it under a running grantd, and brings it
 * back on the same port; then it freezes it (SIGSTOP: the connection stays open but
 * nothing answers, like a hung host or a network black hole) and thaws it (SIGCONT).
 * The machine's shared Redis is never touched.
 */
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, postForm, basic, startCli } from '../helpers/server.js'
import { hasRedisServerBinary } from '../helpers/redis.js'

if (!hasRedisServerBinary()) {
  if (process.env.CI === 'true') throw new Error('redis-server is required under CI')
  process.stderr.write('\n!!!!! redis-server not on PATH: Redis fault tests SKIPPED !!!!!\n\n')
  t.skip('redis-server missing', () => {})
} else {
  const dir = mkdtempSync(join(tmpdir(), 'grantd-fault-'))
  const port = await freePort()
  let redis: ChildProcess | undefined

  async function startRedis(): Promise<void> {
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: 'ignore' })
    const deadline = Date.now() + 10_000
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const probe = spawn('redis-cli', ['-p', String(port), 'ping'], { stdio: ['ignore', 'pipe', 'ignore'] })
        let out = ''
        probe.stdout!.on('data', (d: Buffer) => { out += d.toString() })
        probe.on('exit', () => resolve(out.includes('PONG')))
      })
      if (ok) return
      if (Date.now() > deadline) throw new Error('redis-server did not start')
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  async function killRedis(): Promise<void> {
    if (redis && redis.exitCode === null) {
      const exited = new Promise((r) => redis!.once('exit', r))
      redis.kill('SIGKILL')
      await exited
    }
  }

  await startRedis()
  const config = join(dir, 'grantd.json')
  writeFileSync(config, JSON.stringify({
    log: { level: 'warn' },
    store: { use: '@grantd/store-redis', options: { url: `redis://127.0.0.1:${port}`, prefix: 'fault:', commandTimeoutMs: 1000, connectTimeoutMs: 1000 } },
    users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-1', username: 'alice', password: 'wonderland' }] } },
    plugins: ['@grantd/grant-password', '@grantd/grant-refresh-token', '@grantd/grant-client-credentials'],
    clients: [{ client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password', 'refresh_token'], scope: 'openid api offline_access' }],
  }))
  const server = await startCli(config)
  t.teardown(async () => {
    await server.stop()
    await killRedis()
    rmSync(dir, { recursive: true, force: true })
  })
  const auth = { authorization: basic('ro', 'ro-secret') }
  const passwordGrant = { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'api offline_access' }

  t.test('Redis down: 503 fast, readyz 503, healthz 200; back up: works without restart, nothing lost', async (t) => {
    const before = await postForm(`${server.url}/connect/token`, passwordGrant, auth)
    t.equal(before.status, 200, 'a refresh token is issued while Redis is up')
    const refreshToken = before.json.refresh_token as string
    t.ok(refreshToken, 'with a refresh token')
    t.equal((await fetch(`${server.url}/readyz`)).status, 200, 'readyz 200 while Redis is up')

    await killRedis()

    const started = Date.now()
    const down = await postForm(`${server.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: refreshToken }, auth)
    const elapsed = Date.now() - started
    t.equal(down.status, 503, 'refresh answers 503 while Redis is down')
    t.equal(down.json.error, 'temporarily_unavailable', 'as temporarily_unavailable JSON')
    t.equal(down.headers.get('cache-control'), 'no-store', 'with Cache-Control: no-store')
    t.ok(elapsed < 5000, `answered within 5 s (${elapsed} ms)`)
    const issuing = await postForm(`${server.url}/connect/token`, passwordGrant, auth)
    t.equal(issuing.status, 503, 'a grant that stores a refresh token answers 503 too')
    t.equal(issuing.json.error, 'temporarily_unavailable', 'as temporarily_unavailable')
    // A burst must not pile up: every request of it is answered within the bound.
    const burstStart = Date.now()
    const burst = await Promise.all(Array.from({ length: 20 }, () => postForm(`${server.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: refreshToken }, auth)))
    t.ok(burst.every((r) => r.status === 503), 'a burst of 20 all answer 503')
    t.ok(Date.now() - burstStart < 5000, 'the burst is answered within 5 s')
    t.equal((await fetch(`${server.url}/readyz`)).status, 503, 'readyz 503')
    t.equal((await fetch(`${server.url}/healthz`)).status, 200, 'healthz 200')
    const cc = await postForm(`${server.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, auth)
    t.not(cc.status, 500, 'no 500 anywhere')
    t.equal(server.proc.exitCode, null, 'the process stays up')

    await startRedis()
    let ready = 0
    for (let i = 0; i < 50 && ready !== 200; i++) {
      ready = (await fetch(`${server.url}/readyz`)).status
      if (ready !== 200) await new Promise((r) => setTimeout(r, 200))
    }
    t.equal(ready, 200, 'readyz recovers without a restart')
    const after = await postForm(`${server.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: refreshToken }, auth)
    t.equal(after.status, 200, 'the refresh token stored before the outage still works')
    t.ok(after.json.refresh_token, 'and rotates')
    t.notMatch(server.output(), /unhandled|UnhandledPromiseRejection|server_error/i, 'no unhandled rejection, no server_error')
  })

  t.test('Redis hung: 503 within the command timeout, no pile-up; thawed: works again', async (t) => {
    const before = await postForm(`${server.url}/connect/token`, passwordGrant, auth)
    t.equal(before.status, 200, 'a refresh token is issued while Redis answers')
    const refreshToken = before.json.refresh_token as string
    redis!.kill('SIGSTOP')
    try {
      const started = Date.now()
      const burst = await Promise.all(Array.from({ length: 20 }, () => postForm(`${server.url}/connect/token`, passwordGrant, auth)))
      const elapsed = Date.now() - started
      t.ok(burst.every((r) => r.status === 503 && r.json.error === 'temporarily_unavailable'), 'every request of a burst of 20 answers 503 temporarily_unavailable')
      // commandTimeoutMs is 1000 in this config: the watchdog fails a call by about 1.1 s.
      t.ok(elapsed < 3000, `answered within the command timeout, not after a pile-up (${elapsed} ms)`)
      t.equal((await fetch(`${server.url}/readyz`)).status, 503, 'readyz 503 while Redis hangs')
      t.equal((await fetch(`${server.url}/healthz`)).status, 200, 'healthz 200')
    } finally {
      redis!.kill('SIGCONT')
    }
    let ready = 0
    for (let i = 0; i < 50 && ready !== 200; i++) {
      ready = (await fetch(`${server.url}/readyz`)).status
      if (ready !== 200) await new Promise((r) => setTimeout(r, 100))
    }
    t.equal(ready, 200, 'readyz recovers once Redis answers again')
    const after = await postForm(`${server.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: refreshToken }, auth)
    t.equal(after.status, 200, 'the refresh token issued before the hang still rotates')
    t.equal(server.proc.exitCode, null, 'the process stayed up')
    t.notMatch(server.output(), /unhandled|UnhandledPromiseRejection|server_error/i, 'no unhandled rejection, no server_error')
  })

  // Last: it stops the server. SPEC §2: SIGTERM finishes in-flight requests, then closes Redis.
  t.test('SIGTERM while a request waits on Redis: the request completes, then the process exits 0', async (t) => {
    const pause = spawn('redis-cli', ['-p', String(port), 'CLIENT', 'PAUSE', '600', 'ALL'], { stdio: 'ignore' })
    await new Promise((r) => pause.once('exit', r))
    const inFlight = postForm(`${server.url}/connect/token`, passwordGrant, auth)
    await new Promise((r) => setTimeout(r, 150))
    const exited = server.stop('SIGTERM')
    const res = await inFlight
    t.equal(res.status, 200, 'the request that was waiting on Redis is answered')
    t.ok(res.json.refresh_token, 'with the refresh token it stored')
    t.equal(await exited, 0, 'then the process exits 0')
    t.notMatch(server.output(), /unhandled|UnhandledPromiseRejection|server_error/i, 'without an unhandled rejection')
  })
}
