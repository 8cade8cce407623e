/**
 * The store unreachable (SPEC §12 spirit, §5 table): a push is 503 temporarily_unavailable as
 * JSON, a request_uri at the authorization endpoint is a 503 page; never a 500, never a redirect.
 */
import t from 'tap'
import { get, startFlowServer } from '../authorization-code/flow.js'
import { freePort } from '../helpers/server.js'
import { parAuthorizeUrl, parConfig, push, webRequest } from './fixtures.js'

t.test('Redis unreachable: PAR answers 503, the authorize page too', async (t) => {
  const deadPort = await freePort()
  const srv = await startFlowServer(parConfig({ extra: { store: { use: '@grantd/store-redis', options: { url: `redis://127.0.0.1:${deadPort}`, prefix: 'grantd-par-down:', connectTimeoutMs: 200, commandTimeoutMs: 200 } } } }))
  t.teardown(srv.close)
  const pushed = await push(srv, 'web', webRequest())
  t.equal(pushed.status, 503, pushed.text)
  t.equal(pushed.json.error, 'temporarily_unavailable')
  t.ok(pushed.headers.get('retry-after'))
  const page = await get(parAuthorizeUrl(srv, 'web', `urn:ietf:params:oauth:request_uri:${'A'.repeat(43)}`))
  t.equal(page.status, 503)
  t.notOk(page.location, 'no redirect')
  t.match(page.headers.get('content-type') ?? '', /text\/html/)
})
