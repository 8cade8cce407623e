/**
 * SPEC §13 packaging: every published workspace packs with `npm pack`; the tarballs
 * install into an empty folder (third-party dependencies from npm's cache where it has
 * them), `npx grantd start --config my.json` works there, and `grantd new plugin` run
 * from that install scaffolds a package that builds and passes its own test against
 * that install's @grantd/core (a file: link, no registry look-up for @grantd/*).
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { basic, freePort, postForm, ROOT } from '../helpers/server.js'

t.setTimeout(600_000)
const dir = mkdtempSync(join(tmpdir(), 'grantd-pack-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const NPX = process.platform === 'win32' ? 'npx.cmd' : 'npx'

function run(cmd: string, args: string[], cwd: string, timeout = 180_000) {
  const res = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } })
  return { status: res.status, out: `${res.stdout ?? ''}${res.stderr ?? ''}` }
}

/** The workspaces that publish (bench is private). */
function publishedWorkspaces(): Array<{ dir: string; name: string; main: string }> {
  const out: Array<{ dir: string; name: string; main: string }> = []
  for (const parent of ['core', 'plugins', 'adapters']) {
    const dirs = parent === 'core' ? [join(ROOT, 'core')] : readdirSync(join(ROOT, parent)).map((d) => join(ROOT, parent, d))
    for (const d of dirs) {
      if (!existsSync(join(d, 'package.json'))) continue
      const pkg = JSON.parse(readFileSync(join(d, 'package.json'), 'utf8')) as { name: string; private?: boolean; main: string }
      if (!pkg.private) out.push({ dir: d, name: pkg.name, main: pkg.main })
    }
  }
  return out
}

const workspaces = publishedWorkspaces()
const tarballs = join(dir, 'tarballs')
const app = join(dir, 'app')

t.test('every published workspace packs and the tarballs install into an empty folder', async (t) => {
  mkdirSync(tarballs)
  const packed = run(NPM, ['pack', '--json', '--pack-destination', tarballs, ...workspaces.flatMap((w) => ['-w', w.dir])], ROOT)
  t.equal(packed.status, 0, packed.out)
  const files = readdirSync(tarballs).filter((f) => f.endsWith('.tgz'))
  t.equal(files.length, workspaces.length, `one tarball per workspace (${workspaces.map((w) => w.name).join(', ')})`)

  mkdirSync(app)
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'my-grantd', private: true }))
  // --prefer-offline: koa, jose, ioredis… come from npm's cache when it has them.
  const installed = run(NPM, ['install', '--prefer-offline', ...files.map((f) => join(tarballs, f))], app)
  t.equal(installed.status, 0, installed.out)
  for (const w of workspaces) {
    const folder = join(app, 'node_modules', ...w.name.split('/'))
    t.ok(existsSync(join(folder, w.main)), `${w.name}: ${w.main} is in the tarball`)
    t.notOk(realpathSync(folder).startsWith(ROOT), `${w.name} is a copy, not a link into the repo`)
  }
  // Each package loads by name from the install, with its dependencies.
  const imported = run(process.execPath, ['--input-type=module', '-e',
    `for (const n of ${JSON.stringify(workspaces.map((w) => w.name))}) { const m = await import(n); if (!m) throw new Error(n) }`], app)
  t.equal(imported.status, 0, imported.out)
})

t.test('npx grantd start --config my.json runs from the install', async (t) => {
  if (!existsSync(join(app, 'node_modules', '.bin', 'grantd'))) { t.fail('not installed'); return }
  writeFileSync(join(app, 'my.json'), JSON.stringify({
    users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-alice', username: 'alice', password: 'wonderland' }] } },
    plugins: ['@grantd/grant-client-credentials', '@grantd/grant-password'],
    clients: [
      { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' },
      { client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password'], scope: 'api' },
    ],
  }))
  const checked = run(NPX, ['--no-install', 'grantd', 'check', '--config', 'my.json'], app)
  t.equal(checked.status, 0, checked.out)
  t.match(checked.out, /^plugin grant-password \(@grantd\/grant-password\) — grants: password$/m)

  const port = await freePort()
  // Its own process group: npm exec does not pass SIGTERM on to grantd (it exits 143 and leaves the
  // server running), so the test signals the group, as a terminal's Ctrl-C or `kill -- -PGID` does.
  const proc = spawn(NPX, ['--no-install', 'grantd', 'start', '--config', 'my.json', '--port', String(port)], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let out = ''
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString() })
  t.teardown(() => { try { process.kill(-proc.pid!, 'SIGKILL') } catch { /* gone */ } })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 20_000
  while (!(await fetch(`${url}/healthz`).then((r) => r.ok, () => false))) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`grantd did not start: ${out}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  const cc = await postForm(`${url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc', 'svc-secret') })
  t.equal(cc.status, 200, cc.text)
  const pw = await postForm(`${url}/connect/token`, { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'api' }, { authorization: basic('ro', 'ro-secret') })
  t.equal(pw.status, 200, pw.text)
  t.match(out, new RegExp(`^grantd listening on ${url}$`, 'm'))
  const closed = once(proc.stdout!, 'close')
  process.kill(-proc.pid!, 'SIGINT')
  await closed
  t.match(out, /"msg":"shutting down: draining requests"/)
  t.match(out, /"msg":"stopped"/, 'grantd drained and stopped')
  t.equal(await fetch(`${url}/healthz`).then(() => 'up', () => 'down'), 'down', 'nothing listens any more')
})

t.test('grantd new plugin from the install: the package builds and its test passes against that @grantd/core', async (t) => {
  if (!existsSync(join(app, 'node_modules', '.bin', 'grantd'))) { t.fail('not installed'); return }
  const made = run(NPX, ['--no-install', 'grantd', 'new', 'plugin', 'grant-ticket', '--dir', join(dir, 'plugins')], app)
  t.equal(made.status, 0, made.out)
  const folder = join(dir, 'plugins', 'grant-ticket')
  const pkg = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as { devDependencies: Record<string, string>; main: string }
  t.equal(pkg.devDependencies['@grantd/core'], `file:${realpathSync(join(app, 'node_modules', '@grantd', 'core'))}`, 'linked to the install it ran from')
  t.equal(pkg.main, './dist/index.js', 'the layout docs/plugins.md describes')
  const installed = run(NPM, ['install', '--prefer-offline'], folder)
  t.equal(installed.status, 0, installed.out)
  const tested = run(NPM, ['test'], folder)
  t.equal(tested.status, 0, tested.out)
  t.match(tested.out, /# pass 2/)
  t.match(tested.out, /# fail 0/)
  t.ok(existsSync(join(folder, 'dist', 'index.js')))
  const checked = run(NPX, ['--no-install', 'grantd', 'check', '--config', 'grantd.json'], folder)
  t.equal(checked.status, 0, checked.out)
  t.match(checked.out, /^plugin grant-ticket \(\.\/dist\/index\.js\) — grants: urn:example:grant-type:grant-ticket$/m)
})
