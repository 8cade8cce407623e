/**
 * examples/nginx/grantd.conf as shipped, with only its certificate paths and ports
 * replaced: nginx accepts it, ends TLS on loopback, sends HSTS, and forwards the Host with
 * its port, so the issuer grantd derives is the URL the client used (port included).
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, ROOT, startCli } from '../helpers/server.js'

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p))
const OPENSSL = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0

function get(port: number, path: string, host: string, ca: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, servername: 'id.example.com', ca, headers: { host } }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

if (!NGINX || !OPENSSL) {
  if (process.env.CI === 'true') throw new Error('nginx and openssl are required under CI')
  process.stderr.write('\n!!!!! nginx or openssl missing: the nginx example test is SKIPPED !!!!!\n\n')
  t.skip('nginx or openssl missing', () => {})
} else {
  t.test('the shipped example: TLS on loopback, HSTS, the port forwarded into the issuer', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'grantd-nginx-example-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    mkdirSync(join(dir, 'logs'))
    // The certificate the example's README tells how to make (self-signed, for testing).
    const cert = join(dir, 'id.example.com.pem')
    const key = join(dir, 'id.example.com.key')
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=id.example.com', '-addext', 'subjectAltName=DNS:id.example.com', '-keyout', key, '-out', cert], { encoding: 'utf8' })
    t.equal(made.status, 0, made.stderr)

    const config = join(dir, 'grantd.json')
    writeFileSync(config, JSON.stringify({ proxy: { trust: ['127.0.0.1'] }, log: { level: 'warn' }, plugins: ['@grantd/grant-client-credentials'] }))
    const g1 = await startCli(config)
    t.teardown(() => g1.stop('SIGKILL'))
    const g2 = await startCli(config)
    t.teardown(() => g2.stop('SIGKILL'))
    const port = await freePort()

    const shipped = readFileSync(join(ROOT, 'examples', 'nginx', 'grantd.conf'), 'utf8')
    t.match(shipped, /listen 127\.0\.0\.1:8443 ssl;/, 'the example listens on loopback')
    const conf = shipped
      .replace('/etc/ssl/certs/id.example.com.pem', cert)
      .replace('/etc/ssl/private/id.example.com.key', key)
      .replace('127.0.0.1:8443', `127.0.0.1:${port}`)
      .replace('127.0.0.1:4001', `127.0.0.1:${g1.port}`)
      .replace('127.0.0.1:4002', `127.0.0.1:${g2.port}`)
    t.not(conf, shipped)
    writeFileSync(join(dir, 'nginx.conf'), conf)
    const args = ['-p', dir, '-e', join(dir, 'logs', 'error.log'), '-c', join(dir, 'nginx.conf'), '-g', `daemon off; pid ${join(dir, 'nginx.pid')};`]
    const tested = spawnSync(NGINX, [...args, '-t'], { encoding: 'utf8' })
    t.equal(tested.status, 0, tested.stderr)

    const nginx = spawn(NGINX, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    nginx.stderr!.on('data', (d: Buffer) => { err += d.toString() })
    t.teardown(async () => {
      if (nginx.exitCode === null) {
        nginx.kill('SIGQUIT')
        await new Promise((r) => nginx.once('exit', r))
      }
    })
    const ca = readFileSync(cert, 'utf8')
    const host = `id.example.com:${port}`
    const deadline = Date.now() + 10_000
    let res: Awaited<ReturnType<typeof get>> | undefined
    while (!res) {
      res = await get(port, '/auth/.well-known/openid-configuration', host, ca).catch(() => undefined)
      if (!res && (nginx.exitCode !== null || Date.now() > deadline)) throw new Error(`nginx did not start: ${err}`)
      if (!res) await new Promise((r) => setTimeout(r, 100))
    }
    t.equal(res.status, 200, res.body)
    t.equal(res.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains')
    const discovery = JSON.parse(res.body) as { issuer: string; token_endpoint: string }
    t.equal(discovery.issuer, `https://${host}/auth`, 'the port survives the proxy ($http_host)')
    t.equal(discovery.token_endpoint, `https://${host}/auth/connect/token`)
    const missing = await get(port, '/auth/nope', host, ca)
    t.equal(missing.status, 404)
    t.equal(missing.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains', 'error responses carry HSTS too')
  })
}
