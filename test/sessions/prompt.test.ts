import t from 'tap'
import { authorizeUrl, baseConfig, get, loginForm, pkcePair, post, redeem, startFlowServer, WEB_REDIRECT } from '../authorization-code/flow.js'
import { signedInWeb } from './setup.js'

/**
 * Audit finding 11 (SPEC §9, OIDC Core §3.1.2.1): prompt=login|consent|select_account always
 * lead to a page, or with prompt=none to an error; never a silent code from the SSO session.
 */
t.test('prompt values that demand interaction never get a silent code', async (t) => {
  const config = baseConfig()
  const clients = config.clients as Array<Record<string, unknown>>
  clients.push({ client_id: 'third', client_secret: 'third-secret', require_consent: true, grant_types: ['authorization_code'], redirect_uris: [WEB_REDIRECT], scope: 'openid profile' })
  const srv = await startFlowServer(config)
  t.teardown(srv.close)
  const { jar } = await signedInWeb(srv, 'openid profile')

  const ask = (client: string, prompt: string | undefined, scope = 'openid') => {
    const { challenge } = pkcePair()
    return get(authorizeUrl(srv, {
      response_type: 'code', client_id: client, redirect_uri: WEB_REDIRECT, scope, state: 'st', prompt,
      ...(client === 'web' ? { code_challenge: challenge, code_challenge_method: 'S256' } : {}),
    }), jar)
  }

  t.test('the SSO session alone answers a plain request (no regression)', async (t) => {
    const res = await ask('nopkce', undefined)
    t.equal(res.status, 302)
    t.ok(res.location?.searchParams.has('code'))
  })

  t.test('prompt=consent shows the consent page, even for a first-party client', async (t) => {
    const res = await ask('nopkce', 'consent')
    t.equal(res.status, 200, 'a page, not a redirect')
    t.notOk(res.location?.searchParams.has('code'))
    t.match(res.body, /Allow access/)
  })

  t.test('prompt=select_account shows the login form offering the current account', async (t) => {
    const res = await ask('nopkce', 'select_account')
    t.equal(res.status, 200, 'a page, not a redirect')
    t.notOk(res.location?.searchParams.has('code'))
    t.match(res.body, /Continue as alice/)
    t.match(res.body, /name="password"/, 'and the form for another account')
    const continueForm = loginForm(res.body)
    t.equal(continueForm.fields.continue, '1')
    const done = await post(continueForm.action, continueForm.fields, jar)
    t.equal(done.status, 302)
    t.ok(done.location?.searchParams.has('code'), 'continuing as alice issues the code')
    t.equal(done.location?.searchParams.get('state'), 'st')
  })

  t.test('prompt=select_account, signing in as another user instead', async (t) => {
    const res = await ask('nopkce', 'select_account')
    const forms = [...res.body.matchAll(/<form\b[\s\S]*?<\/form>/g)].map((m) => loginForm(m[0]))
    const login = forms.find((f) => 'password' in f.fields)!
    const done = await post(login.action, { ...login.fields, username: 'bob', password: 'builder' }, jar)
    t.equal(done.status, 302)
    const tokens = await redeem(srv, done.location!.searchParams.get('code')!, undefined, { auth: { authorization: 'Basic ' + Buffer.from('nopkce:nopkce-secret').toString('base64') } })
    t.equal(JSON.parse(Buffer.from((tokens.json.id_token as string).split('.')[1]!, 'base64url').toString()).sub, 'u-bob')
  })

  t.test('prompt=select_account does not bypass max_age', async (t) => {
    const res = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'nopkce', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 'st', prompt: 'select_account', max_age: '0' }), jar)
    t.equal(res.status, 200)
    t.notMatch(res.body, /Continue as/, 'the session is too old to offer')
    const form = loginForm(res.body)
    const forced = await post(form.action, { ...form.fields, continue: '1' }, jar)
    t.equal(forced.status, 400, 'a hand-made "continue" is refused')
    t.notOk(forced.location)
  })

  t.test('prompt=login shows the login form', async (t) => {
    const res = await ask('nopkce', 'login')
    t.equal(res.status, 200)
    t.match(res.body, /name="password"/)
  })

  t.test('prompt=none when consent would be needed answers consent_required', async (t) => {
    const res = await ask('third', 'none')
    t.equal(res.status, 302)
    t.equal(res.location?.searchParams.get('error'), 'consent_required')
    t.equal(res.location?.searchParams.get('state'), 'st')
    t.equal(res.location?.searchParams.get('iss'), srv.url)
  })
})
