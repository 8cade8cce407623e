/**
 * SPEC §9 "OIDC Core §15.1": RS256 is always available for ID tokens. Ephemeral keys are
 * ES256 and RS256; `grantd keys generate` writes both unless --alg names one; clients
 * choose with `id_token_signed_response_alg` (default RS256 when a key has it) and
 * `access_token_signed_response_alg` (default the first key's alg); a client asking for
 * an alg no key has is a start error naming it; discovery lists every usable alg.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { createHash } from 'node:crypto'
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet, type JWK } from 'jose'
import { generatePrivateJwk } from '@grantd/core'
import { ALICE, baseConfig, loginForCode, redeem, startFlowServer, WEB_REDIRECT } from '../authorization-code/flow.js'
import { basic, CLI, postForm, startServer, type RunningServer } from '../helpers/server.js'

const run = promisify(execFile)
const dir = mkdtempSync(join(tmpdir(), 'grantd-algs-'))
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

const client = (id: string, extra: Record<string, unknown> = {}) => ({
  client_id: id, client_secret: `${id}-secret`, grant_types: ['authorization_code', 'client_credentials'],
  redirect_uris: [WEB_REDIRECT], scope: 'openid profile api', ...extra,
})

function config(clients: unknown[], keysFile?: string): Record<string, unknown> {
  const base = baseConfig({ plugins: ['@grantd/grant-authorization-code', '@grantd/grant-client-credentials'], clients })
  return keysFile ? { ...base, keys: { file: keysFile } } : base
}

async function discovery(srv: RunningServer): Promise<Record<string, unknown>> {
  return (await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>
}

async function jwksOf(srv: RunningServer): Promise<JSONWebKeySet> {
  return (await (await fetch(`${srv.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet
}

/** A code flow for this client: the token response, with the ID token and access token headers. */
async function codeFlow(srv: RunningServer, clientId: string) {
  const { code, verifier } = await loginForCode(srv, { client: clientId, scope: 'openid profile api' })
  const res = await redeem(srv, code, verifier, { auth: { authorization: basic(clientId, `${clientId}-secret`) } })
  if (res.status !== 200) throw new Error(res.text)
  const idToken = String(res.json.id_token)
  const accessToken = String(res.json.access_token)
  return { idToken, accessToken, idAlg: decodeProtectedHeader(idToken).alg, atAlg: decodeProtectedHeader(accessToken).alg }
}

function atHash(accessToken: string, alg: string): string {
  const hash = alg === 'ES384' ? 'sha384' : alg === 'EdDSA' ? 'sha512' : 'sha256'
  const digest = createHash(hash).update(accessToken).digest()
  return digest.subarray(0, digest.length / 2).toString('base64url')
}

t.test('ephemeral keys: ES256 and RS256; ID tokens RS256, access tokens ES256 by default; clients choose', async (t) => {
  const srv = await startFlowServer(config([
    client('plain'),
    client('es', { id_token_signed_response_alg: 'ES256' }),
    client('rs', { access_token_signed_response_alg: 'RS256' }),
  ]))
  t.teardown(srv.close)
  t.ok(srv.log.lines.some((l) => /"level":"warn".*ephemeral ES256 and RS256/.test(l)))
  t.notOk(srv.log.lines.some((l) => /no RS256 key/.test(l)), 'no RS256 warning: there is one')
  const jwks = await jwksOf(srv)
  t.match(jwks.keys, [{ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' }, { kty: 'RSA', alg: 'RS256', use: 'sig' }])
  for (const k of jwks.keys) for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi']) t.notOk(m in k, `no private member ${m}`)
  const meta = await discovery(srv)
  t.same(meta.id_token_signing_alg_values_supported, ['ES256', 'RS256'], 'discovery lists every usable alg')
  t.ok((meta.id_token_signing_alg_values_supported as string[]).includes('RS256'), 'OIDC Discovery §3: RS256 MUST be listed')

  const keys = createLocalJWKSet(jwks)
  for (const [id, idAlg, atAlg] of [['plain', 'RS256', 'ES256'], ['es', 'ES256', 'ES256'], ['rs', 'RS256', 'RS256']] as const) {
    const flow = await codeFlow(srv, id)
    t.equal(flow.idAlg, idAlg, `${id}: ID token ${idAlg}`)
    t.equal(flow.atAlg, atAlg, `${id}: access token ${atAlg}`)
    const { payload } = await jwtVerify(flow.idToken, keys, { issuer: srv.url, audience: id, algorithms: [idAlg] })
    t.equal(payload.sub, ALICE.sub)
    t.equal(payload.at_hash, atHash(flow.accessToken, idAlg), `${id}: at_hash uses the ID token's alg`)
    await jwtVerify(flow.accessToken, keys, { issuer: srv.url, typ: 'at+jwt', algorithms: [atAlg] })
    // Userinfo and introspection take the access token whatever alg it was signed with.
    const info = await fetch(`${srv.url}/connect/userinfo`, { headers: { authorization: `Bearer ${flow.accessToken}` } })
    t.equal(info.status, 200, `${id}: userinfo accepts the ${atAlg} access token`)
    t.match(await info.json(), { sub: ALICE.sub })
    const intro = await postForm(`${srv.url}/connect/introspect`, { token: flow.accessToken }, { authorization: basic(id, `${id}-secret`) })
    t.match(intro.json, { active: true, sub: ALICE.sub, client_id: id }, `${id}: introspection`)
  }
  const cc = await postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('rs', 'rs-secret') })
  t.equal(decodeProtectedHeader(String(cc.json.access_token)).alg, 'RS256', 'client_credentials follows access_token_signed_response_alg')
  const ccPlain = await postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('plain', 'plain-secret') })
  t.equal(decodeProtectedHeader(String(ccPlain.json.access_token)).alg, 'ES256')
})

t.test('a key file without RS256 starts with a warning; ID tokens default to the first key\'s alg', async (t) => {
  const ec = await generatePrivateJwk('ES256')
  const ed = await generatePrivateJwk('EdDSA')
  const file = join(dir, 'no-rsa.json')
  writeFileSync(file, JSON.stringify({ keys: [ec, ed] }), { mode: 0o600 })
  const srv = await startFlowServer(config([client('plain'), client('ed', { id_token_signed_response_alg: 'EdDSA', access_token_signed_response_alg: 'EdDSA' })], file))
  t.teardown(srv.close)
  const warning = srv.log.lines.find((l) => /no RS256 key/.test(l))
  t.ok(warning, 'warns')
  t.match(warning, /"level":"warn"/)
  t.match(warning, /grantd keys generate --alg RS256/, 'says how to add one')
  t.same((await discovery(srv)).id_token_signing_alg_values_supported, ['ES256', 'EdDSA'])
  const plain = await codeFlow(srv, 'plain')
  t.same([plain.idAlg, plain.atAlg], ['ES256', 'ES256'])
  t.equal(decodeProtectedHeader(plain.idToken).kid, ec.kid)
  const ed25519 = await codeFlow(srv, 'ed')
  t.same([ed25519.idAlg, ed25519.atAlg], ['EdDSA', 'EdDSA'])
  t.equal(decodeProtectedHeader(ed25519.idToken).kid, ed.kid)
  const { payload } = await jwtVerify(ed25519.idToken, createLocalJWKSet(await jwksOf(srv)), { issuer: srv.url, audience: 'ed' })
  t.equal(payload.at_hash, atHash(ed25519.accessToken, 'EdDSA'))
})

t.test('with RS256 in the file, RS256 ID tokens even when another key signs access tokens', async (t) => {
  const ec = await generatePrivateJwk('ES384')
  const rsa = await generatePrivateJwk('RS256')
  const file = join(dir, 'es384-rs256.json')
  writeFileSync(file, JSON.stringify({ keys: [ec, rsa] }), { mode: 0o600 })
  const srv = await startFlowServer(config([client('plain')], file))
  t.teardown(srv.close)
  t.notOk(srv.log.lines.some((l) => /no RS256 key/.test(l)))
  const flow = await codeFlow(srv, 'plain')
  t.same([flow.idAlg, flow.atAlg], ['RS256', 'ES384'])
  t.equal(decodeProtectedHeader(flow.idToken).kid, rsa.kid)
})

t.test('a client asking for an alg no key has is a start error naming it', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ id_token_signed_response_alg: 'PS256' }, /^clients\[1\]\.id_token_signed_response_alg: no signing key has alg PS256 \(the keys have ES256, RS256\)/],
    [{ access_token_signed_response_alg: 'EdDSA' }, /^clients\[1\]\.access_token_signed_response_alg: no signing key has alg EdDSA/],
  ]
  for (const [extra, message] of cases) {
    await t.rejects(startServer(config([client('ok'), client('bad', extra)])), { name: 'ConfigError', message })
  }
  for (const [value, message] of [
    ['HS256', /^clients\[0\]\.id_token_signed_response_alg: "HS256" is not an alg grantd signs with \(expected one of ES256, ES384, RS256, PS256, EdDSA\)$/],
    ['none', /^clients\[0\]\.id_token_signed_response_alg: "none" is not an alg grantd signs with/],
    [256, /^clients\[0\]\.id_token_signed_response_alg: expected string, got number$/],
  ] as const) {
    await t.rejects(startServer(config([client('bad', { id_token_signed_response_alg: value })])), { name: 'ConfigError', message })
  }
  // From the command line: one line, non-zero exit.
  const ec = await generatePrivateJwk('ES256')
  const keysFile = join(dir, 'es-only.json')
  writeFileSync(keysFile, JSON.stringify({ keys: [ec] }), { mode: 0o600 })
  const file = join(dir, 'bad-alg.json')
  writeFileSync(file, JSON.stringify({ ...config([client('bad', { id_token_signed_response_alg: 'RS256' })], keysFile), issuer: 'http://127.0.0.1:4000' }))
  const res = await cli('check', '--config', file)
  t.not(res.code, 0)
  t.equal(res.stderr, 'grantd: clients[0].id_token_signed_response_alg: no signing key has alg RS256 (the keys have ES256); add one with grantd keys generate --alg RS256\n')
})

t.test('keys generate: ES256 and RS256 unless --alg names one; that file starts without a warning', async (t) => {
  const file = join(dir, 'both.json')
  const res = await cli('keys', 'generate', '--out', file)
  t.equal(res.code, 0, res.stderr)
  t.match(res.stdout, /^wrote ES256 key \S+ and RS256 key \S+ to /)
  const written = JSON.parse(readFileSync(file, 'utf8')) as { keys: JWK[] }
  t.match(written.keys, [{ kty: 'EC', crv: 'P-256', alg: 'ES256', d: String }, { kty: 'RSA', alg: 'RS256', d: String }])
  const one = join(dir, 'one.json')
  const single = await cli('keys', 'generate', '--alg', 'PS256', '--out', one)
  t.equal(single.code, 0, single.stderr)
  t.match((JSON.parse(readFileSync(one, 'utf8')) as { keys: JWK[] }).keys, [{ kty: 'RSA', alg: 'PS256' }])
  t.equal((JSON.parse(readFileSync(one, 'utf8')) as { keys: JWK[] }).keys.length, 1)

  const srv = await startFlowServer(config([client('plain')], file))
  t.teardown(srv.close)
  t.notOk(srv.log.lines.some((l) => /"level":"warn".*(no RS256|ephemeral)/.test(l)))
  const flow = await codeFlow(srv, 'plain')
  t.same([flow.idAlg, flow.atAlg], ['RS256', 'ES256'])
  t.same(decodeProtectedHeader(flow.idToken).kid, written.keys[1]!.kid)
})
