/**
 * Client secrets at the token endpoint (SPEC §3, §5): client_secret_basic with
 * RFC 6749 §2.3.1 form-encoding before base64, client_secret_post, clear and
 * `$scrypt$` secrets, and a method the client is not registered for.
 */
import t, { type Test } from 'tap'
import { hashSecret } from '@grantd/core'
import { basic, postForm, startServer } from '../helpers/server.js'

// Characters that must be form-encoded: space, ':', '+', '%', '/', '&', '=', non-ASCII.
const ODD_ID = 'a b:c+d%e/é'
const ODD_SECRET = 's3 cr:et+%2B/é&=ü'
const ODD_POST_ID = 'p&q=r s+t'

const [hashed, hashedOdd] = await Promise.all([hashSecret('hashed-secret'), hashSecret(ODD_SECRET, 10)])

const srv = await startServer({
  issuer: 'http://issuer.test',
  plugins: ['@grantd/grant-client-credentials'],
  clients: [
    { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' },
    { client_id: ODD_ID, client_secret: ODD_SECRET, grant_types: ['client_credentials'], scope: 'api' },
    { client_id: ODD_POST_ID, client_secret: ODD_SECRET, token_endpoint_auth_method: 'client_secret_post', grant_types: ['client_credentials'], scope: 'api' },
    { client_id: 'hashed', client_secret: hashed, grant_types: ['client_credentials'], scope: 'api' },
    { client_id: 'hashed-post', client_secret: hashedOdd, token_endpoint_auth_method: 'client_secret_post', grant_types: ['client_credentials'], scope: 'api' },
  ],
})
t.teardown(srv.close)
const TOKEN = `${srv.url}/connect/token`
const CC = { grant_type: 'client_credentials', scope: 'api' }

/** Decode the access token's payload (its signature is checked in openid-client.test.ts). */
function claims(token: unknown): Record<string, unknown> {
  return JSON.parse(Buffer.from(String(token).split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>
}

async function granted(t: Test, res: Awaited<ReturnType<typeof postForm>>, clientId: string, what: string): Promise<void> {
  t.equal(res.status, 200, `${what}: ${res.text}`)
  t.equal(claims(res.json.access_token).client_id, clientId, `${what}: token names the client`)
}

function refused(t: Test, res: Awaited<ReturnType<typeof postForm>>, viaBasic: boolean, what: string): void {
  t.equal(res.status, 401, `${what}: status`)
  t.equal(res.json.error, 'invalid_client', `${what}: error`)
  t.equal(res.headers.get('www-authenticate'), viaBasic ? 'Basic realm="grantd"' : null, `${what}: challenge`)
  t.equal(res.headers.get('cache-control'), 'no-store')
}

t.test('client_secret_basic: each half is form-urlencoded before base64 (RFC 6749 §2.3.1)', async (t) => {
  await granted(t, await postForm(TOKEN, CC, { authorization: basic('svc', 'svc-secret') }), 'svc', 'plain')
  await granted(t, await postForm(TOKEN, CC, { authorization: basic(ODD_ID, ODD_SECRET) }), ODD_ID, 'odd characters')
  // %20 instead of + for the space is the same form-encoding.
  const pct = (s: string) => encodeURIComponent(s)
  await granted(t, await postForm(TOKEN, CC, { authorization: `Basic ${Buffer.from(`${pct(ODD_ID)}:${pct(ODD_SECRET)}`).toString('base64')}` }), ODD_ID, '%20 for space')
  // The scheme name is case-insensitive (RFC 9110 §11.1).
  await granted(t, await postForm(TOKEN, CC, { authorization: basic('svc', 'svc-secret').replace('Basic', 'basic') }), 'svc', 'lower-case scheme')
  // client_id in the body too is fine when it names the same client.
  await granted(t, await postForm(TOKEN, { ...CC, client_id: ODD_ID }, { authorization: basic(ODD_ID, ODD_SECRET) }), ODD_ID, 'client_id repeated in body')

  refused(t, await postForm(TOKEN, CC, { authorization: basic(ODD_ID, `${ODD_SECRET}x`) }), true, 'wrong secret')
  refused(t, await postForm(TOKEN, CC, { authorization: basic(ODD_ID, ODD_SECRET.normalize('NFD')) }), true, 'secret in another Unicode normalisation')
  // Not form-encoded: the `:` inside the client_id splits it in the wrong place.
  refused(t, await postForm(TOKEN, CC, { authorization: `Basic ${Buffer.from(`${ODD_ID}:${ODD_SECRET}`).toString('base64')}` }), true, 'unencoded halves')
})

t.test('client_secret_post: the secret in the body, the form does the encoding', async (t) => {
  await granted(t, await postForm(TOKEN, { ...CC, client_id: ODD_POST_ID, client_secret: ODD_SECRET }), ODD_POST_ID, 'odd characters in the body')
  refused(t, await postForm(TOKEN, { ...CC, client_id: ODD_POST_ID, client_secret: 'nope' }), false, 'wrong secret')
  refused(t, await postForm(TOKEN, { ...CC, client_id: ODD_POST_ID }), false, 'client_id without the secret')
})

t.test('a client uses only the method it is registered for', async (t) => {
  // Right secret, wrong method: still invalid_client, with the challenge only when Basic was used.
  refused(t, await postForm(TOKEN, { ...CC, client_id: 'svc', client_secret: 'svc-secret' }), false, 'basic client posts its secret')
  refused(t, await postForm(TOKEN, CC, { authorization: basic(ODD_POST_ID, ODD_SECRET) }), true, 'post client uses Basic')
  refused(t, await postForm(TOKEN, CC, { authorization: basic('hashed-post', ODD_SECRET) }), true, 'hashed post client uses Basic')
})

t.test('a $scrypt$ secret: the right secret passes, a wrong one never does', async (t) => {
  t.match(hashed, /^\$scrypt\$ln=15,r=8,p=1\$[\w-]+\$[\w-]+$/)
  refused(t, await postForm(TOKEN, CC, { authorization: basic('hashed', 'wrong') }), true, 'wrong secret first')
  await granted(t, await postForm(TOKEN, CC, { authorization: basic('hashed', 'hashed-secret') }), 'hashed', 'right secret')
  // After a success the verifier remembers the accepted secret; a wrong one must still fail.
  await granted(t, await postForm(TOKEN, CC, { authorization: basic('hashed', 'hashed-secret') }), 'hashed', 'right secret again')
  refused(t, await postForm(TOKEN, CC, { authorization: basic('hashed', 'hashed-secreT') }), true, 'wrong secret after a success')
  refused(t, await postForm(TOKEN, CC, { authorization: basic('hashed', hashed) }), true, 'the hash itself is not the secret')
  await granted(t, await postForm(TOKEN, { ...CC, client_id: 'hashed-post', client_secret: ODD_SECRET }), 'hashed-post', 'hashed, posted, odd characters')
  refused(t, await postForm(TOKEN, { ...CC, client_id: 'hashed-post', client_secret: `${ODD_SECRET} ` }), false, 'hashed, posted, trailing space')
})

t.test('concurrent first use of a hashed secret: right ones pass, wrong ones fail', async (t) => {
  const srv2 = await startServer({
    issuer: 'http://issuer.test',
    plugins: ['@grantd/grant-client-credentials'],
    clients: [{ client_id: 'h', client_secret: hashedOdd, grant_types: ['client_credentials'], scope: 'api' }],
  })
  t.teardown(srv2.close)
  const attempts = ['right', 'wrong', 'right', 'wrong', 'right'].map(async (kind) => {
    const res = await postForm(`${srv2.url}/connect/token`, CC, { authorization: basic('h', kind === 'right' ? ODD_SECRET : 'x') })
    return [kind, res.status] as const
  })
  for (const [kind, status] of await Promise.all(attempts)) t.equal(status, kind === 'right' ? 200 : 401, kind)
})
