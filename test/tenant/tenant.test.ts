import t from 'tap'
import { decodeJwt } from 'jose'
import { basic, postForm, startServer, type RunningServer } from '../helpers/server.js'
import { Browser, parseForms } from '../idp/browser.js'

/**
 * @grantd/acr-tenant: `acr_values=tenant:NAME` reaches the user service as the context's
 * tenant (SPEC §6). users-static's rule: a user of tenant acme signs in with tenant:acme
 * or no tenant, never with another; a user without a tenant only without one.
 */

const tenantUsers = {
  use: '@grantd/users-static',
  options: {
    users: [
      { sub: 'u-alice', username: 'alice', password: 'wonderland', tenant: 'acme', claims: { name: 'Alice' } },
      { sub: 'u-bob', username: 'bob', password: 'builder' },
    ],
  },
}

function password(srv: RunningServer, form: Record<string, string>) {
  return postForm(`${srv.url}/connect/token`, { grant_type: 'password', ...form }, { authorization: basic('ro', 'ro-secret') })
}

t.test('tenant: at the token endpoint', async (t) => {
  const srv = await startServer({
    issuer: 'http://id.test',
    users: tenantUsers,
    plugins: ['@grantd/grant-password', '@grantd/acr-tenant'],
    clients: [{ client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password'], scope: 'openid api' }],
  })
  t.teardown(srv.close)

  t.test('discovery advertises the prefix', async (t) => {
    const meta = (await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>
    t.ok((meta.acr_values_supported as string[]).includes('tenant:*'))
  })

  t.test('tenant:acme ok, tenant:other fails, no tenant ok', async (t) => {
    const ok = await password(srv, { username: 'alice', password: 'wonderland', scope: 'api', acr_values: 'tenant:acme' })
    t.equal(ok.status, 200, 'tenant:acme')
    const other = await password(srv, { username: 'alice', password: 'wonderland', scope: 'api', acr_values: 'tenant:other' })
    t.equal(other.json.error, 'invalid_grant', 'tenant:other')
    t.equal(other.json.error_description, (await password(srv, { username: 'alice', password: 'x', scope: 'api' })).json.error_description)
    const none = await password(srv, { username: 'alice', password: 'wonderland', scope: 'api' })
    t.equal(none.status, 200, 'no tenant')
    const tenantless = await password(srv, { username: 'bob', password: 'builder', scope: 'api', acr_values: 'tenant:acme' })
    t.equal(tenantless.json.error, 'invalid_grant', 'a user without a tenant is not in tenant acme')
    const malformed = await password(srv, { username: 'alice', password: 'wonderland', scope: 'api', acr_values: 'tenant:<script>' })
    t.equal(malformed.json.error, 'invalid_request')
  })

  t.test('acr_values parsing: unknown prefixes ignored, first value per prefix wins', async (t) => {
    const unknown = await password(srv, { username: 'alice', password: 'wonderland', scope: 'api', acr_values: 'urn:foo:bar loa:2 tenant:acme  plain' })
    t.equal(unknown.status, 200)
    const firstWins = await password(srv, { username: 'alice', password: 'wonderland', scope: 'api', acr_values: 'tenant:acme tenant:other' })
    t.equal(firstWins.status, 200, 'tenant:acme came first')
    const firstLoses = await password(srv, { username: 'alice', password: 'wonderland', scope: 'api', acr_values: 'tenant:other tenant:acme' })
    t.equal(firstLoses.json.error, 'invalid_grant', 'tenant:other came first')
    // Without @grantd/acr-idp loaded, idp: is just another unknown prefix.
    const idpUnclaimed = await password(srv, { username: 'alice', password: 'wonderland', scope: 'api', acr_values: 'idp:google' })
    t.equal(idpUnclaimed.status, 200)
  })
})

t.test('tenant: at the authorization endpoint and its login page', async (t) => {
  const redirect = 'http://127.0.0.1:5000/callback'
  const srv = await startServer({
    users: tenantUsers,
    plugins: ['@grantd/grant-authorization-code', '@grantd/acr-tenant'],
    clients: [{ client_id: 'web', client_secret: 'web-secret', grant_types: ['authorization_code'], redirect_uris: [redirect], scope: 'openid profile' }],
  })
  t.teardown(srv.close)

  /** Open the login page with these acr_values, sign in, and say where the browser ended. */
  async function signIn(acr: string | undefined, username: string, password: string) {
    const browser = new Browser()
    const url = new URL(`${srv.url}/connect/authorize`)
    const params = { response_type: 'code', client_id: 'web', redirect_uri: redirect, scope: 'openid', state: 'st', nonce: 'nn', ...(acr ? { acr_values: acr } : {}) }
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v)
    const page = await browser.request(url.href)
    t.equal(page.status, 200, 'login page')
    const form = parseForms(page.body, page.url).find((f) => 'username' in f.fields)!
    const answer = await browser.request(form.action, { form: { ...form.fields, username, password } })
    const code = answer.location?.startsWith(redirect) ? new URL(answer.location).searchParams.get('code') : null
    return { answer, code }
  }

  const acme = await signIn('tenant:acme', 'alice', 'wonderland')
  t.ok(acme.code, 'tenant:acme signs alice in')
  const token = await postForm(`${srv.url}/connect/token`, { grant_type: 'authorization_code', code: acme.code!, redirect_uri: redirect }, { authorization: basic('web', 'web-secret') })
  t.equal(token.status, 200)
  t.equal(decodeJwt(token.json.id_token as string).sub, 'u-alice')

  const other = await signIn('tenant:other', 'alice', 'wonderland')
  t.equal(other.code, null, 'tenant:other does not')
  t.notOk(other.answer.location, 'the form is shown again, no redirect')
  t.match(other.answer.body, /incorrect/i)

  t.ok((await signIn(undefined, 'alice', 'wonderland')).code, 'no tenant signs alice in')
  t.ok((await signIn('urn:x:y tenant:acme tenant:other', 'alice', 'wonderland')).code, 'unknown prefixes ignored, first tenant wins')
  t.equal((await signIn('tenant:acme', 'bob', 'builder')).code, null, 'a user without a tenant is not in acme')
})
