/**
 * SPEC §5 "no request, however malformed, gets a 500", beyond the token endpoint: every
 * form endpoint of the core (token, introspection, revocation, userinfo) and the
 * authorization endpoint get a matrix of malformed bodies, queries and credentials.
 * Form endpoints must answer JSON; nothing may answer 5xx or show a stack trace.
 */
import t from 'tap'
import { request } from 'node:http'
import { basic, startServer } from '../helpers/server.js'

const srv = await startServer({
  issuer: 'http://issuer.test',
  users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-alice', username: 'alice', password: 'wonderland', claims: { name: 'Alice' } }] } },
  plugins: ['@grantd/grant-authorization-code', '@grantd/grant-refresh-token', '@grantd/grant-client-credentials', '@grantd/grant-password', '@grantd/acr-tenant'],
  clients: [
    { client_id: 'web', client_secret: 'web-secret', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: ['http://127.0.0.1:5000/callback'], scope: 'openid profile api offline_access' },
    { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' },
    { client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password', 'refresh_token'], scope: 'openid profile api offline_access' },
  ],
})
t.teardown(srv.close)

interface Answer { status: number; type: string; text: string }

function send(method: string, path: string, headers: Record<string, string>, body?: Buffer | string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const length = body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }
    const req = request(`${srv.url}${path}`, { method, headers: { ...headers, ...length } }, (res) => {
      let text = ''
      res.setEncoding('latin1')
      res.on('data', (d: string) => { text += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), text }))
    })
    req.on('error', reject)
    if (body !== undefined) req.write(body)
    req.end()
  })
}

const STACK = /\bat [\w.<>]+ \(|node_modules|\.ts:\d+|\.js:\d+/
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const verifier = 'a'.repeat(43)

const BODIES: Array<string | Buffer> = [
  '', '%', '&&&', '=', 'token=%00', Buffer.from([0xff, 0xfe, 0x00, 0x3d]), `token=${'a'.repeat(5000)}`, 'token=a&token=b',
  `grant_type=authorization_code&code=x&redirect_uri=%zz&code_verifier=${'a'.repeat(200)}`,
  `grant_type=authorization_code&code=..%2F..%2F&redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcallback&code_verifier=${verifier}`,
  `grant_type=authorization_code&code=x&redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcallback&code_verifier=${'%C3%A9'.repeat(60)}`,
  `grant_type=refresh_token&refresh_token=${'%C3%A9'.repeat(100)}`, 'grant_type=refresh_token&refresh_token=a.b.c&scope=openid%20admin',
  'grant_type=password&username=%00&password=x&scope=api', `grant_type=password&username=${'a'.repeat(4000)}&password=x&scope=openid`,
  'grant_type=password&username=alice&password=wonderland&scope=openid&acr_values=tenant%3A%00',
  `grant_type=password&username=alice&password=wonderland&scope=openid&acr_values=${encodeURIComponent(`tenant:${'x'.repeat(2000)}`)}`,
  'grant_type=password&username=alice&password=wonderland&scope=openid&acr_values=tenant:a%20tenant:b%20idp:x%20%20',
  `token_type_hint=refresh_token&token=${'x'.repeat(300)}`, 'token_type_hint=%FF&token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
]
const CREDENTIALS: Array<Record<string, string>> = [
  {}, { authorization: basic('web', 'web-secret') }, { authorization: basic('ro', 'ro-secret') }, { authorization: basic('svc', 'nope') },
  { authorization: 'Bearer x.y.z' }, { authorization: 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.' }, { authorization: 'Basic %%%' },
]

t.test('form endpoints: malformed bodies × credentials → JSON, never 5xx, never a stack', async (t) => {
  const bad: string[] = []
  let count = 0
  for (const path of ['/connect/token', '/oauth2/token', '/connect/introspect', '/connect/revocation', '/connect/userinfo']) {
    for (const body of BODIES) {
      for (const creds of CREDENTIALS) {
        const res = await send('POST', path, { ...FORM, ...creds }, body)
        count++
        // RFC 7009 §2.2: a successful revocation is a 200 with no body.
        const emptyRevocation = path === '/connect/revocation' && res.status === 200 && res.text === ''
        if (res.status >= 500 || STACK.test(res.text) || (!emptyRevocation && !/^application\/json/.test(res.type))) {
          bad.push(`${path} ${res.status} ${res.type} body=${JSON.stringify(String(body).slice(0, 40))} creds=${JSON.stringify(creds).slice(0, 40)}: ${res.text.slice(0, 100)}`)
        }
      }
    }
  }
  t.same(bad, [], `${count} requests`)
})

t.test('the authorization endpoint: malformed queries never yield 5xx or a stack', async (t) => {
  const base = 'response_type=code&client_id=web&redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcallback'
  const queries = [
    '', 'client_id=web', 'client_id=%zz', 'client_id=web&redirect_uri=%00', 'client_id=web&client_id=web&response_type=code',
    `${base}&scope=openid&code_challenge=${'x'.repeat(5000)}&code_challenge_method=S256`, `${base}&scope=openid%00&state=%FF`,
    `${base}&scope=openid&code_challenge=${'x'.repeat(43)}&code_challenge_method=S256&acr_values=tenant%3A${'y'.repeat(3000)}`,
    `${base}&scope=openid&code_challenge=${'x'.repeat(43)}&code_challenge_method=plain&prompt=%00`, 'a=1&'.repeat(500),
    `${base}&scope=openid&response_type=code`, `${base}&redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcallback`,
  ]
  const bad: string[] = []
  for (const query of queries) {
    for (const method of ['GET', 'POST']) {
      const res = await send(method, `/connect/authorize?${query}`, method === 'POST' ? FORM : {}, method === 'POST' ? '%%%&username=%00' : undefined)
      if (res.status >= 500 || STACK.test(res.text)) bad.push(`${method} ${res.status} ${query.slice(0, 60)}: ${res.text.slice(0, 100)}`)
    }
  }
  t.same(bad, [])
})

t.test('userinfo with malformed bearer tokens → JSON 4xx', async (t) => {
  for (const [method, path, headers, body] of [
    ['GET', '/connect/userinfo', { authorization: 'Bearer %%%' }, undefined],
    ['GET', '/connect/userinfo', { authorization: `Bearer ${'a'.repeat(8000)}` }, undefined],
    ['GET', '/connect/userinfo', { authorization: 'Bearer' }, undefined],
    ['GET', '/connect/userinfo?access_token=x', {}, undefined],
    ['POST', '/connect/userinfo', { 'content-type': 'application/json', authorization: 'Bearer x' }, '{}'],
  ] as const) {
    const res = await send(method, path, headers as Record<string, string>, body)
    t.ok(res.status >= 400 && res.status < 500, `${method} ${path} ${JSON.stringify(headers).slice(0, 40)}: ${res.status}`)
    t.match(res.type, /^application\/json/)
  }
  t.same(srv.log.lines.filter((l) => /"level":"error"/.test(l)), [], 'nothing was logged as an unhandled error')
})
