import t from 'tap'
import { startServer } from '../helpers/server.js'

/** @grantd/acr-idp boot checks: a typo in a provider is a one-line start error naming the key path. */

const provider = { issuer: 'http://127.0.0.1:1', client_id: 'grantd', client_secret: 's3cret' }

function withIdp(options: unknown, plugins: unknown[] = ['@grantd/grant-authorization-code']): Record<string, unknown> {
  return { plugins: [...plugins, { use: '@grantd/acr-idp', options }] }
}

t.test('provider option errors name the key path', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ providers: [] }, /^plugins\[1\]\.options: providers: expected object, got array$/],
    [{ provider: {} }, /^plugins\[1\]\.options: provider: unknown key$/],
    [{ providers: { upstream: { ...provider, issuer: 'not a url' } } }, /^plugins\[1\]\.options: providers\.upstream\.issuer: expected an absolute URL$/],
    [{ providers: { upstream: { ...provider, issuer: 'ftp://x' } } }, /providers\.upstream\.issuer: expected an http or https URL/],
    [{ providers: { upstream: { ...provider, client_id: undefined } } }, /providers\.upstream\.client_id: expected string, got undefined/],
    [{ providers: { upstream: { ...provider, client_secret: 42 } } }, /providers\.upstream\.client_secret: expected string, got number/],
    [{ providers: { upstream: { ...provider, scope: 'profile email' } } }, /providers\.upstream\.scope: must include openid/],
    [{ providers: { upstream: { ...provider, autoProvision: 'yes' } } }, /providers\.upstream\.autoProvision: expected boolean, got string/],
    [{ providers: { upstream: { ...provider, clientSecret: 'x' } } }, /providers\.upstream\.clientSecret: unknown key/],
    [{ providers: { 'bad name': provider } }, /providers\.bad name: provider names are/],
    [{ providers: {}, maxStartsPerAddress: 0 }, /maxStartsPerAddress: must be between 1 and 1000000/],
    [{ providers: {}, maxStartsPerAddress: '5' }, /maxStartsPerAddress: expected integer, got string/],
  ]
  for (const [options, expected] of cases) {
    await t.rejects(startServer(withIdp(options)), { name: 'ConfigError', message: expected }, JSON.stringify(options))
  }
})

t.test('acr-idp needs the authorization endpoint plugin', async (t) => {
  await t.rejects(startServer(withIdp({ providers: { upstream: provider } }, [])), { name: 'ConfigError', message: /acr-idp.*needs plugin "grant-authorization-code"/ })
})

t.test('a valid configuration loads, registers the idp prefix and the callback route', async (t) => {
  const srv = await startServer({
    ...withIdp({ providers: { upstream: provider } }),
    clients: [{ client_id: 'svc', client_secret: 'svc-secret', identity_providers: ['upstream', 'nowhere'] }],
  })
  t.teardown(srv.close)
  const meta = (await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>
  t.ok((meta.acr_values_supported as string[]).includes('idp:*'))
  const info = srv.server.registry.loaded.find((p) => p.name === 'acr-idp')!
  t.ok(info.routes.includes('GET /connect/external/:name/callback'))
  t.match(srv.log.lines.join('\n'), /"idp":"nowhere".*does not configure/, 'a client naming an unconfigured provider is reported at boot')
})

t.test('the browser routes answer HTML, never JSON or a 500', async (t) => {
  const srv = await startServer(withIdp({ providers: { upstream: provider } }))
  t.teardown(srv.close)
  const cases: Array<[string, number]> = [
    ['/connect/external/nowhere/callback?state=x&code=y', 404],
    ['/connect/external/upstream/callback?code=y', 400],
    ['/connect/external/upstream/callback?state=unknown&code=y', 400],
    ['/connect/external/upstream/callback?state=a&state=b', 400],
    ['/connect/external/upstream/start', 400],
  ]
  for (const [path, status] of cases) {
    const res = await fetch(`${srv.url}${path}`, { redirect: 'manual' })
    t.equal(res.status, status, path)
    t.match(res.headers.get('content-type'), /^text\/html/, path)
    t.equal(res.headers.get('cache-control'), 'no-store', path)
    const body = await res.text()
    t.match(body, /<h1>/, path)
    t.notMatch(body, /at .*\.(ts|js):\d+/, `${path}: no stack trace`)
  }
})
