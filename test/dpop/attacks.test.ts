/**
 * RFC 9449 attacks, each with a hand-made proof (jose) so exactly one thing is wrong:
 * replay, wrong htm/htu, stale iat (with and without a nonce), alg none / HS256, a private
 * key in the header, a refresh with another key, a bound token as Bearer at userinfo, a
 * missing proof for a dpop_bound_access_tokens client, a grant minting its own cnf.
 */
import t, { type Test } from 'tap'
import { decodeJwt, exportJWK, generateKeyPair, generateSecret, SignJWT } from 'jose'
import { basic, postForm, startServer, type RunningServer } from '../helpers/server.js'
import { loginForCode, redeem, SPA_REDIRECT } from '../authorization-code/flow.js'
import { DPOP_CLIENTS, makeProof, proofKey, startDpopServer, unsignedProof, type ProofKey } from './proofs.js'

const SVC = { authorization: basic('svc', 'svc-secret') }
const now = () => Math.floor(Date.now() / 1000)

function tokenRequest(srv: RunningServer, proof: string | undefined, form: Record<string, string> = { grant_type: 'client_credentials', scope: 'api' }, auth: Record<string, string> = SVC, path = '/connect/token') {
  return postForm(`${srv.url}${path}`, form, { ...auth, ...(proof !== undefined ? { dpop: proof } : {}) })
}

async function userinfo(srv: RunningServer, authorization: string, proof?: string) {
  const res = await fetch(`${srv.url}/connect/userinfo`, { headers: { authorization, ...(proof !== undefined ? { dpop: proof } : {}) } })
  const text = await res.text()
  let json: Record<string, unknown> = {}
  try { json = JSON.parse(text) as Record<string, unknown> } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, json }
}

/** A DPoP-bound token for the public client `spa` (code flow), with its refresh token. */
async function spaTokens(srv: RunningServer, key: ProofKey): Promise<{ access_token: string; refresh_token: string }> {
  const { code, verifier } = await loginForCode(srv, { client: 'spa', scope: 'openid api offline_access' })
  const res = await postForm(`${srv.url}/connect/token`, { grant_type: 'authorization_code', code, redirect_uri: SPA_REDIRECT, code_verifier: verifier, client_id: 'spa' },
    { dpop: await makeProof(key, { htu: `${srv.url}/connect/token` }) })
  if (res.status !== 200) throw new Error(res.text)
  return res.json as { access_token: string; refresh_token: string }
}

t.test('token endpoint proofs', async (t) => {
  const srv = await startDpopServer()
  t.teardown(srv.close)
  const htu = `${srv.url}/connect/token`
  const key = await proofKey()
  const refused = (t: Test, res: Awaited<ReturnType<typeof tokenRequest>>, why: string) => {
    t.equal(res.status, 400, `${why}: ${res.text}`)
    t.equal(res.json.error, 'invalid_dpop_proof', why)
    t.equal(res.headers.get('cache-control'), 'no-store')
    t.notOk('access_token' in res.json)
  }

  t.test('a good proof: token_type DPoP and cnf.jkt (RFC 7638 thumbprint)', async (t) => {
    const res = await tokenRequest(srv, await makeProof(key, { htu }))
    t.equal(res.status, 200, res.text)
    t.equal(res.json.token_type, 'DPoP')
    t.same(decodeJwt(res.json.access_token as string).cnf, { jkt: key.jkt })
    for (const alg of ['RS256', 'PS256', 'EdDSA']) {
      const k = await proofKey(alg)
      const r = await tokenRequest(srv, await makeProof(k, { htu }))
      t.equal(r.status, 200, `${alg}: ${r.text}`)
      t.same(decodeJwt(r.json.access_token as string).cnf, { jkt: k.jkt })
    }
  })

  t.test('without a proof: a Bearer token, no cnf', async (t) => {
    const res = await tokenRequest(srv, undefined)
    t.equal(res.json.token_type, 'Bearer')
    t.notOk('cnf' in decodeJwt(res.json.access_token as string))
  })

  t.test('replay: the same proof twice', async (t) => {
    const proof = await makeProof(key, { htu })
    t.equal((await tokenRequest(srv, proof)).status, 200)
    refused(t, await tokenRequest(srv, proof), 'replayed jti')
    // The same jti in a new proof (new iat, so new signature bytes) is a replay too.
    const jti = 'fixed-jti-' + Math.random()
    t.equal((await tokenRequest(srv, await makeProof(key, { htu, jti }))).status, 200)
    refused(t, await tokenRequest(srv, await makeProof(key, { htu, jti, iat: now() - 1 })), 'replayed jti, re-signed')
  })

  t.test('htm and htu', async (t) => {
    refused(t, await tokenRequest(srv, await makeProof(key, { htu, htm: 'GET' })), 'wrong htm')
    refused(t, await tokenRequest(srv, await makeProof(key, { htu, htm: 'post' })), 'htm is case-sensitive')
    refused(t, await tokenRequest(srv, await makeProof(key, { htu: `${srv.url}/connect/userinfo` })), 'htu of another endpoint')
    refused(t, await tokenRequest(srv, await makeProof(key, { htu: htu.replace('127.0.0.1', 'evil.example') })), 'htu of another host')
    refused(t, await tokenRequest(srv, await makeProof(key, { htu: htu.replace('http:', 'https:') })), 'htu with another scheme')
    refused(t, await tokenRequest(srv, await makeProof(key, { htu: `${srv.url}/oauth2/token` })), 'htu of the alias path, sent to /connect/token')
    refused(t, await tokenRequest(srv, await makeProof(key, { htu: 'not a url' })), 'htu not a URL')
    // RFC 9449 §4.3: query and fragment are ignored; RFC 3986 §6.2.2/6.2.3 normalisation applies.
    t.equal((await tokenRequest(srv, await makeProof(key, { htu: `${htu}?x=1#f` }))).status, 200, 'query and fragment ignored')
    t.equal((await tokenRequest(srv, await makeProof(key, { htu: htu.replace('http://', 'HTTP://') }))).status, 200, 'scheme case-normalised')
    t.equal((await tokenRequest(srv, await makeProof(key, { htu: htu.replace('/token', '/%74oken') }))).status, 200, 'unreserved percent-encoding normalised')
    t.equal((await tokenRequest(srv, await makeProof(key, { htu: `${srv.url}/oauth2/token` }), undefined, SVC, '/oauth2/token')).status, 200, 'the alias path with its own htu')
  })

  t.test('iat within 60 s', async (t) => {
    refused(t, await tokenRequest(srv, await makeProof(key, { htu, iat: now() - 120 })), 'stale iat')
    refused(t, await tokenRequest(srv, await makeProof(key, { htu, iat: now() + 120 })), 'iat in the future')
    t.equal((await tokenRequest(srv, await makeProof(key, { htu, iat: now() - 30 }))).status, 200, '30 s old is fine')
  })

  t.test('alg none, HS256, typ, private key in the header, a foreign signature', async (t) => {
    const payload = { jti: 'none-' + Math.random(), htm: 'POST', htu, iat: now() }
    refused(t, await tokenRequest(srv, unsignedProof({ alg: 'none', typ: 'dpop+jwt', jwk: key.publicJwk }, payload)), 'alg none')
    const secret = await generateSecret('HS256', { extractable: true })
    const oct = await exportJWK(secret)
    const hs = await new SignJWT({ jti: 'hs-' + Math.random(), htm: 'POST', htu }).setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: oct }).setIssuedAt().sign(secret)
    refused(t, await tokenRequest(srv, hs), 'HS256 with a symmetric jwk')
    refused(t, await tokenRequest(srv, await makeProof(key, { htu, typ: 'JWT' })), 'typ JWT')
    const pair = await generateKeyPair('ES256', { extractable: true })
    const privateJwk = await exportJWK(pair.privateKey)
    refused(t, await tokenRequest(srv, await makeProof({ ...key, privateKey: pair.privateKey }, { htu, jwk: privateJwk })), 'private key in the jwk header')
    const other = await proofKey()
    refused(t, await tokenRequest(srv, await makeProof({ ...key, privateKey: other.privateKey }, { htu })), 'signed by another key than the header names')
    refused(t, await tokenRequest(srv, 'a.b.c'), 'garbage')
    refused(t, await tokenRequest(srv, `${await makeProof(key, { htu })}, ${await makeProof(key, { htu })}`), 'two proofs')
  })

  t.test('malformed proofs are invalid_dpop_proof, never a 500', async (t) => {
    const sign = (payload: Record<string, unknown>, header: Record<string, unknown> = {}) =>
      new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk, ...header }).sign(key.privateKey)
    const base = { jti: 'm-' + Math.random(), htm: 'POST', htu, iat: now() }
    const cases: Array<[string, string]> = [
      ['htu a number', await sign({ ...base, htu: 5 })],
      ['iat a string', await sign({ ...base, iat: 'now' })],
      ['jti missing', await sign({ htm: 'POST', htu, iat: now() })],
      ['jti an object', await sign({ ...base, jti: { a: 1 } })],
      ['jti too long', await sign({ ...base, jti: 'j'.repeat(300) })],
      ['htm missing', await sign({ jti: 'x-' + Math.random(), htu, iat: now() })],
      ['exp in the past', await sign({ ...base, jti: 'e-' + Math.random(), exp: now() - 10 })],
      ['jwk a string', unsignedProof({ alg: 'ES256', typ: 'dpop+jwt', jwk: 'key' }, base)],
      ['jwk an array', unsignedProof({ alg: 'ES256', typ: 'dpop+jwt', jwk: [key.publicJwk] }, base)],
      ['jwk without x', unsignedProof({ alg: 'ES256', typ: 'dpop+jwt', jwk: { kty: 'EC', crv: 'P-256', y: key.publicJwk.y } }, base)],
      ['jwk of another curve than alg', unsignedProof({ alg: 'ES384', typ: 'dpop+jwt', jwk: key.publicJwk }, base)],
      ['no jwk', unsignedProof({ alg: 'ES256', typ: 'dpop+jwt' }, base)],
      ['payload not an object', `${Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk })).toString('base64url')}.${Buffer.from('[1]').toString('base64url')}.c2ln`],
      ['header not JSON', `${Buffer.from('{').toString('base64url')}.e30.c2ln`],
      ['unknown crit', unsignedProof({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk, crit: ['x-unknown'], 'x-unknown': 1 }, base)],
      ['huge', 'a'.repeat(9000) + '.b.c'],
    ]
    for (const [why, proof] of cases) refused(t, await tokenRequest(srv, proof), why)
  })

  t.test('dpop_bound_access_tokens: a proof is required', async (t) => {
    const auth = { authorization: basic('bound', 'bound-secret') }
    refused(t, await tokenRequest(srv, undefined, undefined, auth), 'no proof')
    const ok = await tokenRequest(srv, await makeProof(key, { htu }), undefined, auth)
    t.equal(ok.status, 200)
    t.equal(ok.json.token_type, 'DPoP')
  })

  t.test('a refused proof spends no code', async (t) => {
    const { code, verifier } = await loginForCode(srv, { client: 'spa', scope: 'openid api offline_access' })
    const form = { grant_type: 'authorization_code', code, redirect_uri: SPA_REDIRECT, code_verifier: verifier, client_id: 'spa' }
    refused(t, await tokenRequest(srv, await makeProof(key, { htu, htm: 'GET' }), form, {}), 'bad proof')
    const res = await tokenRequest(srv, await makeProof(key, { htu }), form, {})
    t.equal(res.status, 200, 'the code still redeems')
  })
})

t.test('refresh tokens of public clients are bound to the key (RFC 9449 §5)', async (t) => {
  const srv = await startDpopServer()
  t.teardown(srv.close)
  const htu = `${srv.url}/connect/token`
  const key = await proofKey()
  const tokens = await spaTokens(srv, key)
  const refresh = (proof: string | undefined) => tokenRequest(srv, proof, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: 'spa' }, {})

  const other = await proofKey()
  const stolen = await refresh(await makeProof(other, { htu }))
  t.equal(stolen.status, 400)
  t.equal(stolen.json.error, 'invalid_grant', 'another key')
  const bare = await refresh(undefined)
  t.equal(bare.json.error, 'invalid_grant', 'no proof at all')
  const mine = await refresh(await makeProof(key, { htu }))
  t.equal(mine.status, 200, 'the token was not spent by the refusals')
  t.same(decodeJwt(mine.json.access_token as string).cnf, { jkt: key.jkt })

  t.test('a confidential client\'s refresh token is not bound to a key (bound to its credentials)', async (t) => {
    const { code, verifier } = await loginForCode(srv, { client: 'web' })
    const first = await postForm(htu, { grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1:5000/callback', code_verifier: verifier },
      { authorization: basic('web', 'web-secret'), dpop: await makeProof(key, { htu }) })
    t.equal(first.json.token_type, 'DPoP')
    const res = await postForm(htu, { grant_type: 'refresh_token', refresh_token: first.json.refresh_token as string },
      { authorization: basic('web', 'web-secret'), dpop: await makeProof(other, { htu }) })
    t.equal(res.status, 200, res.text)
    t.same(decodeJwt(res.json.access_token as string).cnf, { jkt: other.jkt }, 'the new access token is bound to the new key')
  })
})

t.test('userinfo', async (t) => {
  const srv = await startDpopServer()
  t.teardown(srv.close)
  const ui = `${srv.url}/connect/userinfo`
  const key = await proofKey()
  const { access_token: at } = await spaTokens(srv, key)

  const ok = await userinfo(srv, `DPoP ${at}`, await makeProof(key, { htm: 'GET', htu: ui, accessToken: at }))
  t.equal(ok.status, 200)
  t.equal(ok.json.sub, 'u-alice')

  const challenged = (t: Test, res: Awaited<ReturnType<typeof userinfo>>, error: string, why: string) => {
    t.equal(res.status, 401, why)
    t.equal(res.json.error, error, why)
    t.match(res.headers.get('www-authenticate') ?? '', new RegExp(`^DPoP .*error="${error}"`), `${why}: DPoP challenge`)
    t.notOk('sub' in res.json)
  }
  challenged(t, await userinfo(srv, `Bearer ${at}`), 'invalid_token', 'a DPoP-bound token as Bearer')
  challenged(t, await userinfo(srv, `Bearer ${at}`, await makeProof(key, { htm: 'GET', htu: ui, accessToken: at })), 'invalid_token', 'as Bearer even with a proof')
  const other = await proofKey()
  challenged(t, await userinfo(srv, `DPoP ${at}`, await makeProof(other, { htm: 'GET', htu: ui, accessToken: at })), 'invalid_token', 'a proof by another key')
  challenged(t, await userinfo(srv, `DPoP ${at}`, await makeProof(key, { htm: 'GET', htu: ui })), 'invalid_dpop_proof', 'no ath')
  challenged(t, await userinfo(srv, `DPoP ${at}`, await makeProof(key, { htm: 'GET', htu: ui, accessToken: 'another-token' })), 'invalid_dpop_proof', 'ath of another token')
  challenged(t, await userinfo(srv, `DPoP ${at}`, await makeProof(key, { htm: 'POST', htu: ui, accessToken: at })), 'invalid_dpop_proof', 'wrong htm')
  challenged(t, await userinfo(srv, `DPoP ${at}`), 'invalid_dpop_proof', 'no proof')
  const proof = await makeProof(key, { htm: 'GET', htu: ui, accessToken: at })
  t.equal((await userinfo(srv, `DPoP ${at}`, proof)).status, 200)
  challenged(t, await userinfo(srv, `DPoP ${at}`, proof), 'invalid_dpop_proof', 'replayed proof')

  // A Bearer token presented with the DPoP scheme is not DPoP-bound: refused.
  const { code, verifier } = await loginForCode(srv, { client: 'web' })
  const bearer = (await redeem(srv, code, verifier)).json.access_token as string
  challenged(t, await userinfo(srv, `DPoP ${bearer}`, await makeProof(key, { htm: 'GET', htu: ui, accessToken: bearer })), 'invalid_token', 'unbound token with the DPoP scheme')
  t.equal((await userinfo(srv, `Bearer ${bearer}`)).status, 200, 'and as Bearer it still works')
})

t.test('nonces: iat still within 60 s; a made-up nonce is refused', async (t) => {
  const srv = await startDpopServer({ dpop: { nonces: true } })
  t.teardown(srv.close)
  const htu = `${srv.url}/connect/token`
  const key = await proofKey()
  const first = await tokenRequest(srv, await makeProof(key, { htu }))
  t.equal(first.status, 400)
  t.equal(first.json.error, 'use_dpop_nonce')
  const nonce = first.headers.get('dpop-nonce')
  t.match(nonce, /^[A-Za-z0-9_-]{43}$/)
  const stale = await tokenRequest(srv, await makeProof(key, { htu, nonce: nonce!, iat: now() - 120 }))
  t.equal(stale.json.error, 'invalid_dpop_proof', 'a nonce does not excuse a stale iat')
  const madeUp = await tokenRequest(srv, await makeProof(key, { htu, nonce: 'A'.repeat(43) }))
  t.equal(madeUp.json.error, 'use_dpop_nonce')
  const good = await tokenRequest(srv, await makeProof(key, { htu, nonce: nonce! }))
  t.equal(good.status, 200, good.text)
  // A current nonce comes with the answer (RFC 9449 §8); the window may have rolled over since the first
  // request, so it is the same nonce or the next window's: either way one the server accepts.
  const fresh = good.headers.get('dpop-nonce')
  t.match(fresh, /^[A-Za-z0-9_-]{43}$/, 'a nonce with the answer')
  const again = await tokenRequest(srv, await makeProof(key, { htu, nonce: fresh! }))
  t.equal(again.status, 200, 'the nonce the answer carried is accepted')
})

t.test('cnf belongs to the core: a grant cannot mint it', async (t) => {
  const srv = await startServer({
    plugins: ['./test/dpop/cnf-grant-plugin.ts', { use: '@grantd/dpop' }],
    clients: [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['urn:test:cnf-grant'], scope: 'api' }],
  })
  t.teardown(srv.close)
  const res = await tokenRequest(srv, undefined, { grant_type: 'urn:test:cnf-grant' })
  t.equal(res.status, 200, res.text)
  const claims = decodeJwt(res.json.access_token as string)
  t.equal(claims.note, 'kept', 'other grant claims are kept')
  t.notOk('cnf' in claims, 'no cnf the client never proved')
  t.equal(res.json.token_type, 'Bearer')
  const key = await proofKey()
  const bound = await tokenRequest(srv, await makeProof(key, { htu: `${srv.url}/connect/token` }), { grant_type: 'urn:test:cnf-grant' })
  t.same(decodeJwt(bound.json.access_token as string).cnf, { jkt: key.jkt }, 'with a proof, the proved key, not the grant\'s')
})

t.test('boot checks', async (t) => {
  await t.rejects(startServer({ plugins: ['@grantd/grant-client-credentials'], clients: [DPOP_CLIENTS[3]] }), /clients\[0\]\.dpop_bound_access_tokens: needs a DPoP plugin/)
  await t.rejects(startServer({ plugins: [{ use: '@grantd/dpop', options: { algorithms: ['HS256'] } }] }), /algorithms\[0\]/)
  await t.rejects(startServer({ plugins: [{ use: '@grantd/dpop', options: { nonces: 'yes' } }] }), /nonces: expected boolean/)
  await t.rejects(startServer({ plugins: [{ use: '@grantd/dpop', options: { nonceSecret: 'short' } }] }), /nonceSecret/)
  await t.rejects(startServer({ clients: [{ ...DPOP_CLIENTS[2], dpop_bound_access_tokens: 'yes' }], plugins: ['@grantd/grant-client-credentials', '@grantd/dpop'] }), /clients\[0\]\.dpop_bound_access_tokens/)
  const srv = await startServer({ plugins: ['@grantd/grant-client-credentials'], clients: [DPOP_CLIENTS[2]] })
  const meta = await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json() as Record<string, unknown>
  t.notOk('dpop_signing_alg_values_supported' in meta, 'no DPoP in discovery unless loaded')
  await srv.close()
})
