/**
 * SPEC §13 "Keys have states": `grantd keys add|promote|retire` on a key file, the meaning
 * of each status when grantd loads the file, and every error the commands give.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { decodeProtectedHeader, type JWK } from 'jose'
import { generatePrivateJwk, KeySet } from '@grantd/core'
import { basic, CLI, postForm, startServer } from '../helpers/server.js'

const run = promisify(execFile)
const dir = mkdtempSync(join(tmpdir(), 'grantd-keylife-cli-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

type FileKey = JWK & { status?: string }
const readKeys = (file: string): FileKey[] => (JSON.parse(readFileSync(file, 'utf8')) as { keys: FileKey[] }).keys
const statuses = (file: string): Record<string, string | undefined> => Object.fromEntries(readKeys(file).map((k) => [String(k.kid), k.status]))

let n = 0
async function legacyFile(...algs: Array<'ES256' | 'RS256' | 'EdDSA'>): Promise<{ file: string; kids: string[] }> {
  const file = join(dir, `keys-${n++}.json`)
  const keys = await Promise.all(algs.map((a) => generatePrivateJwk(a)))
  writeFileSync(file, JSON.stringify({ keys }), { mode: 0o600 })
  return { file, kids: keys.map((k) => String(k.kid)) }
}

t.test('add → promote → retire: statuses in the file, the previous current of the alg retired', async (t) => {
  const { file, kids: [es, rs] } = await legacyFile('ES256', 'RS256')
  const added = await cli('keys', 'add', '--alg', 'ES256', '--file', file)
  t.equal(added.code, 0, added.stderr)
  const next = readKeys(file).find((k) => k.status === 'next')!
  t.ok(next, 'the new key is next')
  t.match(added.stdout, new RegExp(`added ES256 key ${next.kid} as next`))
  // A file without statuses gets written with the statuses it already meant.
  t.same(statuses(file), { [es!]: 'current', [rs!]: 'current', [String(next.kid)]: 'next' })
  t.equal(statSync(file).mode & 0o777, 0o600, 'the key file stays private')
  t.same(readKeys(file).map((k) => k.kid), [es, next.kid, rs], 'added after the last key of its alg: the first key\'s alg stays the access tokens\' default')

  const promoted = await cli('keys', 'promote', '--kid', String(next.kid), '--file', file)
  t.equal(promoted.code, 0, promoted.stderr)
  t.match(promoted.stdout, `retired ${es}`)
  // Only the ES256 family changes: RS256 keeps signing ID tokens.
  t.same(statuses(file), { [es!]: 'retired', [rs!]: 'current', [String(next.kid)]: 'current' })

  const retired = await cli('keys', 'retire', '--kid', rs!, '--file', file)
  t.equal(retired.code, 0, retired.stderr)
  t.same(statuses(file), { [es!]: 'retired', [rs!]: 'retired', [String(next.kid)]: 'current' })
})

t.test('a kid that starts with "-" (base64url thumbprints can) is an argument, not an option', async (t) => {
  const file = join(dir, `keys-${n++}.json`)
  const [a, b] = await Promise.all([generatePrivateJwk('ES256'), generatePrivateJwk('ES256')])
  writeFileSync(file, JSON.stringify({ keys: [{ ...a, status: 'current' }, { ...b, kid: '-dash-kid', status: 'next' }] }), { mode: 0o600 })
  const res = await cli('keys', 'promote', '--kid', '-dash-kid', '--file', file)
  t.equal(res.code, 0, res.stderr)
  t.equal(statuses(file)['-dash-kid'], 'current')
})

t.test('the errors: unknown kid, promote a retired or current key, retire the last signer, bad flags', async (t) => {
  const { file, kids: [es] } = await legacyFile('ES256')
  const before = readFileSync(file, 'utf8')
  const cases: Array<[string[], RegExp]> = [
    [['keys', 'promote', '--kid', 'nope', '--file', file], /no key with kid "nope"/],
    [['keys', 'retire', '--kid', 'nope', '--file', file], /no key with kid "nope"/],
    [['keys', 'promote', '--kid', es!, '--file', file], /already current/],
    [['keys', 'retire', '--kid', es!, '--file', file], /only current key; nothing would sign/],
    [['keys', 'add', '--file', file], /--alg must be one of/],
    [['keys', 'add', '--alg', 'HS256', '--file', file], /--alg must be one of/],
    [['keys', 'add', '--alg', 'ES256'], /--file FILE is required/],
    [['keys', 'promote', '--file', file], /--kid KID is required/],
    [['keys', 'add', '--alg', 'ES256', '--file', join(dir, 'absent.json')], /cannot read \(ENOENT\); make one with grantd keys generate/],
    [['keys', 'rotate', '--file', file], /unknown keys command "rotate"/],
  ]
  for (const [args, message] of cases) {
    const res = await cli(...args)
    t.not(res.code, 0, args.join(' '))
    t.match(res.stderr, message, args.join(' '))
    t.notMatch(res.stderr, /\n\s+at /, 'no stack trace')
  }
  t.equal(readFileSync(file, 'utf8'), before, 'a refused command leaves the file untouched')

  // Promote a retired key: refused (it does not come back to sign).
  const added = await cli('keys', 'add', '--alg', 'ES256', '--file', file)
  t.equal(added.code, 0)
  const next = readKeys(file).find((k) => k.status === 'next')!
  t.equal((await cli('keys', 'promote', '--kid', String(next.kid), '--file', file)).code, 0)
  const again = await cli('keys', 'promote', '--kid', es!, '--file', file)
  t.not(again.code, 0)
  t.match(again.stderr, new RegExp(`${es} is retired; a retired key does not sign again`))
  const twice = await cli('keys', 'retire', '--kid', es!, '--file', file)
  t.match(twice.stderr, /already retired/)
  // A next key may be retired (an aborted rotation).
  t.equal((await cli('keys', 'add', '--alg', 'ES256', '--file', file)).code, 0)
  const pending = readKeys(file).find((k) => k.status === 'next')!
  t.equal((await cli('keys', 'retire', '--kid', String(pending.kid), '--file', file)).code, 0)
})

t.test('loading: current signs, next and retired are only published, status never in the JWKS', async (t) => {
  const [a, b, c] = await Promise.all([generatePrivateJwk('ES256'), generatePrivateJwk('ES256'), generatePrivateJwk('ES256')])
  const keys = await KeySet.fromJwks({ keys: [{ ...a, status: 'retired' }, { ...b, status: 'next' }, { ...c, status: 'current' }] }, 'test')
  const srv = await startServer({
    plugins: ['@grantd/grant-client-credentials'],
    clients: [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' }],
  }, { keys })
  t.teardown(() => srv.close())
  const res = await postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc', 'svc-secret') })
  t.equal(res.status, 200, res.text)
  t.equal(decodeProtectedHeader(String(res.json.access_token)).kid, c.kid, 'the current key signs, not the first in the file')
  const jwks = (await (await fetch(`${srv.url}/.well-known/jwks.json`)).json()) as { keys: FileKey[] }
  t.same(jwks.keys.map((k) => k.kid), [a.kid, b.kid, c.kid], 'every key is published')
  for (const k of jwks.keys) {
    t.equal(k.status, undefined, 'status is grantd\'s member, not the JWKS\'s')
    t.equal(k.d, undefined)
    t.equal(k.use, 'sig')
  }
})

t.test('key file errors at load name the key', async (t) => {
  const [a, b] = await Promise.all([generatePrivateJwk('ES256'), generatePrivateJwk('ES256')])
  await t.rejects(KeySet.fromJwks({ keys: [{ ...a, status: 'current' }, { ...b, status: 'current' }] }, 'keys.file'), /keys\.file keys\[1\]: a second current ES256 key/)
  await t.rejects(KeySet.fromJwks({ keys: [{ ...a, status: 'next' }] }, 'keys.file'), /no key has status "current"/)
  await t.rejects(KeySet.fromJwks({ keys: [{ ...a, status: 'active' }] }, 'keys.file'), /keys\.file keys\[0\]\.status: expected one of next, current, retired/)
  await t.rejects(KeySet.fromJwks({ keys: [{ ...a, use: 'enc' }] }, 'keys.file'), /keys\.file keys\[0\]\.use/)
  // Access tokens default to the first key's alg, also when that key is retired.
  const r = await generatePrivateJwk('RS256')
  const rotated = await KeySet.fromJwks({ keys: [{ ...a, status: 'retired' }, { ...r, status: 'current' }, { ...b, status: 'current' }] }, 'keys.file')
  t.equal(rotated.signing.kid, b.kid)
  // A file without statuses keeps today's meaning: the first key of an alg signs, later ones are published only.
  const legacy = await KeySet.fromJwks({ keys: [a, b] }, 'keys.file')
  t.equal(legacy.signing.kid, a.kid)
  t.same(legacy.keys.map((k) => k.status), ['current', 'retired'])
})
