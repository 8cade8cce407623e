/**
 * A user's own folder outside grantd's tree: a config file and a plugin next to it that
 * imports `@grantd/core` without any node_modules of its own. The plugin is found by a
 * path relative to the config, `@grantd/*` imports and package names fall back to
 * grantd's install, and the plugin's errors mean what docs/plugins.md says they mean.
 */
import t, { type Test } from 'tap'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT, basic, postForm, startCli, startServer } from '../helpers/server.js'

function userFolder(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'grantd-user-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  if (dir.startsWith(ROOT)) throw new Error('the user folder must be outside the repo')
  return dir
}

/** A grant that exercises every way a handler can answer. */
const PLUGIN = `import { definePlugin, OAuthError } from '@grantd/core'

export default definePlugin({
  name: 'outside',
  register(host) {
    host.grant({
      type: 'urn:example:outside',
      parameters: ['mode'],
      required: ['mode'],
      async handle({ params, requestedScope }) {
        if (params.mode === 'refuse') throw new OAuthError('invalid_grant', 'refused on purpose')
        if (params.mode === 'crash') throw new Error('secret internal detail')
        if (params.mode === 'nothing') return undefined
        return { subject: 'u-outside', scope: requestedScope ?? [], claims: { via: host.options.via } }
      },
    })
    host.route('get', '/outside/hello', (ctx) => { ctx.body = { hello: host.name } })
  },
})
`

const CONFIG = {
  issuer: 'http://127.0.0.1:4000',
  plugins: [
    '@grantd/grant-client-credentials',
    { use: './plugins/outside.mjs', options: { via: 'a user folder' } },
  ],
  clients: [
    { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials', 'urn:example:outside'], scope: 'api' },
  ],
}

function writeUserFolder(dir: string): string {
  mkdirSync(join(dir, 'plugins'))
  writeFileSync(join(dir, 'plugins', 'outside.mjs'), PLUGIN)
  const file = join(dir, 'grantd.json')
  writeFileSync(file, JSON.stringify(CONFIG, null, 2))
  return file
}

async function exercise(t: Test, url: string): Promise<void> {
  const post = (form: Record<string, string>) => postForm(`${url}/connect/token`, form, { authorization: basic('svc', 'svc-secret') })
  const ok = await post({ grant_type: 'urn:example:outside', mode: 'grant', scope: 'api' })
  t.equal(ok.status, 200, ok.status === 200 ? 'granted' : ok.text)
  const payload = JSON.parse(Buffer.from((ok.json.access_token as string).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
  t.equal(payload.sub, 'u-outside')
  t.equal(payload.via, 'a user folder', 'options reached the plugin')

  const refused = await post({ grant_type: 'urn:example:outside', mode: 'refuse' })
  t.equal(refused.status, 400)
  t.same(refused.json, { error: 'invalid_grant', error_description: 'refused on purpose' }, 'OAuthError from the plugin is answered as is')

  const crashed = await post({ grant_type: 'urn:example:outside', mode: 'crash' })
  t.equal(crashed.status, 500)
  t.equal(crashed.json.error, 'server_error')
  t.notMatch(crashed.text, /secret internal detail/, 'no detail of other errors')

  const nothing = await post({ grant_type: 'urn:example:outside', mode: 'nothing' })
  t.equal(nothing.json.error, 'invalid_grant', 'returning nothing grants nothing')

  const missing = await post({ grant_type: 'urn:example:outside' })
  t.equal(missing.json.error, 'invalid_request', 'required parameter')

  const route = await fetch(`${url}/outside/hello`)
  t.same(await route.json(), { hello: 'outside' })

  const cc = await post({ grant_type: 'client_credentials', scope: 'api' })
  t.equal(cc.status, 200, '@grantd/* package names resolve from grantd\'s install')
}

t.test('through the CLI: grantd start --config in a user folder', async (t) => {
  const file = writeUserFolder(userFolder(t))
  const child = await startCli(file)
  t.teardown(() => child.stop())
  await exercise(t, child.url)
  t.match(child.output(), /"msg":"request"/, 'the CLI logs requests')
})

t.test('in process: createServer with the folder as baseDir', async (t) => {
  const dir = userFolder(t)
  writeUserFolder(dir)
  const srv = await startServer(CONFIG, { baseDir: dir })
  t.teardown(srv.close)
  await exercise(t, srv.url)
  t.ok(srv.log.lines.some((l) => l.includes('secret internal detail') && l.includes('"level":"error"')), 'the hidden error is logged for the operator')
})

t.test('a plugin that brings its own copy of the SDK still throws OAuth errors the server recognises', async (t) => {
  const dir = userFolder(t)
  writeUserFolder(dir)
  // A minimal separate copy of @grantd/core in the user's folder (as `npm i -D @grantd/core` would give).
  const own = join(dir, 'node_modules', '@grantd', 'core')
  mkdirSync(own, { recursive: true })
  copyFileSync(join(ROOT, 'core', 'dist', 'errors.js'), join(own, 'errors.js'))
  writeFileSync(join(own, 'package.json'), JSON.stringify({ name: '@grantd/core', type: 'module', exports: './index.js' }))
  writeFileSync(join(own, 'index.js'), "export { OAuthError } from './errors.js'\nexport function definePlugin(d) { return d }\n")
  const srv = await startServer(CONFIG, { baseDir: dir })
  t.teardown(srv.close)
  const res = await postForm(`${srv.url}/connect/token`, { grant_type: 'urn:example:outside', mode: 'refuse' }, { authorization: basic('svc', 'svc-secret') })
  t.equal(res.status, 400)
  t.same(res.json, { error: 'invalid_grant', error_description: 'refused on purpose' })
})

t.test('a plugin path that does not exist is a one-line start error naming the config key', async (t) => {
  const dir = userFolder(t)
  await t.rejects(startServer({ ...CONFIG, plugins: ['./plugins/missing.mjs'], clients: [] }, { baseDir: dir }), { message: /^plugins\[0\]: cannot load "\.\/plugins\/missing\.mjs"/ })
})
