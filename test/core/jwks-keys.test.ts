/**
 * Signing keys (issue 2): `grantd keys generate --alg` writes a private JWK set; the
 * JWKS publishes every key of the file and never a private member; the first key signs.
 */
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose'
import { generatePrivateJwk } from '@grantd/core'
import { basic, CLI, postForm, startServer } from '../helpers/server.js'

const run = promisify(execFile)
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']
const dir = mkdtempSync(join(tmpdir(), 'grantd-keys-'))
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

function config(keysFile: string) {
  return {
    issuer: 'http://issuer.test',
    keys: { file: keysFile },
    plugins: ['@grantd/grant-client-credentials'],
    clients: [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' }],
  }
}

async function jwksOf(url: string): Promise<{ keys: JWK[] }> {
  const res = await fetch(`${url}/.well-known/jwks.json`)
  t.match(res.headers.get('content-type'), /^application\/(jwk-set\+)?json/)
  return (await res.json()) as { keys: JWK[] }
}

function noPrivateMembers(t: Test, jwks: { keys: JWK[] }): void {
  for (const key of jwks.keys) {
    for (const m of PRIVATE_MEMBERS) t.notOk(m in key, `kid ${key.kid}: no "${m}"`)
  }
}

// The CLI runs are started together up front: each is a Node start-up, the slow part of this file.
const algs = [['RS256', 'RSA'], ['EdDSA', 'OKP'], ['ES256', 'EC']] as const
const generating = Promise.all(algs.map(([alg]) => cli('keys', 'generate', '--alg', alg, '--out', join(dir, `${alg}.json`))))
writeFileSync(join(dir, 'exists.json'), '{}')
const refusing = Promise.all([
  cli('keys', 'generate', '--alg', 'ES256', '--out', join(dir, 'exists.json')),
  cli('keys', 'generate', '--alg', 'HS256', '--out', join(dir, 'hs.json')),
  cli('keys', 'generate', '--alg', 'ES256'),
])

t.test('keys generate --alg RS256 | EdDSA | ES256: the server signs with the generated key', async (t) => {
  const generated = await generating
  for (const [i, [alg, kty]] of algs.entries()) {
    const res = generated[i]!
    t.equal(res.code, 0, res.stderr)
    t.match(res.stdout, new RegExp(`^wrote ${alg} key \\S+ to `))
    const file = join(dir, `${alg}.json`)
    t.equal(statSync(file).mode & 0o777, 0o600, `${alg}: private key file is 0600`)
    const written = JSON.parse(readFileSync(file, 'utf8')) as { keys: JWK[] }
    t.equal(written.keys.length, 1)
    t.match(written.keys[0], { kty, alg, kid: String, d: String })

    const srv = await startServer(config(file))
    const token = await postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc', 'svc-secret') })
    t.equal(token.status, 200, `${alg}: token issued`)
    const jwks = await jwksOf(srv.url)
    noPrivateMembers(t, jwks)
    t.match(jwks.keys, [{ kty, alg, kid: written.keys[0]!.kid, use: 'sig' }])
    const { protectedHeader } = await jwtVerify(String(token.json.access_token), createLocalJWKSet(jwks), { issuer: 'http://issuer.test', typ: 'at+jwt' })
    t.equal(protectedHeader.alg, alg)
    const meta = (await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>
    t.same(meta.id_token_signing_alg_values_supported, [alg])
    await srv.close()
  }
})

t.test('keys generate refuses to overwrite, and refuses unknown algorithms', async (t) => {
  const [again, badAlg, noOut] = await refusing
  for (const [what, res] of [['existing file', again], ['HS256', badAlg], ['no --out', noOut]] as const) {
    t.not(res.code, 0, what)
    t.equal(res.stdout, '', `${what}: nothing on stdout`)
    t.match(res.stderr, /^grantd: keys generate: [^\n]+\n$/, `${what}: one line`)
  }
})

t.test('a multi-key file: every key is published, the first one signs (rotation)', async (t) => {
  const newest = await generatePrivateJwk('ES256')
  const rsa = await generatePrivateJwk('RS256')
  const oldest = await generatePrivateJwk('EdDSA')
  const file = join(dir, 'rotation.json')
  writeFileSync(file, JSON.stringify({ keys: [newest, rsa, oldest] }), { mode: 0o600 })
  const srv = await startServer(config(file))
  t.teardown(srv.close)
  const jwks = await jwksOf(srv.url)
  noPrivateMembers(t, jwks)
  t.same(jwks.keys.map((k) => k.kid), [newest.kid, rsa.kid, oldest.kid])
  t.same(jwks.keys.map((k) => k.alg), ['ES256', 'RS256', 'EdDSA'])
  const res = await postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc', 'svc-secret') })
  const token = String(res.json.access_token)
  t.equal(decodeProtectedHeader(token).kid, newest.kid, 'the first key signs')
  await jwtVerify(token, createLocalJWKSet(jwks), { issuer: 'http://issuer.test' })
  const meta = (await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>
  t.same(meta.id_token_signing_alg_values_supported, ['ES256', 'RS256', 'EdDSA'])
})

t.test('the ephemeral key: a warning, an ES256 key, no private member', async (t) => {
  const srv = await startServer({ issuer: 'http://issuer.test', plugins: [] })
  t.teardown(srv.close)
  t.ok(srv.log.lines.some((l) => /"level":"warn".*ephemeral ES256/.test(l)), 'warns that tokens will not survive a restart')
  const jwks = await jwksOf(srv.url)
  noPrivateMembers(t, jwks)
  t.match(jwks.keys, [{ kty: 'EC', crv: 'P-256', alg: 'ES256' }])
})

t.test('bad key files are start errors naming keys.file', async (t) => {
  const pub = await generatePrivateJwk('ES256')
  const { d: _d, ...publicOnly } = pub
  const cases: Array<[string, string, RegExp]> = [
    ['missing.json', '', /^keys\.file: cannot read .*missing\.json \(ENOENT\)$/],
    ['notjson.json', '{ nope', /^keys\.file: cannot read/],
    ['empty.json', '{"keys":[]}', /^keys\.file: expected a JWK set/],
    ['public.json', JSON.stringify({ keys: [publicOnly] }), /^keys\.file keys\[0\]: not a private JWK$/],
    ['hmac.json', JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0', d: 'x' }] }), /^keys\.file keys\[0\]: unsupported key/],
    ['twins.json', JSON.stringify({ keys: [pub, pub] }), /^keys\.file: two keys share a kid$/],
  ]
  for (const [name, content, message] of cases) {
    const file = join(dir, name)
    if (content) writeFileSync(file, content)
    await t.rejects(startServer(config(file)), { name: 'ConfigError', message }, name)
  }
})
