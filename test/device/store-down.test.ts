/**
 * The device flow while its store is unreachable (SPEC §5: 503 temporarily_unavailable,
 * never a 500): the endpoint and the poll answer JSON, the pages answer an HTML page.
 */
import t from 'tap'
import { hasRedisServerBinary, spawnRedis } from '../helpers/redis.js'
import { postForm } from '../helpers/server.js'
import { CookieJar, deviceConfig, DEVICE_GRANT, get, loginForm, post, startDeviceServer } from './flow.js'

if (!hasRedisServerBinary()) {
  if (process.env.CI === 'true') throw new Error('NO redis-server on PATH')
  process.stderr.write('\n!!!!! NO redis-server on PATH — the device store-down test is SKIPPED !!!!!\n\n')
  t.pass('skipped: no redis-server')
} else {
  t.test('store down: 503 at the endpoint, the poll and the page', async (t) => {
    const redis = await spawnRedis()
    let stopped: Promise<void> | undefined
    const stopRedis = () => (stopped ??= redis.stop())
    t.teardown(stopRedis)
    const srv = await startDeviceServer(deviceConfig({ store: { use: '@grantd/store-redis', options: { url: redis.url, prefix: 'device-down:', commandTimeoutMs: 500, connectTimeoutMs: 500 } } }))
    t.teardown(() => srv.close())
    const started = await postForm(`${srv.url}/connect/deviceauthorization`, { client_id: 'tv', scope: 'openid' })
    t.equal(started.status, 200)
    const jar = new CookieJar()
    const form = loginForm((await get(`${srv.url}/device`, jar)).body)

    await stopRedis()

    const endpoint = await postForm(`${srv.url}/connect/deviceauthorization`, { client_id: 'tv', scope: 'openid' })
    t.equal(endpoint.status, 503)
    t.equal(endpoint.json.error, 'temporarily_unavailable')
    const poll = await postForm(`${srv.url}/connect/token`, { grant_type: DEVICE_GRANT, device_code: started.json.device_code as string, client_id: 'tv' })
    t.equal(poll.status, 503)
    t.equal(poll.json.error, 'temporarily_unavailable')
    const page = await post(form.action, { ...form.fields, user_code: started.json.user_code as string }, jar)
    t.equal(page.status, 503)
    t.match(page.headers.get('content-type') ?? '', /text\/html/, 'the page answers with a page')
    t.match(page.body, /temporarily unavailable/)
  })
}
