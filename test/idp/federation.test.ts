import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose'
import { basic, freePort, postForm, ROOT, startServer, type RunningServer } from '../helpers/server.js'
import { Browser, parseForms, parseLinks, type Hop } from './browser.js'

/**
 * Federated sign-in (SPEC §6) end to end: a second grantd is the upstream OIDC provider,
 * the downstream grantd is its relying party through @grantd/acr-idp. Real HTTP both ways,
 * real signatures (ES256 keys of each server), configs taken from examples/federation*.json
 * with the ports replaced.
 */

const CLIENT_REDIRECT = 'http://127.0.0.1:5000/callback'
const atClient = (url: string): boolean => url.startsWith(CLIENT_REDIRECT)

type Json = Record<string, any>

function example(name: string): Json {
  return JSON.parse(readFileSync(join(ROOT, 'examples', name), 'utf8')) as Json
}

interface Federation {
  up: RunningServer
  down: RunningServer
}

/**
 * An attacker between grantd and its upstream: it relays everything (Host included, so
 * the upstream's issuer is the proxy's URL) but alters the ID token payload in token
 * responses while keeping the upstream's signature. Only a signature check catches it.
 */
async function tamperingProxy(target: string): Promise<{ url: string; server: Server }> {
  const upstream = new URL(target)
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const out = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        const parts: Buffer[] = []
        answer.on('data', (c: Buffer) => parts.push(c))
        answer.on('end', () => {
          let body = Buffer.concat(parts)
          if (req.url?.startsWith('/connect/token') && answer.statusCode === 200) {
            const json = JSON.parse(body.toString()) as Json
            const [header, payload, signature] = (json.id_token as string).split('.')
            const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Json
            claims.email = 'attacker@evil.example'
            json.id_token = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`
            body = Buffer.from(JSON.stringify(json))
          }
          const headers = { ...answer.headers, 'content-length': String(body.length) }
          res.writeHead(answer.statusCode ?? 502, headers)
          res.end(body)
        })
      })
      out.on('error', () => { res.writeHead(502); res.end() })
      out.end(Buffer.concat(chunks))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

async function startFederation(t: Test): Promise<Federation> {
  const downPort = await freePort()
  const downIssuer = `http://127.0.0.1:${downPort}`

  const upConfig = example('federation-upstream.json')
  delete upConfig.issuer // derived from the Host header: http://127.0.0.1:<its port>
  upConfig.users.options.users.push({ sub: 'up-eve', username: 'eve', password: 'eve-pw', claims: { name: 'Eve', email: 'eve@upstream.example' } })
  upConfig.clients[0].redirect_uris = ['upstream', 'auto', 'wrongsecret', 'tampered'].map((n) => `${downIssuer}/connect/external/${n}/callback`)
  const up = await startServer(upConfig)
  t.teardown(up.close)

  const closed = await freePort() // nothing listens here: an unreachable upstream
  const proxy = await tamperingProxy(up.url)
  t.teardown(() => new Promise<void>((resolve) => { proxy.server.closeAllConnections(); proxy.server.close(() => resolve()) }))
  const downConfig = example('federation.json')
  downConfig.issuer = downIssuer
  const idp = downConfig.plugins.find((p: unknown) => typeof p === 'object' && (p as Json).use === '@grantd/acr-idp') as Json
  const upstream = idp.options.providers.upstream as Json
  upstream.issuer = up.url
  idp.options.providers.auto = { ...upstream, autoProvision: true }
  idp.options.providers.wrongsecret = { ...upstream, client_secret: 'not-the-secret' }
  idp.options.providers.unreachable = { ...upstream, issuer: `http://127.0.0.1:${closed}` }
  idp.options.providers.tampered = { ...upstream, issuer: proxy.url }
  downConfig.clients[0].identity_providers = ['upstream', 'auto', 'wrongsecret', 'unreachable', 'tampered']
  // alice is linked through the tampering proxy too, so only the signature check can refuse her there.
  downConfig.users.options.users[0].links.push({ idp: 'tampered', sub: 'up-alice' })
  downConfig.clients.push({ ...downConfig.clients[0], client_id: 'local-only', identity_providers: [] })
  const down = await startServer(downConfig, { port: downPort })
  t.teardown(down.close)
  t.equal(down.url, downIssuer)
  return { up, down }
}

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

function authorizeUrl(down: RunningServer, params: Record<string, string>): string {
  const url = new URL(`${down.url}/connect/authorize`)
  for (const [k, v] of Object.entries({ response_type: 'code', client_id: 'web', redirect_uri: CLIENT_REDIRECT, scope: 'openid profile email', ...params })) url.searchParams.set(k, v)
  return url.href
}

/** Sign in on the upstream's login page (its form, its CSRF field) and follow back to the client. */
async function loginUpstream(browser: Browser, page: Hop, username: string, password: string): Promise<Hop[]> {
  if (page.status !== 200) throw new Error(`expected the upstream login page, got ${page.status} at ${page.url}: ${page.body.slice(0, 300)}`)
  const form = parseForms(page.body, page.url).find((f) => 'username' in f.fields && 'password' in f.fields)
  if (!form) throw new Error(`no login form on ${page.url}: ${page.body.slice(0, 500)}`)
  return browser.follow(form.action, { form: { ...form.fields, username, password } }, atClient)
}

t.test('federated sign-in through a second grantd', async (t) => {
  const { up, down } = await startFederation(t)
  const downJwks = createLocalJWKSet((await (await fetch(`${down.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet)

  t.test('idp:upstream skips the login form, ends at the client with a code for the linked user', async (t) => {
    const browser = new Browser()
    const { verifier, challenge } = pkce()
    const start = await browser.follow(authorizeUrl(down, { state: 'client-state', nonce: 'client-nonce', code_challenge: challenge, code_challenge_method: 'S256', acr_values: 'idp:upstream' }), {}, atClient)

    // 1. straight to the upstream authorization endpoint, as a PKCE/state/nonce relying party
    t.equal(start[0]!.status, 302)
    const toUpstream = new URL(start[0]!.location!)
    t.equal(toUpstream.origin, up.url)
    t.equal(toUpstream.searchParams.get('client_id'), 'grantd')
    t.equal(toUpstream.searchParams.get('redirect_uri'), `${down.url}/connect/external/upstream/callback`)
    t.equal(toUpstream.searchParams.get('response_type'), 'code')
    t.equal(toUpstream.searchParams.get('code_challenge_method'), 'S256')
    t.match(toUpstream.searchParams.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/)
    t.match(toUpstream.searchParams.get('state'), /^[A-Za-z0-9_-]{20,}$/)
    t.match(toUpstream.searchParams.get('nonce'), /^[A-Za-z0-9_-]{20,}$/)
    t.equal(toUpstream.searchParams.get('scope'), 'openid profile email')
    t.not(toUpstream.searchParams.get('state'), 'client-state', 'the client state never leaves grantd')
    t.match(start[0]!.headers.get('set-cookie'), /grantd_ext=[^;]+;.*HttpOnly.*SameSite=Lax/i)

    // 2. the upstream login page; 3. back through the downstream callback to the client
    const back = await loginUpstream(browser, start.at(-1)!, 'alice', 'upstream-pw')
    const callbackHop = back.find((h) => h.url.startsWith(`${down.url}/connect/external/upstream/callback`))
    t.ok(callbackHop, 'the upstream redirects to the downstream callback')
    const last = back.at(-1)!
    t.equal(last.status, 302)
    t.ok(atClient(last.location!), `lands at the client: ${last.location}`)
    const landing = new URL(last.location!)
    t.equal(landing.searchParams.get('state'), 'client-state')
    t.equal(landing.searchParams.get('iss'), down.url, 'RFC 9207 iss of the downstream')
    const code = landing.searchParams.get('code')!
    t.ok(code)

    // 4. the downstream code is a normal code: redeem it with the client's PKCE verifier
    const token = await postForm(`${down.url}/connect/token`, { grant_type: 'authorization_code', code, redirect_uri: CLIENT_REDIRECT, code_verifier: verifier }, { authorization: basic('web', 'web-secret') })
    t.equal(token.status, 200, token.text)
    const { payload: id } = await jwtVerify(token.json.id_token as string, downJwks, { issuer: down.url, audience: 'web' })
    t.equal(id.sub, 'u-alice', 'the linked local user, not the upstream sub')
    t.equal(id.nonce, 'client-nonce')
    t.equal(id.email, 'alice@example.com', 'claims come from the local user')
    t.same(id.amr, ['fed'])

    // The callback is single-use: replaying it ends on an error page, not at the client.
    const replay = await browser.request(callbackHop!.url)
    t.equal(replay.status, 400)
    t.match(replay.headers.get('content-type'), /text\/html/)
    t.match(replay.body, /unknown, expired or was already used/)
  })

  t.test('the login page offers "Sign in with NAME" for the providers the client allows', async (t) => {
    const browser = new Browser()
    const { challenge } = pkce()
    const page = await browser.request(authorizeUrl(down, { state: 's1', nonce: 'n1', code_challenge: challenge, code_challenge_method: 'S256' }))
    t.equal(page.status, 200)
    const links = parseLinks(page.body, page.url).filter((l) => /sign in with/i.test(l.text))
    t.same(links.map((l) => l.text).sort(), ['Sign in with auto', 'Sign in with tampered', 'Sign in with unreachable', 'Sign in with upstream', 'Sign in with wrongsecret'])
    const upstreamLink = links.find((l) => l.text === 'Sign in with upstream')!
    const hop = await browser.request(upstreamLink.href)
    t.equal(hop.status, 302)
    t.equal(new URL(hop.location!).origin, up.url)
    const back = await loginUpstream(browser, await browser.request(hop.location!), 'alice', 'upstream-pw')
    const landing = new URL(back.at(-1)!.location!)
    t.equal(landing.searchParams.get('state'), 's1')
    t.ok(landing.searchParams.get('code'))
  })

  t.test('a client that does not allow the provider sees the form with a notice, never a redirect', async (t) => {
    const browser = new Browser()
    const { challenge } = pkce()
    const page = await browser.request(authorizeUrl(down, { client_id: 'local-only', state: 's', nonce: 'n', code_challenge: challenge, code_challenge_method: 'S256', acr_values: 'idp:upstream' }))
    t.equal(page.status, 200)
    t.notOk(page.location)
    t.match(page.body, /Signing in with &quot;upstream&quot; is not available for this application|Signing in with "upstream" is not available for this application/)
    t.ok(parseForms(page.body, page.url).some((f) => 'username' in f.fields), 'the local login form is shown')
    t.notMatch(page.body, /Sign in with upstream/)
    const unknown = await browser.request(authorizeUrl(down, { state: 's', nonce: 'n', code_challenge: challenge, code_challenge_method: 'S256', acr_values: 'idp:nowhere' }))
    t.equal(unknown.status, 200)
    t.match(unknown.body, /not available/)
  })

  t.test('a session made through a provider never answers a client that does not allow it (SPEC §9)', async (t) => {
    // The attack from the audit: sign in through upstream for `web`, then ask for a code
    // for `local-only` (identity_providers: []) from the same browser.
    const browser = new Browser()
    const { challenge, verifier } = pkce()
    const start = await browser.follow(authorizeUrl(down, { state: 'fed', nonce: 'n', code_challenge: challenge, code_challenge_method: 'S256', acr_values: 'idp:upstream' }), {}, atClient)
    const back = await loginUpstream(browser, start.at(-1)!, 'alice', 'upstream-pw')
    t.ok(new URL(back.at(-1)!.location!).searchParams.get('code'), 'signed in through upstream for web')
    t.ok(browser.cookies(down.url).has('grantd_session'), 'the browser holds a session')

    // The session still answers the client that allows the provider (single sign-on).
    const sso = await browser.request(authorizeUrl(down, { state: 'sso', nonce: 'n', code_challenge: challenge, code_challenge_method: 'S256' }))
    t.equal(sso.status, 302)
    t.ok(new URL(sso.location!).searchParams.get('code'), 'web gets a code from the session')

    for (const acr of ['idp:upstream', undefined]) {
      const params = { client_id: 'local-only', state: 'bypass', nonce: 'n', code_challenge: challenge, code_challenge_method: 'S256', ...(acr ? { acr_values: acr } : {}) }
      const page = await browser.request(authorizeUrl(down, params))
      const leaked = page.location ? new URL(page.location).searchParams.get('code') : null
      if (leaked) {
        const token = await postForm(`${down.url}/connect/token`, { grant_type: 'authorization_code', code: leaked, redirect_uri: CLIENT_REDIRECT, code_verifier: verifier }, { authorization: basic('local-only', 'web-secret') })
        t.comment(`bypass: local-only got a code (${token.text.slice(0, 80)})`)
      }
      t.equal(page.status, 200, `local-only (acr_values=${acr ?? 'none'}): the login form, not a code`)
      t.notOk(leaked, 'no code for a client that does not allow the session\'s provider')
      t.ok(parseForms(page.body, page.url).some((f) => 'username' in f.fields), 'the local login form is shown')

      const silent = await browser.request(authorizeUrl(down, { ...params, prompt: 'none' }))
      t.equal(silent.status, 302)
      const landing = new URL(silent.location!)
      t.ok(atClient(silent.location!))
      t.equal(landing.searchParams.get('error'), 'login_required', `prompt=none (acr_values=${acr ?? 'none'}): login_required`)
      t.equal(landing.searchParams.get('state'), 'bypass')
      t.notOk(landing.searchParams.get('code'))
    }
  })

  t.test('upstream refuses (error=access_denied): error redirect to the client', async (t) => {
    const browser = new Browser()
    const { challenge } = pkce()
    const start = await browser.request(authorizeUrl(down, { state: 'deny-state', nonce: 'n', code_challenge: challenge, code_challenge_method: 'S256', acr_values: 'idp:upstream' }))
    const upstreamState = new URL(start.location!).searchParams.get('state')!
    // What the upstream sends when the user cancels (RFC 6749 §4.1.2.1, RFC 9207 iss).
    const cb = new URL(`${down.url}/connect/external/upstream/callback`)
    cb.searchParams.set('error', 'access_denied')
    cb.searchParams.set('state', upstreamState)
    cb.searchParams.set('iss', up.url)
    const hop = await browser.request(cb.href)
    t.equal(hop.status, 302)
    const landing = new URL(hop.location!)
    t.ok(atClient(hop.location!))
    t.equal(landing.searchParams.get('error'), 'access_denied')
    t.equal(landing.searchParams.get('state'), 'deny-state')
    t.notOk(landing.searchParams.get('code'))
  })

  t.test('a callback in another browser, or with a forged state, ends on an error page', async (t) => {
    const browser = new Browser()
    const { challenge } = pkce()
    const start = await browser.request(authorizeUrl(down, { state: 's', nonce: 'n', code_challenge: challenge, code_challenge_method: 'S256', acr_values: 'idp:upstream' }))
    const upstreamState = new URL(start.location!).searchParams.get('state')!
    const forged = await browser.request(`${down.url}/connect/external/upstream/callback?code=x&state=${'A'.repeat(43)}`)
    t.equal(forged.status, 400)
    t.match(forged.headers.get('content-type'), /text\/html/)
    const other = new Browser()
    const stolen = await other.request(`${down.url}/connect/external/upstream/callback?code=x&state=${upstreamState}&iss=${encodeURIComponent(up.url)}`)
    t.equal(stolen.status, 400)
    t.match(stolen.body, /another browser/)
    t.notOk(stolen.location)
  })

  t.test('an identity no user links is refused; autoProvision creates a user', async (t) => {
    const refused = new Browser()
    const { challenge, verifier } = pkce()
    const start = await refused.follow(authorizeUrl(down, { state: 'eve1', nonce: 'n', code_challenge: challenge, code_challenge_method: 'S256', acr_values: 'idp:upstream' }), {}, atClient)
    const back = await loginUpstream(refused, start.at(-1)!, 'eve', 'eve-pw')
    const denied = new URL(back.at(-1)!.location!)
    t.equal(denied.searchParams.get('error'), 'access_denied')
    t.equal(denied.searchParams.get('state'), 'eve1')

    const auto = new Browser()
    const start2 = await auto.follow(authorizeUrl(down, { state: 'eve2', nonce: 'n2', code_challenge: challenge, code_challenge_method: 'S256', acr_values: 'idp:auto' }), {}, atClient)
    const back2 = await loginUpstream(auto, start2.at(-1)!, 'eve', 'eve-pw')
    const landing = new URL(back2.at(-1)!.location!)
    t.equal(landing.searchParams.get('state'), 'eve2')
    const token = await postForm(`${down.url}/connect/token`, { grant_type: 'authorization_code', code: landing.searchParams.get('code')!, redirect_uri: CLIENT_REDIRECT, code_verifier: verifier }, { authorization: basic('web', 'web-secret') })
    t.equal(token.status, 200, token.text)
    const { payload } = await jwtVerify(token.json.id_token as string, downJwks, { issuer: down.url, audience: 'web' })
    t.match(payload.sub, /^auto:[A-Za-z0-9_-]{22}$/)
    t.equal(payload.email, 'eve@upstream.example', 'claims of the provisioned user come from upstream')
  })

  t.test('a failed code exchange (wrong client secret upstream) is an error redirect, not a 500', async (t) => {
    const browser = new Browser()
    const { challenge } = pkce()
    const start = await browser.follow(authorizeUrl(down, { state: 'ws', nonce: 'n', code_challenge: challenge, code_challenge_method: 'S256', acr_values: 'idp:wrongsecret' }), {}, atClient)
    const back = await loginUpstream(browser, start.at(-1)!, 'alice', 'upstream-pw')
    const landing = new URL(back.at(-1)!.location!)
    t.equal(landing.searchParams.get('error'), 'access_denied')
    t.equal(landing.searchParams.get('state'), 'ws')
    t.notMatch(down.log.lines.join('\n'), /not-the-secret/, 'the upstream client secret is never logged')
  })

  t.test('an unreachable upstream: temporarily_unavailable back to the client', async (t) => {
    const browser = new Browser()
    const { challenge } = pkce()
    const hop = await browser.request(authorizeUrl(down, { state: 'un', nonce: 'n', code_challenge: challenge, code_challenge_method: 'S256', acr_values: 'idp:unreachable' }))
    t.equal(hop.status, 302)
    t.ok(atClient(hop.location!), String(hop.location))
    const landing = new URL(hop.location!)
    t.equal(landing.searchParams.get('error'), 'temporarily_unavailable')
    t.equal(landing.searchParams.get('state'), 'un')
  })

  t.test('prompt=none is forwarded upstream; its login_required comes back to the client', async (t) => {
    const browser = new Browser()
    const { challenge } = pkce()
    const hops = await browser.follow(authorizeUrl(down, { state: 'silent', nonce: 'n', prompt: 'none', code_challenge: challenge, code_challenge_method: 'S256', acr_values: 'idp:upstream' }), {}, atClient)
    t.equal(new URL(hops[0]!.location!).searchParams.get('prompt'), 'none')
    const last = hops.at(-1)!
    t.ok(atClient(last.location!), String(last.location))
    const landing = new URL(last.location!)
    t.equal(landing.searchParams.get('error'), 'login_required')
    t.equal(landing.searchParams.get('state'), 'silent')
  })

  t.test('an ID token altered in transit (signature no longer matches) is refused', async (t) => {
    const browser = new Browser()
    const { challenge } = pkce()
    const start = await browser.follow(authorizeUrl(down, { state: 'tamper', nonce: 'n', code_challenge: challenge, code_challenge_method: 'S256', acr_values: 'idp:tampered' }), {}, atClient)
    const back = await loginUpstream(browser, start.at(-1)!, 'alice', 'upstream-pw')
    const last = back.at(-1)!
    t.equal(last.status, 302)
    const landing = new URL(last.location!)
    t.ok(atClient(last.location!))
    t.equal(landing.searchParams.get('error'), 'access_denied')
    t.equal(landing.searchParams.get('state'), 'tamper')
    t.match(landing.searchParams.get('error_description'), /could not be verified/)
    t.notOk(landing.searchParams.get('code'))
    t.match(down.log.lines.join('\n'), /"idp":"tampered".*signature/i, 'the log says why')
  })
})
