/** examples/device.json loads and its device flow answers (the issuer's URLs from the config). */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { basic, freePort, postForm, ROOT, startServer } from '../helpers/server.js'

t.test('examples/device.json: device authorization for the tv and cli clients', async (t) => {
  const config = JSON.parse(readFileSync(join(ROOT, 'examples', 'device.json'), 'utf8')) as Record<string, unknown>
  const port = await freePort()
  const srv = await startServer({ ...config, issuer: `http://127.0.0.1:${port}` }, { baseDir: join(ROOT, 'examples'), port })
  t.teardown(() => srv.close())
  const tv = await postForm(`${srv.url}/connect/deviceauthorization`, { client_id: 'tv', scope: 'openid offline_access' })
  t.equal(tv.status, 200)
  t.equal(tv.json.verification_uri, `${srv.url}/device`)
  t.equal(tv.json.interval, 5)
  t.equal(tv.json.expires_in, 600)
  const cli = await postForm(`${srv.url}/connect/deviceauthorization`, { scope: 'openid' }, { authorization: basic('cli', 'cli-secret') })
  t.equal(cli.status, 200)
})
