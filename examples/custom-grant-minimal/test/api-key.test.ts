/** The minimal custom grant from docs/plugins.md, over HTTP with its example config. */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { decodeJwt } from 'jose'
import { ROOT, basic, postForm, startServer } from '../../../test/helpers/server.js'

const EXAMPLES = join(ROOT, 'examples')
const CONFIG = JSON.parse(readFileSync(join(EXAMPLES, 'custom-grant-minimal.json'), 'utf8')) as Record<string, unknown>
const API_KEY = 'urn:example:grant-type:api-key'

t.test('an API key becomes a short-lived token of its user', async (t) => {
  const srv = await startServer(CONFIG, { baseDir: EXAMPLES })
  t.teardown(srv.close)
  const post = (form: Record<string, string>) => postForm(`${srv.url}/connect/token`, form, { authorization: basic('cli', 'cli-secret') })

  const ok = await post({ grant_type: API_KEY, api_key: 'demo-key-alice', scope: 'api' })
  t.equal(ok.status, 200, ok.status === 200 ? 'status 200' : ok.text)
  t.equal(ok.json.scope, 'api')
  t.notOk('refresh_token' in ok.json)
  t.notOk('id_token' in ok.json)
  const claims = decodeJwt(ok.json.access_token as string)
  t.equal(claims.sub, 'u-alice')
  t.equal(claims.client_id, 'cli')

  // The core's defaults apply: openid on a user-bound grant brings an ID token with the user's claims.
  const oidc = await post({ grant_type: API_KEY, api_key: 'demo-key-alice', scope: 'openid profile' })
  t.equal(oidc.status, 200)
  t.equal(decodeJwt(oidc.json.id_token as string).name, 'Alice')

  const refusals: Array<[Record<string, string>, string]> = [
    [{ grant_type: API_KEY, api_key: 'demo-key-bob', scope: 'api' }, 'invalid_grant'],
    [{ grant_type: API_KEY, scope: 'api' }, 'invalid_request'],
    [{ grant_type: API_KEY, api_key: 'demo-key-alice' }, 'invalid_scope'],
    [{ grant_type: API_KEY, api_key: 'demo-key-alice', scope: 'admin' }, 'invalid_scope'],
  ]
  for (const [form, error] of refusals) {
    const res = await post(form)
    t.equal(res.status, 400, JSON.stringify(form))
    t.equal(res.json.error, error, JSON.stringify(form))
  }
})

t.test('options that are not a map of key hashes stop the server', async (t) => {
  const config = { ...CONFIG, plugins: [{ use: './custom-grant-minimal/dist/index.js', options: { keys: { abc: 42 } } }] }
  await t.rejects(startServer(config, { baseDir: EXAMPLES }), { message: /plugins\[0\]\.options: keys\.abc: expected string, got number/ })
})
