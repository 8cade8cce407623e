import t from 'tap'
import { createHash } from 'node:crypto'
import * as oauth from 'oauth4webapi'
import * as client from 'openid-client'
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose'
import { baseConfig, signInAt, SPA_REDIRECT, startFlowServer, WEB_REDIRECT } from './flow.js'

/**
 * "Done when a certified client library completes the flow with PKCE unmodified": both
 * panva libraries (OpenID certified) against a real server, with their strict checks,
 * plus the ID token checks they leave to the caller (signature, at_hash).
 */

function atHash(accessToken: string): string {
  return createHash('sha256').update(accessToken).digest().subarray(0, 16).toString('base64url')
}

t.test('oauth4webapi: code flow with PKCE, userinfo, refresh, revocation, introspection', async (t) => {
  const srv = await startFlowServer(baseConfig())
  t.teardown(srv.close)
  const issuer = new URL(srv.url)
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', [oauth.allowInsecureRequests]: true }))
  const web: oauth.Client = { client_id: 'web' }
  const auth = oauth.ClientSecretBasic('web-secret')
  const insecure = { [oauth.allowInsecureRequests]: true }

  const codeVerifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  const nonce = oauth.generateRandomNonce()
  const url = new URL(as.authorization_endpoint!)
  url.searchParams.set('client_id', web.client_id)
  url.searchParams.set('redirect_uri', WEB_REDIRECT)
  url.searchParams.set('response_type', 'code')
  url.searchParams.set('scope', 'openid profile email offline_access api')
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier))
  url.searchParams.set('code_challenge_method', 'S256')
  url.searchParams.set('state', state)
  url.searchParams.set('nonce', nonce)
  url.searchParams.set('max_age', '300')

  const callback = await signInAt(url)
  // Checks state and RFC 9207 iss (the server advertises authorization_response_iss_parameter_supported).
  const params = oauth.validateAuthResponse(as, web, callback, state)
  const response = await oauth.authorizationCodeGrantRequest(as, web, auth, params, WEB_REDIRECT, codeVerifier, insecure)
  const result = await oauth.processAuthorizationCodeResponse(as, web, response, { expectedNonce: nonce, requireIdToken: true, maxAge: 300 })
  const claims = oauth.getValidatedIdTokenClaims(result)!
  t.equal(claims.sub, 'u-alice')
  t.equal(claims.iss, srv.url)
  t.equal(claims.aud, 'web')
  t.equal(claims.azp, 'web')
  t.equal(claims.nonce, nonce)
  t.equal(claims.at_hash, atHash(result.access_token), 'at_hash matches the access token (ES256 → SHA-256)')
  const jwks = createLocalJWKSet((await (await fetch(as.jwks_uri!)).json()) as JSONWebKeySet)
  await t.resolves(jwtVerify(result.id_token!, jwks, { issuer: srv.url, audience: 'web', typ: 'JWT' }), 'ID token signature')

  // RFC 9068 access token, validated as a resource server would.
  const atClaims = await oauth.validateJwtAccessToken(as, new Request('http://rs.test/', { headers: { authorization: `Bearer ${result.access_token}` } }), 'web', insecure)
  t.equal(atClaims.sub, 'u-alice')
  t.equal(atClaims.client_id, 'web')

  const info = await oauth.processUserInfoResponse(as, web, claims.sub, await oauth.userInfoRequest(as, web, result.access_token, insecure))
  t.equal(info.email, 'alice@example.com')

  const refreshed = await oauth.processRefreshTokenResponse(as, web, await oauth.refreshTokenGrantRequest(as, web, auth, result.refresh_token!, insecure))
  t.ok(refreshed.refresh_token)
  t.equal(oauth.getValidatedIdTokenClaims(refreshed)!.sub, 'u-alice')

  const active = await oauth.processIntrospectionResponse(as, web, await oauth.introspectionRequest(as, web, auth, refreshed.access_token, insecure))
  t.equal(active.active, true)
  t.equal(active.sub, 'u-alice')
  await oauth.processRevocationResponse(await oauth.revocationRequest(as, web, auth, refreshed.refresh_token!, insecure))
  const inactive = await oauth.processIntrospectionResponse(as, web, await oauth.introspectionRequest(as, web, auth, refreshed.access_token, insecure))
  t.same(inactive, { active: false })
})

t.test('openid-client v6: confidential and public clients, with non-repudiation checks', async (t) => {
  const srv = await startFlowServer(baseConfig())
  t.teardown(srv.close)

  t.test('web (client_secret_basic)', async (t) => {
    const config = await client.discovery(new URL(srv.url), 'web', undefined, client.ClientSecretBasic('web-secret'), { execute: [client.allowInsecureRequests] })
    client.enableNonRepudiationChecks(config)
    const codeVerifier = client.randomPKCECodeVerifier()
    const state = client.randomState()
    const nonce = client.randomNonce()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: WEB_REDIRECT, scope: 'openid profile email offline_access api', state, nonce,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256',
    })
    const callback = await signInAt(url)
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true })
    const claims = tokens.claims()!
    t.equal(claims.sub, 'u-alice')
    t.equal(claims.at_hash, atHash(tokens.access_token))
    const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
    t.equal(info.name, 'Alice')
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!)
    t.equal(refreshed.claims()!.sub, 'u-alice')
    const intro = await client.tokenIntrospection(config, refreshed.refresh_token!)
    t.equal(intro.active, true)
    t.equal(intro.client_id, 'web')
    await client.tokenRevocation(config, refreshed.refresh_token!)
    t.equal((await client.tokenIntrospection(config, refreshed.access_token)).active, false)
  })

  t.test('spa (none): PKCE, refresh, self-revocation', async (t) => {
    const config = await client.discovery(new URL(srv.url), 'spa', undefined, client.None(), { execute: [client.allowInsecureRequests] })
    const codeVerifier = client.randomPKCECodeVerifier()
    const state = client.randomState()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: SPA_REDIRECT, scope: 'openid api offline_access', state,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256',
    })
    const callback = await signInAt(url)
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: codeVerifier, expectedState: state, idTokenExpected: true })
    t.equal(tokens.claims()!.aud, 'spa')
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!)
    t.ok(refreshed.access_token)
    await client.tokenRevocation(config, refreshed.refresh_token!)
    const refused = await client.refreshTokenGrant(config, refreshed.refresh_token!).then(() => undefined, (err: unknown) => err)
    t.equal((refused as { error?: string } | undefined)?.error, 'invalid_grant', 'the revoked refresh token is refused')
  })
})
