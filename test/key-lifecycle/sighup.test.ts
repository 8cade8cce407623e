/**
 * SPEC §13 "SIGHUP reloads": a spawned `grantd start` reloads its key file, clients and
 * users-static users on SIGHUP, same PID, without a failed request; a bad new config is
 * refused with a log line and the old one keeps serving.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose'
import { basic, CLI, postForm, startCli, type ChildServer } from '../helpers/server.js'

const run = promisify(execFile)
const dir = mkdtempSync(join(tmpdir(), 'grantd-keylife-hup-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const keysFile = join(dir, 'keys.json')
const configFile = join(dir, 'grantd.json')

async function cli(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 })
  return stdout
}

type Client = { client_id: string; client_secret: string; grant_types: string[]; scope: string; access_token_signed_response_alg?: string; redirect_uris?: string[] }
const svc = (id: string): Client => ({ client_id: id, client_secret: `${id}-secret`, grant_types: ['client_credentials'], scope: 'api' })
const ro: Client = { client_id: 'ro', client_secret: 'ro-secret', grant_types: ['password'], scope: 'openid api' }

function writeConfig(clients: Client[], password = 'wonderland', extra: Record<string, unknown> = {}): void {
  writeFileSync(configFile, JSON.stringify({
    issuer: 'http://127.0.0.1',
    keys: { file: './keys.json' },
    log: { level: 'info' },
    throttle: { maxFailuresPerUser: 1000, maxFailuresPerAddress: 1000 },
    users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-alice', username: 'alice', password }] } },
    plugins: ['@grantd/grant-client-credentials', '@grantd/grant-password', '@grantd/grant-authorization-code'],
    clients,
    ...extra,
  }))
}

const count = (text: string, needle: string): number => text.split(needle).length - 1

/** SIGHUP, then wait for the reload's outcome line. */
async function hup(child: ChildServer, outcome: 'configuration reloaded' | 'configuration reload refused'): Promise<string> {
  const before = { ok: count(child.output(), '"configuration reloaded"'), bad: count(child.output(), '"configuration reload refused'), }
  child.proc.kill('SIGHUP')
  const deadline = Date.now() + 15_000
  for (;;) {
    const out = child.output()
    const ok = count(out, '"configuration reloaded"') > before.ok
    const bad = count(out, '"configuration reload refused') > before.bad
    if (ok || bad) {
      if ((outcome === 'configuration reloaded') !== ok) throw new Error(`expected "${outcome}", got: ${out.split('\n').slice(-4).join('\n')}`)
      return out.split('\n').filter((l) => l.includes(outcome)).pop()!
    }
    if (Date.now() > deadline) throw new Error(`no reload outcome: ${out.slice(-2000)}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

async function token(child: ChildServer, id: string): Promise<{ status: number; token?: string; error?: string }> {
  const res = await postForm(`${child.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic(id, `${id}-secret`) })
  return { status: res.status, ...(typeof res.json.access_token === 'string' ? { token: res.json.access_token } : {}), ...(typeof res.json.error === 'string' ? { error: res.json.error } : {}) }
}

const kidOf = (jwt: string): string => String(decodeProtectedHeader(jwt).kid)
async function publishedKids(child: ChildServer): Promise<string[]> {
  return ((await (await fetch(`${child.url}/.well-known/jwks.json`)).json()) as { keys: JWK[] }).keys.map((k) => String(k.kid))
}
const fileKeys = (): Array<JWK & { status?: string }> => (JSON.parse(readFileSync(keysFile, 'utf8')) as { keys: Array<JWK & { status?: string }> }).keys

t.test('key add → promote → retire across SIGHUP, same PID, a token loop verified through the JWKS with zero failures', async (t) => {
  await cli('keys', 'generate', '--out', keysFile)
  const [oldEs, rs] = fileKeys().map((k) => String(k.kid))
  writeConfig([svc('svc'), ro])
  const child = await startCli(configFile)
  t.teardown(() => child.stop())
  const pid = child.proc.pid

  // A relying party verifying every token through the JWKS; its cache is shorter than the
  // wait between add and promote below (what publish-ahead asks of an operator).
  const jwks = createRemoteJWKSet(new URL(`${child.url}/.well-known/jwks.json`), { cacheMaxAge: 1000, cooldownDuration: 0 })
  const failures: string[] = []
  const issued: string[] = []
  let stop = false
  const worker = async () => {
    while (!stop) {
      try {
        const res = await token(child, 'svc')
        if (res.status !== 200 || !res.token) { failures.push(`token ${res.status} ${res.error}`); continue }
        await jwtVerify(res.token, jwks, { issuer: 'http://127.0.0.1' })
        issued.push(res.token)
      } catch (err) {
        failures.push((err as Error).message)
      }
    }
  }
  const loop = Promise.all([worker(), worker(), worker()])

  t.equal(kidOf((await token(child, 'svc')).token!), oldEs)
  await cli('keys', 'add', '--alg', 'ES256', '--file', keysFile)
  const next = String(fileKeys().find((k) => k.status === 'next')!.kid)
  const line = await hup(child, 'configuration reloaded')
  t.match(line, `${next}:ES256:next`, 'the reload logs the key states')
  t.same((await publishedKids(child)).sort(), [oldEs, rs, next].sort(), 'the next key is published')
  t.equal(kidOf((await token(child, 'svc')).token!), oldEs, 'a next key does not sign')

  await new Promise((r) => setTimeout(r, 2500))
  const beforePromote = (await token(child, 'svc')).token!
  await cli('keys', 'promote', '--kid', next, '--file', keysFile)
  await hup(child, 'configuration reloaded')
  t.equal(kidOf((await token(child, 'svc')).token!), next, 'the promoted key signs')
  t.ok((await publishedKids(child)).includes(oldEs!), 'the retired key stays published')
  // A token the old key signed before the promotion still verifies at the server (introspection path) and through the JWKS.
  await t.resolves(jwtVerify(beforePromote, createRemoteJWKSet(new URL(`${child.url}/.well-known/jwks.json`)), { issuer: 'http://127.0.0.1' }))

  await cli('keys', 'add', '--alg', 'ES256', '--file', keysFile)
  const aborted = String(fileKeys().find((k) => k.status === 'next')!.kid)
  await hup(child, 'configuration reloaded')
  await cli('keys', 'retire', '--kid', aborted, '--file', keysFile)
  await hup(child, 'configuration reloaded')
  t.ok((await publishedKids(child)).includes(aborted), 'a retired key is published')
  t.equal(kidOf((await token(child, 'svc')).token!), next, 'and never signs')

  await new Promise((r) => setTimeout(r, 300))
  stop = true
  await loop
  t.same(failures, [], 'no request failed and every token verified through the JWKS')
  t.ok(issued.length > 20, `the loop ran (${issued.length} tokens)`)
  t.same([...new Set(issued.map(kidOf))].sort(), [oldEs, next].sort(), 'the loop saw both keys sign')
  t.equal(child.proc.pid, pid)
  t.equal(child.proc.exitCode, null, 'the same process kept running')
})

t.test('a bad config on SIGHUP is refused with a log line; the old one keeps serving', async (t) => {
  writeConfig([svc('svc'), ro])
  const child = await startCli(configFile)
  t.teardown(() => child.stop())
  const bad: Array<[string, () => void, RegExp]> = [
    ['not JSON', () => writeFileSync(configFile, '{"clients": ['), /not valid JSON/],
    ['unknown key', () => writeConfig([svc('svc')], 'wonderland', { colour: 'blue' }), /colour: unknown key/],
    ['a client alg no key has', () => writeConfig([{ ...svc('svc'), access_token_signed_response_alg: 'EdDSA' }]), /clients\[0\]\.access_token_signed_response_alg: no signing key has alg EdDSA/],
    ['a grant no plugin loads', () => writeConfig([{ ...svc('svc'), grant_types: ['urn:example:nope'] }]), /grant type \\"urn:example:nope\\" is not loaded/],
    ['a plugin list change', () => writeConfig([svc('svc')], 'wonderland', { plugins: ['@grantd/grant-client-credentials', '@grantd/grant-password'] }), /store, users and plugins must stay the same/],
    ['bad users-static options', () => writeConfig([svc('svc')], ''), /users\.options: users\[0\]\.password: must not be empty/],
    ['a broken key file', () => { writeConfig([svc('svc'), ro]); writeFileSync(keysFile, '{"keys": []}') }, /keys\.file: expected a JWK set/],
  ]
  const goodKeys = readFileSync(keysFile, 'utf8')
  for (const [what, write, message] of bad) {
    write()
    const line = await hup(child, 'configuration reload refused')
    t.match(line, message, what)
    t.notMatch(line, /\bat \//, 'no stack in the log line')
    const res = await token(child, 'svc')
    t.equal(res.status, 200, `${what}: the old config keeps serving`)
  }
  writeFileSync(keysFile, goodKeys)
  writeConfig([svc('svc'), ro], 'wonderland', { port: 1, tokens: { accessTokenTtl: 60 } })
  const warned = child.output().length
  await hup(child, 'configuration reloaded')
  await new Promise((r) => setTimeout(r, 100))
  t.match(child.output().slice(warned), /changes to port, tokens need a restart; the running values are kept/)
})

t.test('clients and users-static users added, changed and removed by SIGHUP', async (t) => {
  writeConfig([svc('svc'), ro])
  const child = await startCli(configFile)
  t.teardown(() => child.stop())
  const password = (p: string) => postForm(`${child.url}/connect/token`, { grant_type: 'password', username: 'alice', password: p, scope: 'api' }, { authorization: basic('ro', 'ro-secret') })
  t.equal((await token(child, 'svc2')).status, 401)
  t.equal((await password('wonderland')).status, 200)

  writeConfig([svc('svc2'), ro], 'looking-glass')
  await hup(child, 'configuration reloaded')
  const added = await token(child, 'svc2')
  t.equal(added.status, 200, 'an added client gets tokens')
  const removed = await token(child, 'svc')
  t.equal(removed.status, 401, 'a removed client is refused')
  t.equal(removed.error, 'invalid_client')
  // A token of a removed client no longer introspects? Not in scope; its own tokens stay valid until they expire.
  const old = await password('wonderland')
  t.equal(old.status, 400, 'the old password is refused')
  t.equal(old.json.error, 'invalid_grant')
  t.equal((await password('looking-glass')).status, 200, 'the new password signs in')

  // A plugin that kept host.config.clients at register time (grant-authorization-code) sees the new client.
  const web = { client_id: 'web2', client_secret: 'web2-secret', grant_types: ['authorization_code'], scope: 'openid', redirect_uris: ['http://127.0.0.1:5000/cb'] }
  const authorize = () => fetch(`${child.url}/connect/authorize?${new URLSearchParams({
    client_id: 'web2', response_type: 'code', redirect_uri: 'http://127.0.0.1:5000/cb', scope: 'openid', state: 's',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
  })}`, { redirect: 'manual' })
  t.equal((await authorize()).status, 400, 'unknown client before the reload')
  writeConfig([svc('svc2'), ro, web], 'looking-glass')
  await hup(child, 'configuration reloaded')
  const page = await authorize()
  t.equal(page.status, 200, 'the login page for the added client')
  t.match(page.headers.get('content-type'), /text\/html/)

  // Discovery follows the clients (scopes_supported).
  writeConfig([{ ...svc('svc2'), scope: 'api reports' }, ro], 'looking-glass')
  await hup(child, 'configuration reloaded')
  const meta = (await (await fetch(`${child.url}/.well-known/openid-configuration`)).json()) as { scopes_supported: string[] }
  t.ok(meta.scopes_supported.includes('reports'), 'discovery shows the new scope')
})
