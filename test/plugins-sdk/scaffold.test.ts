/** `grantd new plugin NAME`: the skeleton builds, its own test passes, and grantd loads it. */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
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
  t.match(made.stdout, `wrote 7 files to ${folder}`)
  const pkg = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as { name: string; peerDependencies: Record<string, string> }
  t.equal(pkg.name, '@acme/grant-ticket')
  t.ok(pkg.peerDependencies['@grantd/core'], '@grantd/core is a peer: the server\'s copy is used')

  // Stand-in for `npm install`: link what the package's devDependencies name to this checkout.
  mkdirSync(join(folder, 'node_modules', '@grantd'), { recursive: true })
  mkdirSync(join(folder, 'node_modules', '@types'), { recursive: true })
  symlinkSync(join(ROOT, 'core'), join(folder, 'node_modules', '@grantd', 'core'))
  symlinkSync(join(ROOT, 'adapters', 'store-memory'), join(folder, 'node_modules', '@grantd', 'store-memory'))
  symlinkSync(join(ROOT, 'node_modules', 'typescript'), join(folder, 'node_modules', 'typescript'))
  symlinkSync(join(ROOT, 'node_modules', '@types', 'node'), join(folder, 'node_modules', '@types', 'node'))

  const built = run([join(folder, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], folder)
  t.equal(built.status, 0, built.stdout + built.stderr)
  t.ok(existsSync(join(folder, 'dist', 'src', 'index.js')))

  const tested = run(['--test', 'dist/test/plugin.test.js'], folder)
  t.equal(tested.status, 0, tested.stdout + tested.stderr)
  t.match(tested.stdout, /# pass 2/)
  t.match(tested.stdout, /# fail 0/)

  const checked = run([CLI, 'check', '--config', 'grantd.json'], folder)
  t.equal(checked.status, 0, checked.stderr)
  t.match(checked.stdout, /^plugin grant-ticket \(\.\/dist\/src\/index\.js\) — grants: urn:example:grant-type:grant-ticket$/m)
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
