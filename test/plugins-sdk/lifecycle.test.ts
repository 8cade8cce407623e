/**
 * The plugin lifecycle docs/plugins.md promises: options validated, register in config
 * order, boot checks (duplicates, dependencies) before listening, services shared between
 * plugins, close hooks in reverse order after requests drain.
 */
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { basic, postForm, startServer } from '../helpers/server.js'

/** Write `name.mjs` files (plugin module sources) into a fresh folder; returns it. */
function pluginFolder(t: Test, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'grantd-lifecycle-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const [name, source] of Object.entries(files)) writeFileSync(join(dir, `${name}.mjs`), source)
  return dir
}

const grantPlugin = (name: string, type: string) => `export default { name: '${name}', register(host) {
  host.grant({ type: '${type}', async handle(req) { return { scope: req.requestedScope ?? [] } } })
} }\n`

const NO_CLIENTS = { clients: [] }

t.test('boot checks stop the server with an error naming the config key', async (t) => {
  const dir = pluginFolder(t, {
    a: grantPlugin('a', 'urn:x:one'),
    b: grantPlugin('b', 'urn:x:one'),
    routeA: `export default { name: 'route-a', register(host) { host.route('get', '/x', () => {}) } }\n`,
    routeB: `export default { name: 'route-b', register(host) { host.route('get', '/x', () => {}) } }\n`,
    acrA: `export default { name: 'acr-a', register(host) { host.acr({ prefix: 'zone', parse: (v) => ({ zone: v }) }) } }\n`,
    acrB: `export default { name: 'acr-b', register(host) { host.acr({ prefix: 'zone', parse: (v) => ({ zone: v }) }) } }\n`,
    needy: `export default { name: 'needy', dependencies: ['provider'], register() {} }\n`,
    broken: `export default { name: 'broken', register() { throw new Error('cannot reach the vault') } }\n`,
    strict: `export default { name: 'strict', options(raw) { if (typeof raw.level !== 'number') throw new Error('level: expected a number'); return raw }, register() {} }\n`,
    notAPlugin: `export default { hello: 'world' }\n`,
  })
  const cases: Array<[unknown[], RegExp]> = [
    [['./a.mjs', './b.mjs'], /^plugins\[1\] \(b\): grant_type "urn:x:one" is already registered by a$/],
    [['./routeA.mjs', './routeB.mjs'], /^plugins\[1\] \(route-b\): route GET \/x is already registered by route-a$/],
    [['./acrA.mjs', './acrB.mjs'], /^plugins\[1\] \(acr-b\): acr prefix "zone" is already handled by acr-a$/],
    [['./needy.mjs'], /^plugins\[0\] \(needy\): needs plugin "provider", which is not loaded$/],
    [['./broken.mjs'], /^plugins\[0\] \(broken\): register failed \(cannot reach the vault\)$/],
    [[{ use: './strict.mjs', options: { level: 'high' } }], /^plugins\[0\]\.options: level: expected a number$/],
    [['./notAPlugin.mjs'], /^plugins\[0\]: "\.\/notAPlugin\.mjs" does not default-export a plugin/],
    [['./a.mjs', './a.mjs'], /^plugins\[1\]: plugin "a" is loaded twice$/],
  ]
  for (const [plugins, message] of cases) {
    await t.rejects(startServer({ ...NO_CLIENTS, plugins }, { baseDir: dir }), { name: 'ConfigError', message }, String(message))
  }
  // A client may only name grant types some plugin registered.
  await t.rejects(startServer({ plugins: ['./a.mjs'], clients: [{ client_id: 'c', client_secret: 's', grant_types: ['urn:x:two'] }] }, { baseDir: dir }),
    { message: /^clients\[0\]\.grant_types\[0\]: grant type "urn:x:two" is not loaded by any plugin$/ })
})

t.test('a plugin uses a service another plugin provides; close hooks run in reverse load order', async (t) => {
  const dir = pluginFolder(t, {
    provider: `export default { name: 'provider', register(host) {
      host.provide('greeter', { greet: (who) => 'hello ' + who })
      host.onClose(() => { globalThis.grantdCloseOrder.push('provider') })
    } }\n`,
    consumer: `export default { name: 'consumer', dependencies: ['provider'], register(host) {
      host.grant({ type: 'urn:x:greet', parameters: ['who'], required: ['who'], async handle(req) {
        const greeter = host.resolve('greeter')
        return { subject: 'u-1', scope: req.requestedScope ?? [], claims: { greeting: greeter.greet(req.params.who) } }
      } })
      host.onClose(async () => { await new Promise((r) => setTimeout(r, 10)); globalThis.grantdCloseOrder.push('consumer') })
    } }\n`,
  })
  const order: string[] = []
  ;(globalThis as { grantdCloseOrder?: string[] }).grantdCloseOrder = order
  const srv = await startServer({
    plugins: ['./provider.mjs', './consumer.mjs'],
    clients: [{ client_id: 'c', client_secret: 's', grant_types: ['urn:x:greet'], scope: 'api' }],
  }, { baseDir: dir })
  const res = await postForm(`${srv.url}/connect/token`, { grant_type: 'urn:x:greet', who: 'world', scope: 'api' }, { authorization: basic('c', 's') })
  t.equal(res.status, 200, res.status === 200 ? 'granted' : res.text)
  const payload = JSON.parse(Buffer.from((res.json.access_token as string).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
  t.equal(payload.greeting, 'hello world')
  t.same(srv.server.registry.loaded.map((p) => p.name), ['store-memory', 'provider', 'consumer'])
  await srv.close()
  t.same(order, ['consumer', 'provider'], 'dependents close before what they depend on')
})

t.test('a grant only sees the parameters it declared', async (t) => {
  const dir = pluginFolder(t, {
    echo: `export default { name: 'echo', register(host) {
      host.grant({ type: 'urn:x:echo', parameters: ['declared', 'client_secret'], async handle(req) {
        return { scope: req.requestedScope ?? [], claims: { seen: Object.keys(req.params).sort().join(',') } }
      } })
    } }\n`,
  })
  const srv = await startServer({ plugins: ['./echo.mjs'], clients: [{ client_id: 'c', client_secret: 's', grant_types: ['urn:x:echo'], scope: 'api' }] }, { baseDir: dir })
  t.teardown(srv.close)
  const res = await postForm(`${srv.url}/connect/token`, { grant_type: 'urn:x:echo', declared: '1', undeclared: '2', scope: 'api' }, { authorization: basic('c', 's') })
  t.equal(res.status, 200)
  const payload = JSON.parse(Buffer.from((res.json.access_token as string).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
  t.equal(payload.seen, 'declared', 'undeclared body parameters and client credentials never reach the grant')
  const twice = await postForm(`${srv.url}/connect/token`, 'grant_type=urn%3Ax%3Aecho&declared=1&declared=2&scope=api', { authorization: basic('c', 's') })
  t.equal(twice.json.error, 'invalid_request', 'a declared parameter given twice is refused')
})
