/**
 * Secrets at rest (RFC 9700 §4.14, SPEC §5): after every flow grantd offers, neither the
 * store (memory and Redis — every write and the final keyspace) nor the logs hold a
 * plaintext token, code, refresh token, password, client secret, client assertion,
 * session id or CSRF token. Client secrets are configured as `$scrypt$` hashes printed by
 * `grantd hash-secret`.
 */
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose'
import type { EntryOptions, Store } from '@grantd/core'
import { basic, CLI, freePort, postForm, startServer, type RunningServer } from '../helpers/server.js'
import { findRedis } from '../helpers/redis.js'
import { authorizeUrl, CookieJar, get, loginForm, pkcePair, post } from '../authorization-code/flow.js'

const run = promisify(execFile)
const WEB_REDIRECT = 'http://127.0.0.1:5000/callback'
const CLEAR = { web: 'web-secret-Zq81', svc: 'svc-secret-Kp27', ro: 'ro-secret-Mv55' }
const PASSWORDS = { alice: 'wonderland-Tx93', bob: 'builder-Hy40' }

/** Every write the store receives, spied on the live instance (whatever adapter it is). */
function recordWrites(store: Store): string[] {
  const writes: string[] = []
  const s = store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
  for (const method of ['put', 'add', 'increment', 'consume', 'rotate', 'get', 'delete', 'revokeFamily', 'isFamilyRevoked']) {
    const original = s[method]!.bind(store)
    s[method] = (...args: unknown[]) => {
      writes.push(JSON.stringify([method, ...args.map((a) => (typeof a === 'object' ? (a as EntryOptions) : a))]))
      return original(...args)
    }
  }
  return writes
}

interface Collected {
  /** Secrets that must never be at rest or in logs (each with a label for the failure message). */
  secrets: Array<[string, string]>
}

/** Every flow: client_credentials, private_key_jwt, password + refresh rotation + reuse, code + PKCE + refresh, userinfo, introspection, revocation. */
async function allFlows(t: Test, srv: RunningServer, issuer: string, key: CryptoKey): Promise<Collected> {
  const secrets: Array<[string, string]> = [
    ...Object.entries(CLEAR).map(([k, v]): [string, string] => [`client secret of ${k}`, v]),
    ...Object.entries(PASSWORDS).map(([k, v]): [string, string] => [`password of ${k}`, v]),
  ]
  const keep = (label: string, value: unknown): void => {
    if (typeof value !== 'string' || value.length < 8) return
    secrets.push([label, value])
    // The random part alone must not be there either (tokens are `<public family id>.<secret>`; JWTs end in a signature).
    const last = value.slice(value.lastIndexOf('.') + 1)
    if (last.length >= 20 && last !== value) secrets.push([`${label} (secret part)`, last])
  }

  const cc = await postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc', CLEAR.svc) })
  t.equal(cc.status, 200, `client_credentials with a hashed secret: ${cc.text}`)
  keep('client_credentials access token', cc.json.access_token)

  const assertion = await new SignJWT({ jti: randomBytes(16).toString('base64url') }).setProtectedHeader({ alg: 'ES256' })
    .setIssuer('jwt').setSubject('jwt').setAudience(`${issuer}/connect/token`).setIssuedAt().setExpirationTime('60s').sign(key)
  keep('client assertion', assertion)
  const pkjwt = await postForm(`${srv.url}/connect/token`, { grant_type: 'client_credentials', scope: 'api', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion })
  t.equal(pkjwt.status, 200, `private_key_jwt: ${pkjwt.text}`)
  keep('private_key_jwt access token', pkjwt.json.access_token)

  const pw = await postForm(`${srv.url}/connect/token`, { grant_type: 'password', username: 'alice', password: PASSWORDS.alice, scope: 'openid api offline_access' }, { authorization: basic('ro', CLEAR.ro) })
  t.equal(pw.status, 200, `password grant: ${pw.text}`)
  keep('password access token', pw.json.access_token)
  keep('password id token', pw.json.id_token)
  keep('password refresh token', pw.json.refresh_token)
  const wrong = await postForm(`${srv.url}/connect/token`, { grant_type: 'password', username: 'alice', password: 'Wrong-Guess-991', scope: 'api' }, { authorization: basic('ro', CLEAR.ro) })
  t.equal(wrong.status, 400)
  secrets.push(['a wrong password', 'Wrong-Guess-991'])
  const refreshed = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: pw.json.refresh_token as string }, { authorization: basic('ro', CLEAR.ro) })
  t.equal(refreshed.status, 200, `refresh: ${refreshed.text}`)
  keep('rotated refresh token', refreshed.json.refresh_token)
  keep('refreshed access token', refreshed.json.access_token)
  const reused = await postForm(`${srv.url}/connect/token`, { grant_type: 'refresh_token', refresh_token: pw.json.refresh_token as string }, { authorization: basic('ro', CLEAR.ro) })
  t.equal(reused.json.error, 'invalid_grant', 'reuse of a rotated-out token is refused')

  const jar = new CookieJar()
  const { verifier, challenge } = pkcePair()
  keep('PKCE verifier', verifier)
  const page = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid profile offline_access api', state: 'st-123', nonce: 'n-123', code_challenge: challenge, code_challenge_method: 'S256' }), jar)
  const form = loginForm(page.body)
  keep('login CSRF token', form.fields.csrf)
  keep('pending authorization id', form.fields.pending)
  keep('login browser cookie', jar.cookies.get('grantd_login'))
  const landed = await post(form.action, { ...form.fields, username: 'bob', password: PASSWORDS.bob }, jar)
  const code = landed.location?.searchParams.get('code')
  t.ok(code, `code flow: ${landed.status}`)
  keep('authorization code', code)
  const session = jar.cookies.get('grantd_session')
  keep('session cookie', session)
  keep('session id', session?.slice(0, session.lastIndexOf('.')))
  const tokens = await postForm(`${srv.url}/connect/token`, { grant_type: 'authorization_code', code: code!, redirect_uri: WEB_REDIRECT, code_verifier: verifier }, { authorization: basic('web', CLEAR.web) })
  t.equal(tokens.status, 200, `code redemption: ${tokens.text}`)
  keep('code access token', tokens.json.access_token)
  keep('code refresh token', tokens.json.refresh_token)
  keep('code id token', tokens.json.id_token)
  const sso = await get(authorizeUrl(srv, { response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 's2', code_challenge: challenge, code_challenge_method: 'S256' }), jar)
  keep('SSO authorization code', sso.location?.searchParams.get('code'))

  const userinfo = await fetch(`${srv.url}/connect/userinfo`, { headers: { authorization: `Bearer ${tokens.json.access_token as string}` } })
  t.equal(userinfo.status, 200, 'userinfo')
  const active = await postForm(`${srv.url}/connect/introspect`, { token: tokens.json.refresh_token as string }, { authorization: basic('web', CLEAR.web) })
  t.equal(active.json.active, true, 'introspection of a refresh token')
  // A replayed code revokes what it bought (RFC 6749 §4.1.2), so it comes after the checks above.
  const replay = await postForm(`${srv.url}/connect/token`, { grant_type: 'authorization_code', code: code!, redirect_uri: WEB_REDIRECT, code_verifier: verifier }, { authorization: basic('web', CLEAR.web) })
  t.equal(replay.json.error, 'invalid_grant', 'a code is single-use')
  const revoked = await postForm(`${srv.url}/connect/revocation`, { token: tokens.json.access_token as string }, { authorization: basic('web', CLEAR.web) })
  t.equal(revoked.status, 200, 'revocation')
  const revokedRefresh = await postForm(`${srv.url}/connect/revocation`, { token: tokens.json.refresh_token as string, token_type_hint: 'refresh_token' }, { authorization: basic('web', CLEAR.web) })
  t.equal(revokedRefresh.status, 200)
  return { secrets }
}

async function hashedConfig(store: Record<string, unknown> | undefined, port: number): Promise<{ config: Record<string, unknown>; key: CryptoKey }> {
  // The way an operator would: `grantd hash-secret`.
  const hashes: Record<string, string> = {}
  for (const [id, secret] of Object.entries(CLEAR)) {
    const { stdout } = await run(process.execPath, [CLI, 'hash-secret', secret])
    hashes[id] = stdout.trim()
  }
  const { publicKey, privateKey } = await generateKeyPair('ES256')
  return {
    key: privateKey,
    config: {
      issuer: `http://127.0.0.1:${port}`,
      ...(store ? { store } : {}),
      cookies: { keys: ['secrets-test-cookie-key-0123456789'] },
      users: { use: '@grantd/users-static', options: { users: [
        { sub: 'u-alice', username: 'alice', password: PASSWORDS.alice, claims: { name: 'Alice' } },
        { sub: 'u-bob', username: 'bob', password: PASSWORDS.bob, claims: { name: 'Bob' } },
      ] } },
      plugins: ['@grantd/grant-authorization-code', '@grantd/grant-refresh-token', '@grantd/grant-client-credentials', '@grantd/grant-password'],
      clients: [
        { client_id: 'web', client_secret: hashes.web, grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [WEB_REDIRECT], scope: 'openid profile offline_access api', require_pkce: true },
        { client_id: 'svc', client_secret: hashes.svc, grant_types: ['client_credentials'], scope: 'api' },
        { client_id: 'ro', client_secret: hashes.ro, grant_types: ['password', 'refresh_token'], scope: 'openid api offline_access' },
        { client_id: 'jwt', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ ...(await exportJWK(publicKey)), alg: 'ES256' }] }, grant_types: ['client_credentials'], scope: 'api' },
      ],
    },
  }
}

function assertNothingLeaks(t: Test, where: string, haystack: string, secrets: Array<[string, string]>): void {
  const leaks = secrets.filter(([, value]) => haystack.includes(value)).map(([label]) => label)
  t.same(leaks, [], `no secret in ${where}`)
}

t.test('hash-secret prints a $scrypt$ hash the config accepts, and the clear secret is not in it', async (t) => {
  const { stdout } = await run(process.execPath, [CLI, 'hash-secret', 'a-client-secret'])
  t.match(stdout.trim(), /^\$scrypt\$ln=\d+,r=\d+,p=\d+\$[A-Za-z0-9_-]{22,}\$[A-Za-z0-9_-]{43,}$/)
  t.notMatch(stdout, /a-client-secret/)
})

t.test('memory store: no plaintext secret in any write, the final keyspace, or the logs', async (t) => {
  const port = await freePort()
  const { config, key } = await hashedConfig(undefined, port)
  const srv = await startServer(config, { port })
  t.teardown(srv.close)
  const writes = recordWrites(srv.server.registry.store!)
  const { secrets } = await allFlows(t, srv, `http://127.0.0.1:${port}`, key)
  t.ok(writes.length > 20, `the store saw the flows (${writes.length} calls)`)
  assertNothingLeaks(t, 'store calls', writes.join('\n'), secrets)
  // What is at rest now, read from the memory store's own maps.
  const entries = (srv.server.registry.store as unknown as { entries: Map<string, { value: string }> }).entries
  t.ok(entries instanceof Map && entries.size > 5, 'the memory store holds entries')
  assertNothingLeaks(t, 'the memory store', [...entries].map(([k, e]) => `${k}\n${e.value}`).join('\n'), secrets)
  t.ok(srv.log.lines.length > 10, 'requests were logged')
  assertNothingLeaks(t, 'the logs', srv.log.lines.join('\n'), secrets)
})

t.test('Redis store: no plaintext secret in any key or value', async (t) => {
  const redis = await findRedis()
  if (!redis) {
    t.comment('no Redis: skipped (see the notice above)')
    return
  }
  t.teardown(() => redis.stop())
  const prefix = `grantd-test:secrets:${randomBytes(6).toString('hex')}:`
  const port = await freePort()
  const { config, key } = await hashedConfig({ use: '@grantd/store-redis', options: { url: redis.url, prefix } }, port)
  const srv = await startServer(config, { port })
  t.teardown(srv.close)
  const writes = recordWrites(srv.server.registry.store!)
  const { secrets } = await allFlows(t, srv, `http://127.0.0.1:${port}`, key)
  assertNothingLeaks(t, 'store calls', writes.join('\n'), secrets)

  const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await client.connect()
  t.teardown(async () => {
    // Leave nothing behind on the shared Redis.
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
      if (keys.length > 0) await client.del(...keys)
      cursor = next
    } while (cursor !== '0')
    client.disconnect()
  })
  const dump: string[] = []
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
    for (const k of keys) {
      const type = await client.type(k)
      const value = type === 'string' ? await client.get(k) : type === 'set' ? (await client.smembers(k)).join('\n') : type === 'hash' ? JSON.stringify(await client.hgetall(k)) : type === 'list' ? (await client.lrange(k, 0, -1)).join('\n') : `(${type})`
      dump.push(`${k}\n${value}`)
    }
    cursor = next
  } while (cursor !== '0')
  t.ok(dump.length > 5, `Redis holds the flows' entries (${dump.length} keys)`)
  assertNothingLeaks(t, 'Redis', dump.join('\n'), secrets)
  assertNothingLeaks(t, 'the logs', srv.log.lines.join('\n'), secrets)
})

/**
 * Federation state (SPEC §9, docs/security.md): the acr-idp round-trip record holds the
 * pending authorization and the upstream PKCE code_verifier. The attack: read the store
 * after a federated login started and replay or hijack it with what it holds in clear.
 * Nothing in Redis may reveal the pending request or a verifier matching the challenge
 * sent upstream.
 */
t.test('Redis store: federation state holds no code_verifier or pending request in clear', async (t) => {
  const redis = await findRedis()
  if (!redis) {
    t.comment('no Redis: skipped (see the notice above)')
    return
  }
  t.teardown(() => redis.stop())
  const prefix = `grantd-test:fedstate:${randomBytes(6).toString('hex')}:`
  const downPort = await freePort()
  const down = `http://127.0.0.1:${downPort}`
  const up = await startServer({
    cookies: { keys: ['upstream-cookie-key-0123456789ab'] },
    users: { use: '@grantd/users-static', options: { users: [{ sub: 'up-alice', username: 'alice', password: 'upstream-pw' }] } },
    plugins: ['@grantd/grant-authorization-code'],
    clients: [{ client_id: 'grantd', client_secret: 'upstream-secret', grant_types: ['authorization_code'], redirect_uris: [`${down}/connect/external/upstream/callback`], scope: 'openid profile email' }],
  })
  t.teardown(up.close)
  const srv = await startServer({
    issuer: down,
    store: { use: '@grantd/store-redis', options: { url: redis.url, prefix } },
    cookies: { keys: ['fedstate-cookie-key-0123456789ab'] },
    users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-alice', username: 'alice', password: PASSWORDS.alice, links: [{ idp: 'upstream', sub: 'up-alice' }] }] } },
    plugins: ['@grantd/grant-authorization-code', { use: '@grantd/acr-idp', options: { providers: { upstream: { issuer: up.url, client_id: 'grantd', client_secret: 'upstream-secret' } } } }],
    clients: [{ client_id: 'web', client_secret: CLEAR.web, grant_types: ['authorization_code'], redirect_uris: [WEB_REDIRECT], scope: 'openid profile', require_pkce: true, identity_providers: ['upstream'] }],
  }, { port: downPort })
  t.teardown(srv.close)
  const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await client.connect()
  const scan = async (): Promise<Array<[string, string]>> => {
    const out: Array<[string, string]> = []
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
      for (const k of keys) out.push([k, (await client.type(k)) === 'string' ? (await client.get(k)) ?? '' : `(${await client.type(k)})`])
      cursor = next
    } while (cursor !== '0')
    return out
  }
  t.teardown(async () => {
    const keys = (await scan()).map(([k]) => k)
    if (keys.length > 0) await client.del(...keys)
    client.disconnect()
  })

  const { challenge } = pkcePair()
  const params = { response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid', state: 'client-state-x', nonce: 'client-nonce-x', code_challenge: challenge, code_challenge_method: 'S256' }
  // 1. straight upstream with acr_values=idp:upstream; 2. the login page's "Sign in with upstream" link.
  const direct = await get(authorizeUrl(srv, { ...params, acr_values: 'idp:upstream' }), new CookieJar())
  t.equal(direct.status, 302)
  const jar = new CookieJar()
  const page = await get(authorizeUrl(srv, params), jar)
  const pendingId = loginForm(page.body).fields.pending!
  const link = /href="([^"]*\/connect\/external\/upstream\/start[^"]*)"/.exec(page.body)![1]!.replace(/&amp;/g, '&')
  const viaLink = await get(new URL(link, srv.url).href, jar)
  t.equal(viaLink.status, 302)
  const upstreamRequests = [direct.location!, viaLink.location!]
  for (const u of upstreamRequests) t.equal(u.origin, up.url, 'sent upstream')
  const challenges = upstreamRequests.map((u) => u.searchParams.get('code_challenge')!)
  const states = upstreamRequests.map((u) => u.searchParams.get('state')!)

  const entries = await scan()
  const ext = entries.filter(([k]) => k.startsWith(`${prefix}ext:`))
  t.equal(ext.length, 2, 'one round-trip record per federated login started')
  const dump = entries.map(([k, v]) => `${k}\n${v}`).join('\n')
  // A verifier is any 43-128 character string of the PKCE alphabet whose S256 is a challenge sent upstream.
  const verifiers = [...dump.matchAll(/[A-Za-z0-9._~-]{43,128}/g)].map((m) => m[0]).filter((candidate) => {
    for (let start = 0; start + 43 <= candidate.length; start++) {
      for (let end = start + 43; end <= Math.min(candidate.length, start + 128); end++) {
        if (challenges.includes(createHash('sha256').update(candidate.slice(start, end)).digest('base64url'))) return true
      }
    }
    return false
  })
  t.same(verifiers, [], 'no upstream code_verifier in Redis')
  t.notMatch(dump, /codeVerifier|code_verifier/, 'no verifier field')
  t.notOk(dump.includes(pendingId), 'the pending request of the login page is not in Redis')
  t.notOk(dump.includes(pendingId.slice(pendingId.lastIndexOf('.') + 1)), 'nor its MAC')
  t.notOk(dump.includes('client-state-x') || dump.includes('client-nonce-x'), 'nor the client state or nonce it carries')
  for (const s of states) t.notOk(dump.includes(s), 'the upstream state is only a hash')

  // The encrypted record still works: the link-started login completes at the client.
  const upPage = await get(viaLink.location!.href, jar)
  const upForm = loginForm(upPage.body)
  const back = await post(upForm.action, { ...upForm.fields, username: 'alice', password: 'upstream-pw' }, jar)
  t.equal(back.status, 302)
  const done = await get(back.location!.href, jar)
  t.equal(done.status, 302, 'the downstream callback answers')
  t.equal(done.location!.searchParams.get('state'), 'client-state-x')
  t.ok(done.location!.searchParams.get('code'), 'a code for the client')
  t.equal((await scan()).filter(([k]) => k.startsWith(`${prefix}ext:`)).length, 1, 'the used record is gone')
})
