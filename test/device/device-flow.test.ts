/**
 * RFC 8628 judged by oauth4webapi's own device flow (deviceAuthorizationRequest,
 * processDeviceAuthorizationResponse, deviceCodeGrantRequest polling) while a user approves
 * over HTTP in parallel: /device, the code, the login form, the confirmation page, Allow.
 */
import t from 'tap'
import * as oauth from 'oauth4webapi'
import { postForm, type RunningServer } from '../helpers/server.js'
import { approveInBrowser, CookieJar, deviceConfig, DEVICE_GRANT, get, loginForm, post, startDeviceServer, submitCode } from './flow.js'

const insecure = { [oauth.allowInsecureRequests]: true }

async function discover(srv: RunningServer): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(srv.url)
  return oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }))
}

/** The OAuth error oauth4webapi reports for a response. */
async function errorOf(result: Promise<unknown>): Promise<string | undefined> {
  try {
    await result
    return undefined
  } catch (err) {
    if (err instanceof oauth.ResponseBodyError) return err.error
    throw err
  }
}

/** Poll like a device: wait `interval`, ask, until something other than authorization_pending. */
async function pollUntilDone(as: oauth.AuthorizationServer, client: oauth.Client, auth: oauth.ClientAuth, deviceCode: string, interval: number): Promise<oauth.TokenEndpointResponse | oauth.ResponseBodyError> {
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, interval * 1000 + 100))
    try {
      return await oauth.processDeviceCodeResponse(as, client, await oauth.deviceCodeGrantRequest(as, client, auth, deviceCode, insecure))
    } catch (err) {
      if (err instanceof oauth.ResponseBodyError && err.error === 'authorization_pending') continue
      if (err instanceof oauth.ResponseBodyError) return err
      throw err
    }
  }
  throw new Error('never finished')
}

t.test('device flow with oauth4webapi: approve over HTTP while the device polls', async (t) => {
  const srv = await startDeviceServer(deviceConfig({ device: { interval: 1 } }))
  t.teardown(() => srv.close())
  const as = await discover(srv)
  t.equal(as.device_authorization_endpoint, `${srv.url}/connect/deviceauthorization`, 'discovery names the device endpoint')
  t.ok((as.grant_types_supported ?? []).includes(DEVICE_GRANT), 'grant_types_supported lists the device grant')

  const tv: oauth.Client = { client_id: 'tv' }
  const res = await oauth.deviceAuthorizationRequest(as, tv, oauth.None(), { scope: 'openid profile offline_access' }, insecure)
  t.equal(res.headers.get('cache-control'), 'no-store')
  const device = await oauth.processDeviceAuthorizationResponse(as, tv, res)
  t.match(device.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/, 'user code XXXX-XXXX from the RFC 8628 §6.1 alphabet')
  t.ok(Buffer.from(device.device_code, 'base64url').length >= 32, 'device_code carries at least 256 bits')
  t.equal(device.verification_uri, `${srv.url}/device`)
  t.equal(device.verification_uri_complete, `${srv.url}/device?user_code=${device.user_code}`)
  t.equal(device.expires_in, 600)
  t.equal(device.interval, 1)

  // The first poll, before the user did anything.
  const early = await oauth.deviceCodeGrantRequest(as, tv, oauth.None(), device.device_code, insecure)
  t.equal(await errorOf(oauth.processDeviceCodeResponse(as, tv, early)), 'authorization_pending')

  // The user types the code in lower case with a space instead of the dash: it is normalised.
  const typed = device.user_code.toLowerCase().replace('-', ' ')
  const [tokens, approval] = await Promise.all([
    pollUntilDone(as, tv, oauth.None(), device.device_code, device.interval ?? 5),
    (async () => {
      await new Promise((r) => setTimeout(r, 1500))
      return approveInBrowser({ verificationUri: device.verification_uri, userCode: typed })
    })(),
  ])
  t.equal(approval.done.status, 200)
  t.match(approval.done.body, /data-outcome="approved"/)
  t.match(approval.confirmPage.body, /Living Room TV/, 'the confirmation page names the client')
  t.match(approval.confirmPage.body, new RegExp(`id="user-code">${device.user_code}<`), 'and the user code')
  t.match(approval.confirmPage.headers.get('content-security-policy') ?? '', /default-src 'none'/)
  t.notOk(/<script/i.test(approval.confirmPage.body), 'no script on the page')
  if (tokens instanceof oauth.ResponseBodyError) throw new Error(`polling failed: ${tokens.error}`)
  t.equal(tokens.token_type.toLowerCase(), 'bearer')
  t.ok(tokens.refresh_token, 'offline_access: a refresh token')
  t.ok(tokens.id_token, 'openid: an ID token')
  const claims = oauth.getValidatedIdTokenClaims(tokens)!
  t.equal(claims.sub, 'u-alice')
  t.equal(claims.aud, 'tv')
  t.type(claims.sid, 'string', 'the ID token names the session the user approved in')
  t.type(claims.auth_time, 'number')

  // Replaying the device code after redemption: invalid_grant.
  const again = await oauth.deviceCodeGrantRequest(as, tv, oauth.None(), device.device_code, insecure)
  t.equal(await errorOf(oauth.processDeviceCodeResponse(as, tv, again)), 'invalid_grant', 'a replayed device code')

  // The code is dead on the page too.
  const reused = await submitCode(device.verification_uri, device.user_code, new CookieJar())
  t.equal(reused.status, 400, 'a used user code is refused on the page')

  const refreshed = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, client_id: 'tv' })
  t.equal(refreshed.status, 200, 'the refresh token works')

  // No secret in the logs: neither the device code nor the user code (in any spelling).
  const logs = srv.log.lines.join('\n')
  for (const secret of [device.device_code, device.user_code, device.user_code.replace('-', '')]) t.notOk(logs.includes(secret), 'no device or user code in the logs')
})

t.test('SSO: a signed-in browser goes straight to the confirmation page; logout revokes the grant', async (t) => {
  const srv = await startDeviceServer(deviceConfig({ device: { interval: 1 } }))
  t.teardown(() => srv.close())
  const jar = new CookieJar()
  const start = async (scope: string) => (await postForm(`${srv.url}/connect/deviceauthorization`, { client_id: 'tv', scope })).json as Record<string, string>
  const first = await start('openid api')
  await approveInBrowser({ verificationUri: first.verification_uri!, userCode: first.user_code!, jar })
  const second = await start('openid api')
  const code = await submitCode(second.verification_uri!, second.user_code!, jar)
  const page = await get(code.location!.href, jar)
  t.match(page.body, /name="decision"/, 'signed in: the confirmation page, no login form')
  t.notMatch(page.body, /name="password"/)
  // "Use another account": the login form again, even with a session.
  const switchHref = /id="switch-account" href="([^"]+)"/.exec(page.body)![1]!.replace(/&amp;/g, '&')
  const switched = await get(switchHref, jar)
  t.match(switched.body, /name="password"/, 'use another account: the login form')
  const confirm = loginForm(page.body)
  await post(confirm.action, { ...confirm.fields, decision: 'allow' }, jar)
  const token = await postForm(`${srv.url}/connect/token`, { grant_type: DEVICE_GRANT, device_code: second.device_code!, client_id: 'tv' })
  t.equal(token.status, 200, 'the device redeems the code approved from the SSO session')
  const at = token.json.access_token as string
  const before = await fetch(`${srv.url}/connect/userinfo`, { headers: { authorization: `Bearer ${at}` } })
  t.equal(before.status, 200)
  // RP-initiated logout with the ID token as hint ends the session and revokes this grant (no offline_access).
  const out = await get(`${srv.url}/connect/endsession?id_token_hint=${encodeURIComponent(token.json.id_token as string)}`, jar)
  t.ok(out.status < 500)
  const after = await fetch(`${srv.url}/connect/userinfo`, { headers: { authorization: `Bearer ${at}` } })
  t.equal(after.status, 401, 'the access token died with the session')
})

t.test('a session ended between approval and the poll refuses the grant', async (t) => {
  const srv = await startDeviceServer(deviceConfig({ device: { interval: 1 } }))
  t.teardown(() => srv.close())
  const started = (await postForm(`${srv.url}/connect/deviceauthorization`, { client_id: 'tv', scope: 'openid' })).json as Record<string, string>
  const { jar } = await approveInBrowser({ verificationUri: started.verification_uri!, userCode: started.user_code! })
  const sessions = srv.server.registry.container.resolve('sessions') as { current(ctx: unknown): Promise<unknown>; listBySubject(sub: string): Promise<Array<{ sid: string }>>; end(sid: string): Promise<unknown> }
  const live = await sessions.listBySubject('u-alice')
  t.equal(live.length, 1)
  await sessions.end(live[0]!.sid)
  const token = await postForm(`${srv.url}/connect/token`, { grant_type: DEVICE_GRANT, device_code: started.device_code!, client_id: 'tv' })
  t.equal(token.status, 400)
  t.equal(token.json.error, 'invalid_grant')
  t.ok(jar.cookies.size > 0)
})
