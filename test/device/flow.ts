/**
 * The device flow (RFC 8628) as a user performs it in a browser: open the verification URI,
 * type the code, sign in, Allow or Deny. Cookies and CSRF fields come from the pages.
 */
import { baseConfig, CookieJar, get, loginForm, post, type Page } from '../authorization-code/flow.js'
import { freePort, startServer, type RunningServer } from '../helpers/server.js'

export const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code'

/** A public TV app, a confidential set-top box, and `web` (no device grant). */
export function deviceConfig(options: { device?: Record<string, unknown>; store?: unknown; throttle?: Record<string, unknown> } = {}): Record<string, unknown> {
  const config = baseConfig({
    plugins: ['@grantd/grant-authorization-code', '@grantd/grant-refresh-token', '@grantd/grant-client-credentials', { use: '@grantd/grant-device-code', options: options.device ?? {} }],
  })
  const clients = config.clients as Array<Record<string, unknown>>
  clients.push(
    { client_id: 'tv', client_name: 'Living Room TV', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'], scope: 'openid profile offline_access api' },
    { client_id: 'box', client_secret: 'box-secret', client_name: 'Set-top <Box>', grant_types: [DEVICE_GRANT], scope: 'openid profile api' },
  )
  return { ...config, ...(options.store ? { store: options.store } : {}), ...(options.throttle ? { throttle: options.throttle } : {}) }
}

/** Start with the issuer equal to the bound address (pages and tokens are built from it). */
export async function startDeviceServer(config: Record<string, unknown>, port?: number): Promise<RunningServer> {
  const p = port ?? (await freePort())
  return startServer({ ...config, issuer: `http://127.0.0.1:${p}` }, { port: p })
}

export interface Approval {
  codePage: Page
  confirmPage: Page
  done: Page
  jar: CookieJar
}

/** Submit a code on the /device page; returns the answer (a 303 to the sign-in, or the form again). */
export async function submitCode(verificationUri: string, userCode: string, jar: CookieJar): Promise<Page> {
  const codePage = await get(verificationUri, jar)
  if (codePage.status !== 200) throw new Error(`/device answered ${codePage.status}`)
  const form = loginForm(codePage.body)
  return post(form.action, { ...form.fields, user_code: userCode }, jar)
}

/**
 * The whole browser side: the code (typed as the user would, or from verification_uri_complete),
 * the login form unless the jar is signed in, then the confirmation page and the decision.
 */
export async function approveInBrowser(input: {
  verificationUri: string; userCode: string; decision?: 'allow' | 'deny'; jar?: CookieJar; username?: string; password?: string
}): Promise<Approval> {
  const jar = input.jar ?? new CookieJar()
  const codePage = await submitCode(input.verificationUri, input.userCode, jar)
  if (codePage.status !== 303 || !codePage.location) throw new Error(`code refused: ${codePage.status} ${codePage.body.slice(0, 300)}`)
  let page = await get(codePage.location.href, jar)
  if (page.body.includes('name="password"')) {
    const login = loginForm(page.body)
    const signedIn = await post(login.action, { ...login.fields, username: input.username ?? 'alice', password: input.password ?? 'wonderland' }, jar)
    if (signedIn.status !== 303 || !signedIn.location) throw new Error(`sign-in failed: ${signedIn.status} ${signedIn.body.slice(0, 300)}`)
    page = await get(signedIn.location.href, jar)
  }
  if (page.status !== 200 || !page.body.includes('name="decision"')) throw new Error(`no confirmation page: ${page.status} ${page.body.slice(0, 300)}`)
  const confirm = loginForm(page.body)
  const done = await post(confirm.action, { ...confirm.fields, decision: input.decision ?? 'allow' }, jar)
  return { codePage, confirmPage: page, done, jar }
}

export { CookieJar, get, post, loginForm }
