/**
 * SPEC §2 / issue 2: `grantd start` logs one JSON line per request, and its output never
 * contains a client secret, a user password, a client assertion or a token, not even at
 * debug level and not even for refused requests that carried them.
 */
import t from 'tap'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { hashSecret } from '@grantd/core'
import { basic, postForm, startCli } from '../helpers/server.js'

const unique = (label: string) => `${label}-${randomBytes(12).toString('base64url')}`
const SVC_SECRET = unique('svc')
const HASHED_SECRET = unique('hashed')
const RO_SECRET = unique('ro')
const PASSWORD = unique('pw')
const WRONG_PASSWORD = unique('wrongpw')
const WRONG_SECRET = unique('wrongsecret')
const keys = await generateKeyPair('ES256')

const dir = mkdtempSync(join(tmpdir(), 'grantd-logs-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const file = join(dir, 'grantd.json')
writeFileSync(file, JSON.stringify({
  log: { level: 'debug' },
  users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-alice', username: 'alice', password: PASSWORD, claims: { name: 'Alice' } }] } },
  plugins: ['@grantd/grant-client-credentials', '@grantd/grant-password', '@grantd/grant-refresh-token'],
  clients: [
    // $scrypt$ secret first, so the start-up curl hint (which shows a clear dev secret) has nothing to show.
    { client_id: 'hashed', client_secret: await hashSecret(HASHED_SECRET, 10), grant_types: ['client_credentials'], scope: 'api' },
    { client_id: 'svc', client_secret: SVC_SECRET, token_endpoint_auth_method: 'client_secret_post', grant_types: ['client_credentials'], scope: 'api' },
    { client_id: 'ro', client_secret: RO_SECRET, grant_types: ['password', 'refresh_token'], scope: 'openid profile api offline_access' },
    { client_id: 'jwt', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [await exportJWK(keys.publicKey)] }, grant_types: ['client_credentials'], scope: 'api' },
  ],
}))

t.test('request logs are JSON lines without secrets, passwords, assertions or tokens', async (t) => {
  const child = await startCli(file)
  t.teardown(() => child.stop('SIGKILL'))
  const token = `${child.url}/connect/token`
  const secrets: string[] = [SVC_SECRET, HASHED_SECRET, RO_SECRET, PASSWORD, WRONG_PASSWORD, WRONG_SECRET]
  /** Remember every credential a response or request carried; return the response. */
  const keep = (...values: unknown[]) => { for (const v of values) if (typeof v === 'string' && v) secrets.push(v) }
  let requests = 0
  const post = async (form: Record<string, string>, headers: Record<string, string> = {}, url = token) => {
    requests++
    if (headers.authorization) keep(headers.authorization.slice('Basic '.length))
    const res = await postForm(url, form, headers)
    keep(res.json.access_token, res.json.refresh_token, res.json.id_token)
    return res
  }

  // Successes with every kind of credential.
  t.equal((await post({ grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('hashed', HASHED_SECRET) })).status, 200)
  t.equal((await post({ grant_type: 'client_credentials', scope: 'api', client_id: 'svc', client_secret: SVC_SECRET })).status, 200)
  const assertion = await new SignJWT({ jti: randomUUID() }).setProtectedHeader({ alg: 'ES256' }).setIssuer('jwt').setSubject('jwt')
    .setAudience(child.url).setExpirationTime('1m').sign(keys.privateKey)
  keep(assertion)
  const jwtGrant = await post({ grant_type: 'client_credentials', scope: 'api', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion })
  t.equal(jwtGrant.status, 200, jwtGrant.text)
  const pw = await post({ grant_type: 'password', username: 'alice', password: PASSWORD, scope: 'openid profile api offline_access' }, { authorization: basic('ro', RO_SECRET) })
  t.equal(pw.status, 200, pw.text)
  t.type(pw.json.refresh_token, 'string')
  t.type(pw.json.id_token, 'string')
  const refreshed = await post({ grant_type: 'refresh_token', refresh_token: String(pw.json.refresh_token) }, { authorization: basic('ro', RO_SECRET) })
  t.equal(refreshed.status, 200, refreshed.text)
  // The rotated-out refresh token again: refused, and it revokes the family.
  t.equal((await post({ grant_type: 'refresh_token', refresh_token: String(pw.json.refresh_token) }, { authorization: basic('ro', RO_SECRET) })).json.error, 'invalid_grant')
  t.equal((await post({ token: String(refreshed.json.access_token) }, { authorization: basic('ro', RO_SECRET) }, `${child.url}/connect/introspect`)).status, 200)
  t.equal((await post({ token: String(refreshed.json.refresh_token) }, { authorization: basic('ro', RO_SECRET) }, `${child.url}/connect/revocation`)).status, 200)
  requests++
  t.equal((await fetch(`${child.url}/connect/userinfo`, { headers: { authorization: `Bearer ${String(pw.json.access_token)}` } })).status, 401, 'revoked family')

  // Refusals that carried credentials: each must be refused without echoing them.
  t.equal((await post({ grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('hashed', WRONG_SECRET) })).status, 401)
  t.equal((await post({ grant_type: 'client_credentials', scope: 'api', client_id: 'svc', client_secret: WRONG_SECRET })).status, 401)
  t.equal((await post({ grant_type: 'password', username: 'alice', password: WRONG_PASSWORD, scope: 'api' }, { authorization: basic('ro', RO_SECRET) })).status, 400)
  t.equal((await post({ grant_type: 'client_credentials', scope: 'api', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion })).status, 401, 'replayed assertion')
  t.equal((await post({ grant_type: 'client_credentials', scope: 'api', client_id: 'svc', client_secret: SVC_SECRET, extra: SVC_SECRET, more: 'x' }, { authorization: basic('svc', SVC_SECRET) })).status, 400, 'two methods')
  t.equal((await post({ grant_type: 'password', username: 'alice', password: `${PASSWORD}\u0000`, scope: 'api', foo: PASSWORD }, { authorization: basic('ro', RO_SECRET) })).status, 400, 'NUL in a password')
  t.equal((await post({ grant_type: 'refresh_token', refresh_token: `${String(refreshed.json.refresh_token)}x` }, { authorization: basic('ro', RO_SECRET) })).status, 400)

  t.equal(await child.stop(), 0)
  const output = child.output()
  const stdout = output.split('\n').filter((l) => l !== '' && !l.startsWith('grantd listening'))
  for (const line of stdout) t.doesNotThrow(() => JSON.parse(line), `a JSON line: ${line.slice(0, 120)}`)
  const parsed = stdout.map((l) => JSON.parse(l) as Record<string, unknown>)
  // startCli polls /healthz until the server is up; those lines are not ours.
  t.equal(parsed.filter((l) => l.msg === 'request' && l.path !== '/healthz').length, requests, 'one line per request')
  t.ok(parsed.some((l) => l.level === 20), 'debug lines were written too')
  // SPEC §13: request ids on every request line, error codes on error lines, the audit events of this traffic.
  for (const l of parsed.filter((x) => x.msg === 'request')) {
    t.type(l.request_id, 'string', `request_id on ${String(l.path)}`)
    if (typeof l.status === 'number' && l.status >= 400) t.type(l.error, 'string', `error code on a ${l.status} line`)
  }
  for (const event of ['token.issued', 'token.refused', 'login.succeeded', 'login.failed', 'client.auth_failed', 'refresh.reuse_detected']) {
    const line = parsed.find((l) => l.event === event)
    t.ok(line, `an ${event} line`)
    t.type(line?.request_id, 'string', `${event} carries the request id`)
  }
  t.ok(parsed.filter((l) => typeof l.event === 'string' && l.event.startsWith('login.')).every((l) => typeof l.user === 'string' && l.user !== 'alice'), 'login lines name the user by a keyed hash')

  for (const secret of new Set(secrets)) {
    const parts = secret.includes('.') ? secret.split('.').filter((p) => p.length >= 16).slice(1) : [secret]
    for (const part of [secret, ...parts]) {
      if (output.includes(part)) t.fail(`the log contains a credential: ${part.slice(0, 12)}…`)
    }
  }
  t.pass(`${new Set(secrets).size} credentials checked against ${stdout.length} lines`)
  t.notMatch(output, /"(authorization|password|client_secret|client_assertion|refresh_token|access_token)":"(?!\[redacted\])/, 'no credential-named field with a value')
})
