/**
 * The CLI itself (SPEC §2): `grantd check` prints what it loaded or fails with one
 * line; `grantd start` on a bad config exits non-zero with one line; a good start logs
 * JSON lines and prints a curl hint that works.
 */
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { CLI, ROOT, startCli } from '../helpers/server.js'

const run = promisify(execFile)
const FIXTURES = join(ROOT, 'test', 'fixtures', 'core')
const tmp = mkdtempSync(join(tmpdir(), 'grantd-cli-'))
t.teardown(() => rmSync(tmp, { recursive: true, force: true }))

async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    // From another folder: relative paths resolve against the config file, not the cwd.
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { cwd: tmpdir(), encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

function oneLine(t: Test, res: { code: number; stdout: string; stderr: string }, pattern: RegExp, what: string): void {
  t.not(res.code, 0, `${what}: non-zero exit`)
  t.equal(res.stdout, '', `${what}: nothing on stdout`)
  t.equal(res.stderr.split('\n').length, 2, `${what}: exactly one line on stderr: ${JSON.stringify(res.stderr)}`)
  t.match(res.stderr, pattern, what)
  t.notMatch(res.stderr, /\n\s+at /, `${what}: no stack trace`)
}

t.test('grantd check and grantd start fail with one line on a bad config', async (t) => {
  const unknownKey = join(tmp, 'unknown-key.json')
  writeFileSync(unknownKey, JSON.stringify({ isuer: 'http://x' }))
  const [badPath, redirects, unknown, noConfig, missingFile, badOptions, badPort] = await Promise.all([
    cli(['check', '--config', join(FIXTURES, 'bad-plugin-path.json')]),
    cli(['start', '--config', join(FIXTURES, 'bad-redirect-uris.json'), '--port', '0']),
    cli(['check', '--config', unknownKey]),
    cli(['check'], { GRANTD_CONFIG: '' }),
    cli(['check', '--config', join(tmp, 'nope.json')]),
    cli(['check'], { GRANTD_CONFIG: writeConfig('bad-options.json', { plugins: [{ use: join(FIXTURES, 'strict-options.mjs'), options: { ttl: 'long' } }] }) }),
    cli(['start', '--config', join(FIXTURES, 'good.json'), '--port', 'eighty']),
  ])
  oneLine(t, badPath, /^grantd: plugins\[1\]: cannot load "\.\/no-such-plugin\.mjs" \(.+\)\n$/, 'check, missing plugin file')
  oneLine(t, redirects, /^grantd: clients\[1\]\.redirect_uris: expected array, got string\n$/, 'start, wrong type')
  oneLine(t, unknown, /^grantd: isuer: unknown key\n$/, 'check, unknown key')
  oneLine(t, noConfig, /^grantd: no config: pass --config FILE or set GRANTD_CONFIG\n$/, 'no config')
  oneLine(t, missingFile, /^grantd: .*nope\.json: cannot read \(ENOENT\)\n$/, 'missing config file')
  oneLine(t, badPort, /^grantd: --port: expected a port number, got "eighty"\n$/, 'start, bad --port')
  oneLine(t, badOptions, /^grantd: plugins\[0\]\.options: ttl: expected number, got string\n$/, 'bad plugin options via GRANTD_CONFIG')
})

function writeConfig(name: string, config: unknown): string {
  const file = join(tmp, name)
  writeFileSync(file, JSON.stringify(config))
  return file
}

t.test('grantd check on a good config prints what it loaded', async (t) => {
  const res = await cli(['check', '--config', join(FIXTURES, 'good.json')])
  t.equal(res.code, 0, res.stderr)
  t.equal(res.stderr, '')
  t.match(res.stdout, /^config ok: .*test\/fixtures\/core\/good\.json$/m)
  t.match(res.stdout, /^issuer: http:\/\/127\.0\.0\.1:4000$/m)
  t.match(res.stdout, /^keys: ephemeral ES256 and RS256 \(no keys\.file\); signing ES256 kid=\S+$/m)
  t.match(res.stdout, /^plugin store-memory \(@grantd\/store-memory\)/m)
  t.match(res.stdout, /^plugin grant-client-credentials \(@grantd\/grant-client-credentials\) — grants: client_credentials$/m)
  t.match(res.stdout, /^plugin test-slow-route \(\.\/slow-route\.mjs\) — routes: GET \/test\/slow$/m)
  t.match(res.stdout, /^clients: svc$/m)
  t.notMatch(res.stdout, /svc-secret/, 'check never prints a secret')
})

t.test('grantd start: JSON log lines, --port, and a curl hint that works', async (t) => {
  const file = writeConfig('start.json', {
    log: { level: 'info' },
    plugins: ['@grantd/grant-client-credentials'],
    clients: [
      // Neither of the first two can be used with `curl -u id:secret`.
      { client_id: 'poster', client_secret: 'poster-secret', token_endpoint_auth_method: 'client_secret_post', grant_types: ['client_credentials'], scope: 'api' },
      { client_id: 'odd', client_secret: 'a:b+c', grant_types: ['client_credentials'], scope: 'api' },
      { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api:read api' },
    ],
  })
  const child = await startCli(file)
  t.teardown(() => child.stop('SIGKILL'))
  const hint = /try: curl -s -u (\S+):(\S+) -d grant_type=client_credentials -d scope=(\S+) (\S+)\n/.exec(child.output())
  t.ok(hint, `prints a curl hint: ${child.output()}`)
  t.equal(hint?.[1], 'svc', 'the hint names a client_secret_basic client with a plain secret')
  t.equal(hint?.[2], '<client_secret>', 'not the quickstart: the secret is a placeholder (SPEC §13)')
  t.notMatch(child.output(), /svc-secret/, 'no line holds the secret')
  t.equal(hint?.[4], `${child.url}/connect/token`)
  // Do what the hint says (curl -u is plain Basic), with the operator's secret in place of the placeholder.
  const res = await fetch(hint![4]!, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${hint![1]}:svc-secret`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: `grant_type=client_credentials&scope=${hint![3]}`,
  })
  t.equal(res.status, 200)
  t.equal(await child.stop(), 0)
  const stdout = child.output().split('\n').filter((l) => l.startsWith('{'))
  t.ok(stdout.length >= 3, 'listening, request and shutdown lines')
  const request = stdout.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'request' && l.path === '/connect/token')
  t.match(request, { level: 30, name: 'grantd', method: 'POST', status: 200, client_id: 'svc', ms: Number, ip: String, time: String })
})
