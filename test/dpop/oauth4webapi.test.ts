/**
 * RFC 9449 with a certified client as the judge: oauth4webapi's own DPoP handle does
 * client_credentials, the code flow of a public client, refresh and userinfo against
 * @grantd/dpop, with and without server-provided nonces (its nonce retry included).
 */
import t from 'tap'
import * as oauth from 'oauth4webapi'
import { decodeJwt, generateKeyPair } from 'jose'
import { signInAt, SPA_REDIRECT } from '../authorization-code/flow.js'
import type { RunningServer } from '../helpers/server.js'
import { makeProof, proofKey, startDpopServer } from './proofs.js'

const insecure = { [oauth.allowInsecureRequests]: true } as const

async function discover(srv: RunningServer): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(srv.url)
  return oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }))
}

async function dpopHandle(client: oauth.Client): Promise<oauth.DPoPHandle> {
  return oauth.DPoP(client, (await generateKeyPair('ES256')) as Parameters<typeof oauth.DPoP>[1])
}

/** The retry oauth4webapi's docs prescribe: once, when the server asks for its nonce. */
async function withNonceRetry<T>(attempt: () => Promise<T>): Promise<{ result: T; retried: boolean }> {
  try {
    return { result: await attempt(), retried: false }
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err
    return { result: await attempt(), retried: true }
  }
}

/** A public client signs in through the browser flow and redeems the code with a DPoP proof. */
async function spaCodeFlow(srv: RunningServer, as: oauth.AuthorizationServer, spa: oauth.Client, DPoP: oauth.DPoPHandle) {
  const verifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  const url = new URL(as.authorization_endpoint!)
  url.searchParams.set('client_id', 'spa')
  url.searchParams.set('redirect_uri', SPA_REDIRECT)
  url.searchParams.set('response_type', 'code')
  url.searchParams.set('scope', 'openid api offline_access')
  url.searchParams.set('state', state)
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier))
  url.searchParams.set('code_challenge_method', 'S256')
  const callback = await signInAt(url)
  const params = oauth.validateAuthResponse(as, spa, callback, state)
  return withNonceRetry(async () => oauth.processAuthorizationCodeResponse(as, spa,
    await oauth.authorizationCodeGrantRequest(as, spa, oauth.None(), params, SPA_REDIRECT, verifier, { DPoP, ...insecure })))
}

for (const nonces of [false, true]) {
  t.test(`oauth4webapi DPoP, nonces ${nonces ? 'on' : 'off'}`, async (t) => {
    const srv = await startDpopServer({ dpop: { nonces } })
    t.teardown(srv.close)
    const as = await discover(srv)
    t.ok(as.dpop_signing_alg_values_supported?.includes('ES256'), 'discovery lists the proof algs')

    t.test('client_credentials: a DPoP token bound to the handle key', async (t) => {
      const svc: oauth.Client = { client_id: 'svc' }
      const DPoP = await dpopHandle(svc)
      const { result, retried } = await withNonceRetry(async () => oauth.processClientCredentialsResponse(as, svc,
        await oauth.clientCredentialsGrantRequest(as, svc, oauth.ClientSecretBasic('svc-secret'), new URLSearchParams({ scope: 'api' }), { DPoP, ...insecure })))
      t.equal(retried, nonces, nonces ? 'the server asked for its nonce once' : 'no nonce needed')
      t.equal(result.token_type, 'dpop')
      t.same(decodeJwt(result.access_token).cnf, { jkt: await DPoP.calculateThumbprint() })
      t.notOk('refresh_token' in result)
      // The same handle keeps working: the nonce it learnt is still honoured.
      const again = await oauth.processClientCredentialsResponse(as, svc,
        await oauth.clientCredentialsGrantRequest(as, svc, oauth.ClientSecretBasic('svc-secret'), new URLSearchParams({ scope: 'api' }), { DPoP, ...insecure }))
      t.equal(again.token_type, 'dpop')
    })

    t.test('public client: code flow, refresh and userinfo, all with DPoP', async (t) => {
      const spa: oauth.Client = { client_id: 'spa' }
      const DPoP = await dpopHandle(spa)
      const jkt = await DPoP.calculateThumbprint()
      const { result: tokens } = await spaCodeFlow(srv, as, spa, DPoP)
      t.equal(tokens.token_type, 'dpop')
      t.same(decodeJwt(tokens.access_token).cnf, { jkt })
      t.ok(tokens.refresh_token, 'a refresh token')

      const { result: info } = await withNonceRetry(async () => oauth.processUserInfoResponse(as, spa, decodeJwt(tokens.access_token).sub!,
        await oauth.userInfoRequest(as, spa, tokens.access_token, { DPoP, ...insecure })))
      t.equal(info.sub, 'u-alice')

      const { result: refreshed } = await withNonceRetry(async () => oauth.processRefreshTokenResponse(as, spa,
        await oauth.refreshTokenGrantRequest(as, spa, oauth.None(), tokens.refresh_token!, { DPoP, ...insecure })))
      t.equal(refreshed.token_type, 'dpop')
      t.same(decodeJwt(refreshed.access_token).cnf, { jkt }, 'the refreshed token is bound to the same key')
      t.not(refreshed.refresh_token, tokens.refresh_token, 'rotated')

      // Another key (a stolen refresh token in another client's hands) is refused, without spending the token.
      const thief = await dpopHandle(spa)
      const stolen = await withNonceRetry(async () => oauth.processRefreshTokenResponse(as, spa,
        await oauth.refreshTokenGrantRequest(as, spa, oauth.None(), refreshed.refresh_token!, { DPoP: thief, ...insecure }))).catch((e: unknown) => e)
      t.ok(stolen instanceof oauth.ResponseBodyError, 'refused')
      t.equal((stolen as oauth.ResponseBodyError).error, 'invalid_grant')
      const owner = await withNonceRetry(async () => oauth.processRefreshTokenResponse(as, spa,
        await oauth.refreshTokenGrantRequest(as, spa, oauth.None(), refreshed.refresh_token!, { DPoP, ...insecure })))
      t.equal(owner.result.token_type, 'dpop', 'the key holder still refreshes')
    })

    t.test('a resource server judged by oauth4webapi (validateJwtAccessToken, requireDPoP) accepts the bound token', async (t) => {
      const key = await proofKey()
      const htu = `${srv.url}/connect/token`
      const first = await fetch(htu, { method: 'POST', body: 'grant_type=client_credentials&scope=api', headers: {
        'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('svc:svc-secret').toString('base64')}`, dpop: await makeProof(key, { htu }) } })
      const nonce = first.headers.get('dpop-nonce') ?? undefined
      const res = first.status === 200 ? first : await fetch(htu, { method: 'POST', body: 'grant_type=client_credentials&scope=api', headers: {
        'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('svc:svc-secret').toString('base64')}`, dpop: await makeProof(key, { htu, ...(nonce ? { nonce } : {}) }) } })
      const at = ((await res.json()) as { access_token: string }).access_token
      const api = 'http://rs.test/orders'
      const request = (proofKeyUsed = key) => makeProof(proofKeyUsed, { htm: 'GET', htu: api, accessToken: at })
        .then((dpop) => new Request(api, { headers: { authorization: `DPoP ${at}`, dpop } }))
      const claims = await oauth.validateJwtAccessToken(as, await request(), 'svc', { requireDPoP: true, ...insecure })
      t.same(claims.cnf, { jkt: key.jkt })
      const other = await proofKey()
      await t.rejects(oauth.validateJwtAccessToken(as, await request(other), 'svc', { requireDPoP: true, ...insecure }), 'a proof by another key is refused by the RS library too')
    })

    t.test('introspection answers cnf and token_type DPoP', async (t) => {
      const web: oauth.Client = { client_id: 'web' }
      const DPoP = await dpopHandle(web)
      const { result } = await withNonceRetry(async () => oauth.processClientCredentialsResponse(as, web,
        await oauth.clientCredentialsGrantRequest(as, web, oauth.ClientSecretBasic('web-secret'), new URLSearchParams({ scope: 'api' }), { DPoP, ...insecure })))
      const info = await oauth.processIntrospectionResponse(as, web,
        await oauth.introspectionRequest(as, web, oauth.ClientSecretBasic('web-secret'), result.access_token, insecure))
      t.equal(info.active, true)
      t.equal(info.token_type, 'DPoP')
      t.same(info.cnf, { jkt: await DPoP.calculateThumbprint() })
    })
  })
}
