/** `grantd new plugin NAME`: the skeleton builds, its own test passes, and grantd loads it. */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI, ROOT } from '../helpers/server.js'

function run(args: string[], cwd: string) {
  return spawnSync(process.execPath, args, { cwd, encoding: 'utf8', timeout: 60_000 })
}

t.test('the scaffold is a package whose test passes against a real server', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'grantd-new-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))

  const made = run([CLI, 'new', 'plugin', '@acme/grant-ticket', '--dir', dir], ROOT)
  t.equal(made.status, 0, made.stderr)
  const folder = join(dir, 'grant-ticket')
  t.match(made.stdout, `wrote 8 files to ${folder}`)
  const pkg = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as { name: string; main: string; peerDependencies: Record<string, string>; devDependencies: Record<string, string> }
  t.equal(pkg.name, '@acme/grant-ticket')
  t.ok(pkg.peerDependencies['@grantd/core'], '@grantd/core is a peer: the server\'s copy is used')
  t.equal(pkg.devDependencies['@grantd/core'], `file:${realpathSync(join(ROOT, 'core'))}`, 'tests run against this checkout\'s core, never a registry copy')
  t.equal(pkg.main, './dist/index.js', 'the layout docs/plugins.md describes')

  // A real `npm install`: @grantd/core is linked; typescript and @types/node come from npm's cache when it has them.
  const installed = spawnSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: folder, encoding: 'utf8', timeout: 180_000 })
  t.equal(installed.status, 0, installed.stdout + installed.stderr)
  t.equal(realpathSync(join(folder, 'node_modules', '@grantd', 'core')), realpathSync(join(ROOT, 'core')))

  const tested = spawnSync('npm', ['test'], { cwd: folder, encoding: 'utf8', timeout: 180_000 })
  t.equal(tested.status, 0, tested.stdout + tested.stderr)
  t.match(tested.stdout, /# pass 2/)
  t.match(tested.stdout, /# fail 0/)
  t.ok(existsSync(join(folder, 'dist', 'index.js')))
  t.notOk(existsSync(join(folder, 'dist', 'test')), 'tests are not in what the package publishes')

  const checked = run([CLI, 'check', '--config', 'grantd.json', '--offline'], folder)
  t.equal(checked.status, 0, checked.stderr)
  t.match(checked.stdout, /^plugin grant-ticket \(\.\/dist\/index\.js\) — grants: urn:example:grant-type:grant-ticket$/m)
  t.match(checked.stdout, /^plugin users-static \(@grantd\/users-static\)$/m, 'the config has the users its tickets stand for')
})

t.test('the scaffold refuses bad names and non-empty folders', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'grantd-new-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const bad = run([CLI, 'new', 'plugin', 'Not A Name', '--dir', dir], ROOT)
  t.equal(bad.status, 1)
  t.match(bad.stderr, /^grantd: "Not A Name" is not an npm package name/)

  t.equal(run([CLI, 'new', 'plugin', 'grant-x', '--dir', dir], ROOT).status, 0)
  const again = run([CLI, 'new', 'plugin', 'grant-x', '--dir', dir], ROOT)
  t.equal(again.status, 1)
  t.match(again.stderr, /exists and is not empty; refusing to overwrite/)

  const noName = run([CLI, 'new', 'plugin'], ROOT)
  t.equal(noName.status, 2)
})
