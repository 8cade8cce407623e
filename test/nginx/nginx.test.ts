/**
 * Behind nginx (issue 5): a real nginx on a free loopback port in front of two grantd
 * processes sharing Redis. nginx plays the TLS terminator (it tells grantd the public
 * scheme is https and the app lives under /auth); grantd has no configured issuer and
 * trusts 127.0.0.1, so discovery, tokens and redirects must all use the forwarded issuer.
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { decodeJwt } from 'jose'
import { CLI, basic, freePort, postForm, startCli } from '../helpers/server.js'
import { findRedis } from '../helpers/redis.js'
import { CookieJar, get, loginForm, pkcePair, post, WEB_REDIRECT } from '../authorization-code/flow.js'

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p))
const redis = NGINX ? await findRedis() : undefined

if (!NGINX) {
  if (process.env.CI === 'true') throw new Error('nginx is required under CI (.ci/run installs it)')
  process.stderr.write('\n!!!!! nginx not installed: the reverse-proxy test is SKIPPED !!!!!\n\n')
  t.skip('nginx missing', () => {})
} else if (!redis) {
  t.skip('no Redis available (see notice above)', () => {})
} else {
  const dir = mkdtempSync(join(tmpdir(), 'grantd-nginx-'))
  mkdirSync(join(dir, 'logs'))
  const keys = join(dir, 'signing.json')
  const gen = spawnSync(process.execPath, [CLI, 'keys', 'generate', '--out', keys], { encoding: 'utf8' })
  if (gen.status !== 0) throw new Error(gen.stderr)
  const config = join(dir, 'grantd.json')
  writeFileSync(config, JSON.stringify({
    proxy: { trust: ['127.0.0.1'] },
    log: { level: 'warn' },
    keys: { file: keys },
    cookies: { keys: ['nginx-test-cookie-key-0123456789'] },
    store: { use: '@grantd/store-redis', options: { url: redis.url, prefix: `grantd-nginx:${randomBytes(4).toString('hex')}:` } },
    users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-alice', username: 'alice', password: 'wonderland' }] } },
    plugins: ['@grantd/grant-authorization-code', '@grantd/grant-refresh-token', '@grantd/grant-client-credentials'],
    clients: [
      { client_id: 'web', client_secret: 'web-secret', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [WEB_REDIRECT], scope: 'openid offline_access api', require_pkce: true },
      { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' },
    ],
  }))
  const g1 = await startCli(config)
  const g2 = await startCli(config)
  const port = await freePort()
  writeFileSync(join(dir, 'nginx.conf'), `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log ${dir}/logs/access.log;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream grantd { server 127.0.0.1:${g1.port}; server 127.0.0.1:${g2.port}; keepalive 8; }
  server {
    listen 127.0.0.1:${port};
    location /auth/ {
      proxy_pass http://grantd/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Forwarded-Prefix /auth;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`)
  const nginx = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let nginxErr = ''
  nginx.stderr!.on('data', (d: Buffer) => { nginxErr += d.toString() })
  t.teardown(async () => {
    if (nginx.exitCode === null) {
      nginx.kill('SIGQUIT')
      await new Promise((r) => setTimeout(r, 200))
      if (nginx.exitCode === null) nginx.kill('SIGKILL')
    }
    await Promise.all([g1.stop(), g2.stop()])
    rmSync(dir, { recursive: true, force: true })
    await redis.stop()
  })
  const front = `http://127.0.0.1:${port}/auth`
  const publicIssuer = `https://127.0.0.1:${port}/auth`
  // The test speaks plain http to nginx; public https URLs are what TLS would terminate.
  const reach = (url: string | URL) => String(url).replace(publicIssuer, front)
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${front}/healthz`)).ok) break
    } catch { /* not up yet */ }
    if (i > 100 || nginx.exitCode !== null) throw new Error(`nginx did not start: ${nginxErr}`)
    await new Promise((r) => setTimeout(r, 50))
  }

  t.test('discovery and tokens use the forwarded issuer', async (t) => {
    const meta = await (await fetch(`${front}/.well-known/openid-configuration`)).json() as Record<string, string>
    t.equal(meta.issuer, publicIssuer)
    t.equal(meta.token_endpoint, `${publicIssuer}/connect/token`)
    t.equal(meta.authorization_endpoint, `${publicIssuer}/connect/authorize`)
    t.equal(meta.jwks_uri, `${publicIssuer}/.well-known/jwks.json`)
    const direct = await (await fetch(`${g1.url}/.well-known/openid-configuration`)).json() as Record<string, string>
    t.equal(direct.issuer, g1.url, 'without the proxy headers the process reports its own address')
    const cc = await postForm(`${front}/connect/token`, { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic('svc', 'svc-secret') })
    t.equal(cc.status, 200)
    t.equal(decodeJwt(cc.json.access_token as string).iss, publicIssuer)
  })

  t.test('a full code flow through nginx, spread over both processes', async (t) => {
    const jar = new CookieJar()
    const { verifier, challenge } = pkcePair()
    const state = 'st-' + randomBytes(4).toString('hex')
    const url = new URL(`${front}/connect/authorize`)
    for (const [k, v] of Object.entries({ response_type: 'code', client_id: 'web', redirect_uri: WEB_REDIRECT, scope: 'openid offline_access api', state, nonce: 'n1', code_challenge: challenge, code_challenge_method: 'S256' })) url.searchParams.set(k, v)
    const page = await get(url.href, jar)
    t.equal(page.status, 200, 'the login page')
    const form = loginForm(page.body)
    t.ok(form.action.startsWith(publicIssuer), `the form posts to the public issuer (${form.action})`)
    const landing = await post(reach(form.action), { ...form.fields, username: 'alice', password: 'wonderland' }, jar)
    t.equal(landing.status, 302)
    t.equal(landing.location!.origin + landing.location!.pathname, WEB_REDIRECT)
    t.equal(landing.location!.searchParams.get('iss'), publicIssuer, 'RFC 9207 iss is the public issuer')
    t.equal(landing.location!.searchParams.get('state'), state)
    const code = landing.location!.searchParams.get('code')!
    const auth = { authorization: basic('web', 'web-secret') }
    const tokens = await postForm(`${front}/connect/token`, { grant_type: 'authorization_code', code, redirect_uri: WEB_REDIRECT, code_verifier: verifier }, auth)
    t.equal(tokens.status, 200)
    t.equal(decodeJwt(tokens.json.id_token as string).iss, publicIssuer)
    t.equal(decodeJwt(tokens.json.access_token as string).iss, publicIssuer)
    // Several refreshes: nginx round-robins them over both processes.
    let refresh = tokens.json.refresh_token as string
    for (let i = 0; i < 4; i++) {
      const r = await postForm(`${front}/connect/token`, { grant_type: 'refresh_token', refresh_token: refresh }, auth)
      t.equal(r.status, 200, `refresh ${i + 1} through nginx`)
      refresh = r.json.refresh_token as string
    }
  })
}
