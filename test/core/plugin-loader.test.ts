/**
 * Issue 2 boot checks: plugins resolve by package name or by a path relative to the
 * config file; two plugins claiming one grant_type and a missing dependency are start
 * errors; a plugin's failure at request time is a bare server_error.
 */
import t from 'tap'
import { join } from 'node:path'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basic, postForm, ROOT, startServer } from '../helpers/server.js'

const FIXTURES = join(ROOT, 'test', 'fixtures', 'core')

t.test('two plugins claiming one grant_type → start error naming both', async (t) => {
  await t.rejects(startServer({ plugins: ['@grantd/grant-client-credentials', './claims-client-credentials.mjs'] }, { baseDir: FIXTURES }), {
    name: 'ConfigError',
    message: 'plugins[1] (test-second-client-credentials): grant_type "client_credentials" is already registered by grant-client-credentials',
  })
})

t.test('a missing plugin dependency → start error', async (t) => {
  await t.rejects(startServer({ plugins: ['./echo-grant.mjs', './needs-missing-dependency.mjs'] }, { baseDir: FIXTURES }), {
    name: 'ConfigError',
    message: 'plugins[1] (test-needs-vault): needs plugin "test-vault", which is not loaded',
  })
})

t.test('relative plugin paths resolve against the config folder; packages by name', async (t) => {
  const srv = await startServer({
    issuer: 'http://issuer.test',
    plugins: ['@grantd/grant-client-credentials', './echo-grant.mjs', { use: join(FIXTURES, 'slow-route.mjs') }],
    clients: [{ client_id: 'echo', client_secret: 'e', grant_types: ['urn:grantd:test:echo'], scope: 'a b' }],
  }, { baseDir: FIXTURES })
  t.teardown(srv.close)
  t.same(srv.server.registry.loaded.map((p) => p.name), ['store-memory', 'grant-client-credentials', 'test-echo-grant', 'test-slow-route'])
  const res = await postForm(`${srv.url}/connect/token`, { grant_type: 'urn:grantd:test:echo', scope: 'b' }, { authorization: basic('echo', 'e') })
  t.equal(res.status, 200)
  t.equal(res.json.scope, 'b')
  const slow = await fetch(`${srv.url}/test/slow?ms=1`)
  t.same(await slow.json(), { done: true, ms: 1 })
  // The same relative path from another folder does not exist.
  await t.rejects(startServer({ plugins: ['./echo-grant.mjs'] }, { baseDir: tmpdir() }), { message: /^plugins\[0\]: cannot load "\.\/echo-grant\.mjs"/ })
})

t.test('a plugin that throws or returns nothing grants nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'grantd-plugin-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'faulty.mjs'), `export default { name: 'faulty', register(host) {
    host.grant({ type: 'urn:test:crash', async handle() { throw new Error('db password is hunter2 at /srv/app.js:12') } })
    host.grant({ type: 'urn:test:nothing', async handle() { return undefined } })
    host.grant({ type: 'urn:test:widen', async handle() { return { scope: ['admin'] } } })
    host.grant({ type: 'urn:test:bad-scope', async handle() { return { scope: 'api' } } })
  } }\n`)
  const srv = await startServer({
    issuer: 'http://issuer.test',
    plugins: ['./faulty.mjs'],
    clients: [{ client_id: 'c', client_secret: 's', grant_types: ['urn:test:crash', 'urn:test:nothing', 'urn:test:widen', 'urn:test:bad-scope'], scope: 'api' }],
  }, { baseDir: dir })
  t.teardown(srv.close)
  const call = (type: string) => postForm(`${srv.url}/connect/token`, { grant_type: type, scope: 'api' }, { authorization: basic('c', 's') })
  const crash = await call('urn:test:crash')
  t.equal(crash.status, 500)
  t.same(crash.json, { error: 'server_error', error_description: 'internal error' }, 'no detail of the plugin error reaches the client')
  t.equal(crash.headers.get('cache-control'), 'no-store')
  t.ok(srv.log.lines.some((l) => l.includes('"level":"error"') && l.includes('unhandled error')), 'the plugin error is logged')
  const nothing = await call('urn:test:nothing')
  t.equal(nothing.status, 400)
  t.equal(nothing.json.error, 'invalid_grant', 'a result starts as a failure')
  const widen = await call('urn:test:widen')
  t.equal(widen.json.error, 'invalid_scope', 'a plugin cannot grant scope the client is not registered for')
  const badScope = await call('urn:test:bad-scope')
  t.equal(badScope.status, 400, 'a malformed scope from a plugin is refused, not signed')
  t.equal(badScope.json.error, 'invalid_scope')
})
