/** `grantd check --config FILE` on the example configs that load plugins by relative path. */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI, ROOT } from '../helpers/server.js'

function check(configFile: string) {
  // Run from another folder: relative plugin paths resolve against the config file, not the cwd.
  return spawnSync(process.execPath, [CLI, 'check', '--config', configFile], { cwd: tmpdir(), encoding: 'utf8', timeout: 30_000 })
}

t.test('grantd check lists the token-exchange plugin loaded from examples/token-exchange.json', async (t) => {
  const res = check(join(ROOT, 'examples', 'token-exchange.json'))
  t.equal(res.status, 0, res.stderr)
  t.match(res.stdout, /^config ok: .*examples\/token-exchange\.json$/m)
  t.match(res.stdout, /^plugin token-exchange \(\.\/token-exchange\/dist\/index\.js\) — grants: urn:ietf:params:oauth:grant-type:token-exchange$/m)
  t.match(res.stdout, /^plugin grant-password \(@grantd\/grant-password\) — grants: password$/m)
  t.match(res.stdout, /^clients: app, gateway, svc$/m)
})

t.test('grantd check lists the minimal custom grant', async (t) => {
  const res = check(join(ROOT, 'examples', 'custom-grant-minimal.json'))
  t.equal(res.status, 0, res.stderr)
  t.match(res.stdout, /^plugin grant-api-key \(\.\/custom-grant-minimal\/dist\/index\.js\) — grants: urn:example:grant-type:api-key$/m)
})

t.test('grantd check fails on one line when a plugin rejects its options', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'grantd-check-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'bad.json')
  writeFileSync(file, JSON.stringify({
    plugins: [{ use: join(ROOT, 'examples', 'token-exchange', 'dist', 'index.js'), options: { subjectTokens: 'everyone' } }],
  }))
  const res = check(file)
  t.equal(res.status, 1)
  t.equal(res.stdout, '')
  t.equal(res.stderr, 'grantd: plugins[0].options: subjectTokens: expected "caller" or "any"\n')
})
