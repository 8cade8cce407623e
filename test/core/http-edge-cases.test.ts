/**
 * Requests that are malformed below the OAuth layer: what Node's HTTP parser refuses,
 * repeated Host/Authorization headers, compressed bodies, odd request targets, and a
 * keep-alive connection that must stay usable after a refused body. Every answer is an
 * OAuth JSON error (never a bare status line, HTML or a 500) and carries no-store.
 */
import t, { type Test } from 'tap'
import { connect } from 'node:net'
import { gzipSync } from 'node:zlib'
import { basic, startServer, type RunningServer } from '../helpers/server.js'

const CLIENTS = [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' }]
const BODY = 'grant_type=client_credentials&scope=api'
const SVC = basic('svc', 'svc-secret')

const srv = await startServer({ issuer: 'http://issuer.test', plugins: ['@grantd/grant-client-credentials'], clients: CLIENTS })
t.teardown(srv.close)

interface Answer { status: number; headers: Record<string, string>; body: string; json: Record<string, unknown> | undefined }

/** Write bytes on a fresh connection and split whatever comes back into HTTP/1.1 responses. */
function exchange(target: RunningServer, bytes: string | Buffer, waitMs = 1500): Promise<Answer[]> {
  return new Promise((resolve) => {
    const socket = connect(target.port, '127.0.0.1')
    const chunks: Buffer[] = []
    const done = () => { socket.destroy(); resolve(parseResponses(Buffer.concat(chunks).toString('latin1'))) }
    const timer = setTimeout(done, waitMs)
    socket.on('data', (d: Buffer) => chunks.push(d))
    socket.on('close', () => { clearTimeout(timer); done() })
    socket.on('error', () => {})
    socket.write(bytes)
  })
}

function parseResponses(text: string): Answer[] {
  const out: Answer[] = []
  let rest = text
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n')
    if (end < 0) break
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n')
    const headers: Record<string, string> = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
    }
    const status = Number(statusLine!.split(' ')[1])
    rest = rest.slice(end + 4)
    const length = Number(headers['content-length'] ?? 0)
    const body = status === 100 ? '' : rest.slice(0, length)
    rest = rest.slice(body.length)
    let json: Record<string, unknown> | undefined
    try { json = JSON.parse(body) as Record<string, unknown> } catch { json = undefined }
    out.push({ status, headers, body, json })
  }
  return out
}

function tokenRequest(headers: string[], body = BODY, path = '/connect/token'): string {
  return [`POST ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Content-Type: application/x-www-form-urlencoded', `Content-Length: ${Buffer.byteLength(body)}`, ...headers, '', body].join('\r\n')
}

function oauthError(t: Test, res: Answer | undefined, status: number, error: string, what: string): void {
  t.ok(res, `${what}: an answer`)
  if (!res) return
  t.equal(res.status, status, `${what}: status`)
  t.equal(res.json?.error, error, `${what}: error (${res.body.slice(0, 120)})`)
  t.type(res.json?.error_description, 'string', `${what}: description`)
  t.match(res.headers['content-type'], /^application\/json/, `${what}: JSON`)
  t.equal(res.headers['cache-control'], 'no-store', `${what}: Cache-Control`)
  t.equal(res.headers.pragma, 'no-cache', `${what}: Pragma`)
}

t.test('what the HTTP parser refuses is still an OAuth JSON error', async (t) => {
  const cases: Array<[string, string, number]> = [
    ['Content-Length and Transfer-Encoding together', 'POST /connect/token HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['Content-Length not a number', 'POST /connect/token HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n', 400],
    ['a control character in a header', `POST /connect/token HTTP/1.1\r\nHost: a\r\nAuthorization: Basic \x01\x02\r\nContent-Length: 0\r\n\r\n`, 400],
    ['not HTTP at all', 'HELLO\r\n\r\n', 400],
    ['a bad chunk size', 'POST /connect/token HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', 400],
    ['headers over 16 KiB', `GET /healthz HTTP/1.1\r\nHost: a\r\nAuthorization: Basic ${'A'.repeat(20_000)}\r\n\r\n`, 431],
  ]
  for (const [what, bytes, status] of cases) {
    const [res, extra] = await exchange(srv, bytes)
    oauthError(t, res, status, 'invalid_request', what)
    t.equal(res?.headers.connection, 'close', `${what}: the connection is closed`)
    t.notOk(extra, `${what}: nothing after the error`)
  }
})

t.test('two Host or two Authorization headers → 400 invalid_request', async (t) => {
  const [twoHosts] = await exchange(srv, 'GET /.well-known/openid-configuration HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n')
  oauthError(t, twoHosts, 400, 'invalid_request', 'two Host headers')
  const [twoAuth] = await exchange(srv, tokenRequest([`Authorization: ${SVC}`, `Authorization: ${basic('other', 'x')}`, 'Connection: close']))
  oauthError(t, twoAuth, 400, 'invalid_request', 'two Authorization headers at the token endpoint')
  t.match(twoAuth?.json?.error_description, /Authorization/)
  // Even two copies of the right credentials: one header, one set of credentials.
  const [same] = await exchange(srv, tokenRequest([`Authorization: ${SVC}`, `authorization: ${SVC}`, 'Connection: close']))
  oauthError(t, same, 400, 'invalid_request', 'the same Authorization twice')
  const [intro] = await exchange(srv, tokenRequest([`Authorization: ${SVC}`, `Authorization: ${SVC}`, 'Connection: close'], 'token=abc', '/connect/introspect'))
  oauthError(t, intro, 400, 'invalid_request', 'two Authorization headers at introspection')
  const [one] = await exchange(srv, tokenRequest([`Authorization: ${SVC}`, 'Connection: close']))
  t.equal(one?.status, 200, 'one header is fine')
})

t.test('a compressed body is refused, not parsed as garbage', async (t) => {
  const gz = gzipSync(BODY)
  const head = ['POST /connect/token HTTP/1.1', 'Host: a', `Authorization: ${SVC}`, 'Content-Type: application/x-www-form-urlencoded', 'Content-Encoding: gzip', `Content-Length: ${gz.length}`, 'Connection: close', '', ''].join('\r\n')
  const [res] = await exchange(srv, Buffer.concat([Buffer.from(head), gz]))
  oauthError(t, res, 400, 'invalid_request', 'gzip')
  const [identity] = await exchange(srv, tokenRequest([`Authorization: ${SVC}`, 'Content-Encoding: identity', 'Connection: close']))
  t.equal(identity?.status, 200, 'identity is no coding at all')
})

t.test('odd request targets and methods answer JSON', async (t) => {
  for (const target of ['/%', '/%zz', '//connect//token', '/connect/token%00', `/${'a'.repeat(6000)}`, '/connect/authorize/../../etc/passwd']) {
    const [res] = await exchange(srv, `GET ${target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`)
    t.equal(res?.status, 404, `${target.slice(0, 40)}: 404`)
    t.equal(res?.json?.error, 'not_found')
  }
  const [star] = await exchange(srv, 'OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  t.ok(star && star.status < 500, 'OPTIONS *')
  const [put] = await exchange(srv, tokenRequest([`Authorization: ${SVC}`, 'Connection: close']).replace(/^POST/, 'PUT'))
  oauthError(t, put, 405, 'invalid_request', 'PUT on the token endpoint')
  t.match(put?.headers.allow, /POST/)
  const [head] = await exchange(srv, 'HEAD /connect/token HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  t.equal(head?.status, 405)
  t.equal(head?.headers['cache-control'], 'no-store')
})

t.test('Expect: 100-continue is honoured', async (t) => {
  const head = ['POST /connect/token HTTP/1.1', 'Host: a', `Authorization: ${SVC}`, 'Content-Type: application/x-www-form-urlencoded', 'Expect: 100-continue', `Content-Length: ${BODY.length}`, 'Connection: close', '', ''].join('\r\n')
  const answers = await exchange(srv, head + BODY)
  t.same(answers.map((a) => a.status), [100, 200])
})

t.test('a keep-alive connection stays usable after refused bodies', async (t) => {
  const big = `${BODY}&pad=${'a'.repeat(17 * 1024)}`
  const pipelined = [
    tokenRequest([`Authorization: ${SVC}`], big),                  // 413, the body must be drained
    tokenRequest([`Authorization: ${SVC}`, 'Content-Type: application/json'], '{"grant_type":"client_credentials"}').replace('Content-Type: application/x-www-form-urlencoded\r\n', ''), // 400, wrong type
    tokenRequest([`Authorization: ${basic('svc', 'wrong')}`]),      // 401
    tokenRequest([`Authorization: ${SVC}`, 'Connection: close']),   // 200
  ].join('')
  const answers = await exchange(srv, pipelined, 3000)
  t.same(answers.map((a) => a.status), [413, 400, 401, 200], 'each request gets its own answer, in order')
  t.equal(answers[0]?.json?.error, 'invalid_request')
  t.equal(answers[2]?.headers['www-authenticate'], 'Basic realm="grantd"')
  t.type(answers[3]?.json?.access_token, 'string')
})

t.test('discovery tells caches which request headers it depends on', async (t) => {
  const vary = async (s: RunningServer) => (await fetch(`${s.url}/.well-known/openid-configuration`)).headers.get('vary')
  t.equal(await vary(srv), null, 'a configured issuer: the document is the same for every request')
  const derived = await startServer({ plugins: ['@grantd/grant-client-credentials'], clients: CLIENTS })
  t.teardown(derived.close)
  t.equal(await vary(derived), 'Host')
  const proxied = await startServer({ proxy: { trust: ['127.0.0.1'] }, plugins: ['@grantd/grant-client-credentials'], clients: CLIENTS })
  t.teardown(proxied.close)
  t.equal(await vary(proxied), 'Host, X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Prefix')
})
