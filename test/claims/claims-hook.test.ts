/**
 * The claims hook (SPEC §11): a plugin loaded by path adds claims for every grant, built-in
 * and custom, to access tokens, ID tokens and userinfo; a plugin that tries to change a
 * registered claim is refused at boot when it says so, and otherwise fails the request
 * with server_error and a log line naming it, never yielding a token.
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeJwt } from 'jose'
import { loginForCode, redeem, startFlowServer } from '../authorization-code/flow.js'
import { basic, postForm, type RunningServer } from '../helpers/server.js'
import { claimsHookContract } from '../helpers/claims-hook-contract.js'
import { ORDERS, password, resourcesConfig, said, token } from './fixtures.js'

const dir = mkdtempSync(join(tmpdir(), 'grantd-claims-hook-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function plugin(name: string, source: string): string {
  const file = join(dir, name)
  writeFileSync(file, source)
  return file
}

/** Records what it was asked, and answers with claims describing the call. */
const AUDIT_HOOK = plugin('audit-hook.mjs', `
export default {
  name: 'audit-hook',
  register(host) {
    host.claims((input) => ({
      hook_kind: input.kind,
      hook_grant: input.grantType ?? null,
      hook_user: input.user ? input.user.sub : null,
      hook_scope: input.scope.join(' '),
      hook_resource: input.resource ?? null,
      hook_tenant: input.context.tenant ?? null,
      hook_client: input.client.client_id,
    }), { claims: ['hook_kind', 'hook_grant', 'hook_user', 'hook_scope', 'hook_resource', 'hook_tenant', 'hook_client'] })
  },
}
`)

/** A custom grant loaded by path: the hook must run for it too. */
const CUSTOM_GRANT = plugin('custom-grant.mjs', `
export default {
  name: 'custom-grant',
  register(host) {
    host.grant({ type: 'urn:test:ticket', parameters: ['ticket'], required: ['ticket'], async handle(req) {
      return { subject: 'u-alice', scope: req.requestedScope ?? [], refreshToken: false, idToken: false }
    } })
  },
}
`)

/** Overrides sub only where told to by the test (a request-time override, invisible at boot). */
const EVIL_HOOK = plugin('evil-hook.mjs', `
export default {
  name: 'evil-hook',
  register(host) {
    host.claims((input) => (input.scope.includes('evil:' + input.kind) ? { sub: 'u-admin' } : undefined))
  },
}
`)

function hookConfig(plugins: string[], scopeExtra = ''): Record<string, unknown> {
  const base = resourcesConfig()
  const clients = (base.clients as Array<Record<string, unknown>>).map((c) => {
    if (c.client_id === 'svc') return { ...c, grant_types: ['client_credentials', 'urn:test:ticket'], scope: `${c.scope as string}${scopeExtra}` }
    if (c.client_id === 'ro' || c.client_id === 'web') return { ...c, scope: `${c.scope as string}${scopeExtra}` }
    return c
  })
  return { ...base, clients, plugins: [...(base.plugins as string[]), CUSTOM_GRANT, ...plugins] }
}

t.test('a hook adds claims for every grant, to access tokens, ID tokens and userinfo', async (t) => {
  const srv = await startFlowServer(hookConfig([AUDIT_HOOK]))
  t.teardown(srv.close)

  const cc = await token(srv, 'svc', { grant_type: 'client_credentials', scope: 'orders:read' })
  t.equal(cc.status, 200, said(cc))
  t.match(decodeJwt(cc.json.access_token as string), {
    hook_kind: 'access_token', hook_grant: 'client_credentials', hook_user: null, hook_scope: 'orders:read', hook_resource: ORDERS, hook_client: 'svc', sub: 'svc',
  })

  const custom = await token(srv, 'svc', { grant_type: 'urn:test:ticket', ticket: 'x', scope: 'api' })
  t.equal(custom.status, 200, said(custom))
  t.match(decodeJwt(custom.json.access_token as string), { hook_kind: 'access_token', hook_grant: 'urn:test:ticket', hook_user: 'u-alice', hook_resource: null })

  const pw = await password(srv, 'openid offline_access orders:read billing:read', { acr_values: 'tenant:acme', resource: ORDERS })
  t.equal(pw.status, 200, said(pw))
  t.match(decodeJwt(pw.json.access_token as string), {
    hook_kind: 'access_token', hook_grant: 'password', hook_user: 'u-alice', hook_scope: 'openid offline_access orders:read', hook_resource: ORDERS, hook_tenant: 'acme', sub: 'u-alice',
  })
  t.match(decodeJwt(pw.json.id_token as string), {
    hook_kind: 'id_token', hook_grant: 'password', hook_user: 'u-alice', hook_scope: 'openid offline_access orders:read billing:read', hook_resource: null, sub: 'u-alice',
  })

  const refreshed = await token(srv, 'ro', { grant_type: 'refresh_token', refresh_token: pw.json.refresh_token as string })
  t.equal(refreshed.status, 200, said(refreshed))
  t.match(decodeJwt(refreshed.json.access_token as string), { hook_kind: 'access_token', hook_grant: 'refresh_token', hook_user: 'u-alice', hook_tenant: 'acme' })
  t.match(decodeJwt(refreshed.json.id_token as string), { hook_kind: 'id_token', hook_grant: 'refresh_token' })

  const login = await loginForCode(srv, { scope: 'openid profile' })
  const code = await redeem(srv, login.code, login.verifier)
  t.equal(code.status, 200, said(code))
  t.match(decodeJwt(code.json.access_token as string), { hook_kind: 'access_token', hook_grant: 'authorization_code', hook_user: 'u-alice', hook_client: 'web' })
  t.match(decodeJwt(code.json.id_token as string), { hook_kind: 'id_token', hook_grant: 'authorization_code' })

  const userinfo = await fetch(`${srv.url}/connect/userinfo`, { headers: { authorization: `Bearer ${code.json.access_token as string}` } })
  t.equal(userinfo.status, 200)
  t.match(await userinfo.json(), { sub: 'u-alice', name: 'Alice', hook_kind: 'userinfo', hook_grant: null, hook_user: 'u-alice', hook_scope: 'openid profile', hook_client: 'web' })
})

t.test('a hook that declares a registered claim is a boot error naming the plugin', async (t) => {
  for (const claim of ['sub', 'aud', 'scope', 'cnf', 'at_hash']) {
    const declared = plugin(`declares-${claim}.mjs`, `
export default { name: 'declares-${claim}', register(host) { host.claims(() => ({}), { claims: ['roles', '${claim}'] }) } }
`)
    await t.rejects(startFlowServer(hookConfig([declared])), { message: new RegExp(`^plugins\\[\\d+\\] \\(declares-${claim}\\): claims hook may not set registered claim\\(s\\) ${claim}$`) }, claim)
  }
})

t.test('a hook that returns a registered claim at request time fails the request: 500 server_error, the plugin named in the log, no token', async (t) => {
  const srv = await startFlowServer(hookConfig([AUDIT_HOOK, EVIL_HOOK], ' evil:access_token evil:id_token evil:userinfo'))
  t.teardown(srv.close)
  const named = () => srv.log.lines.filter((l) => l.includes('"level":"error"') && l.includes('evil-hook') && l.includes('sub'))

  const cc = await token(srv, 'svc', { grant_type: 'client_credentials', scope: 'api evil:access_token' })
  t.equal(cc.status, 500)
  t.same(cc.json, { error: 'server_error', error_description: 'internal error' })
  t.notOk('access_token' in cc.json)
  t.equal(named().length, 1, 'one error line naming the plugin and the claim')

  // The ID token is refused even though the access token was fine: no response at all.
  const pw = await password(srv, 'openid evil:id_token offline_access')
  t.equal(pw.status, 500)
  t.equal(pw.json.error, 'server_error')
  t.notOk('access_token' in pw.json)
  t.notOk('refresh_token' in pw.json)
  t.equal(named().length, 2)

  const ok = await password(srv, 'openid evil:userinfo')
  t.equal(ok.status, 200, 'the hook leaves this token alone: ' + said(ok))
  const userinfo = await fetch(`${srv.url}/connect/userinfo`, { headers: { authorization: `Bearer ${ok.json.access_token as string}` } })
  t.equal(userinfo.status, 500)
  t.same(await userinfo.json(), { error: 'server_error', error_description: 'internal error' })
  t.equal(named().length, 3)

  // Clean requests still work alongside.
  const clean = await token(srv, 'svc', { grant_type: 'client_credentials', scope: 'api' })
  t.equal(clean.status, 200, said(clean))
  t.equal(decodeJwt(clean.json.access_token as string).sub, 'svc')
})

t.test('a hook returning something other than an object, or throwing, is a server_error too', async (t) => {
  const odd = plugin('odd-hook.mjs', `
export default { name: 'odd-hook', register(host) { host.claims((input) => {
  if (input.scope.includes('odd:array')) return ['x']
  if (input.scope.includes('odd:throw')) throw new Error('the roles service is down')
  return undefined
}) } }
`)
  const srv = await startFlowServer(hookConfig([odd], ' odd:array odd:throw'))
  t.teardown(srv.close)
  for (const scope of ['api odd:array', 'api odd:throw']) {
    const res = await token(srv, 'svc', { grant_type: 'client_credentials', scope })
    t.equal(res.status, 500, scope)
    t.equal(res.json.error, 'server_error', scope)
    t.notOk(JSON.stringify(res.json).includes('roles service'), 'no detail leaks')
  }
  t.ok(srv.log.lines.some((l) => l.includes('odd-hook')), 'the log names the plugin')
  const fine = await token(srv, 'svc', { grant_type: 'client_credentials', scope: 'api' })
  t.equal(fine.status, 200)
})

t.test('host.claims without a function is a boot error', async (t) => {
  const bad = plugin('bad-hook.mjs', `export default { name: 'bad-hook', register(host) { host.claims({ roles: ['x'] }) } }\n`)
  await t.rejects(startFlowServer(hookConfig([bad])), { message: /^plugins\[\d+\] \(bad-hook\): host\.claims\(\) needs a function$/ })
})

/** Unused helper kept typed: introspection of a hooked token still shows the core's claims. */
t.test('introspection of a hooked token shows the core-owned members', async (t) => {
  const srv: RunningServer = await startFlowServer(hookConfig([AUDIT_HOOK]))
  t.teardown(srv.close)
  const cc = await token(srv, 'svc', { grant_type: 'client_credentials', scope: 'orders:read' })
  const res = await postForm(`${srv.url}/connect/introspect`, { token: cc.json.access_token as string }, { authorization: basic('svc', 'svc-secret') })
  t.match(res.json, { active: true, sub: 'svc', aud: ORDERS, client_id: 'svc', scope: 'orders:read' })
})

t.test('the worked example (docs/plugins.md): roles from an external service, examples/claims-roles.json', async (t) => {
  const { createServer } = await import('node:http')
  const { readFileSync } = await import('node:fs')
  const { ROOT, startServer } = await import('../helpers/server.js')
  let up = true
  const asked: string[] = []
  const roles = createServer((req, res) => {
    const sub = new URL(req.url ?? '/', 'http://x').searchParams.get('sub') ?? ''
    asked.push(sub)
    if (!up) return void res.writeHead(503).end()
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ roles: sub === 'u-alice' ? ['admin', 'auditor'] : [] }))
  })
  await new Promise<void>((r) => roles.listen(0, '127.0.0.1', () => r()))
  t.teardown(() => new Promise<void>((r) => roles.close(() => r())))
  const rolesUrl = `http://127.0.0.1:${(roles.address() as { port: number }).port}/roles`

  const examples = join(ROOT, 'examples')
  const config = JSON.parse(readFileSync(join(examples, 'claims-roles.json'), 'utf8')) as { plugins: unknown[] } & Record<string, unknown>
  config.plugins = config.plugins.map((p) => (typeof p === 'object' && p !== null && (p as { use: string }).use.includes('roles-hook') ? { ...p, options: { url: rolesUrl } } : p))
  delete config.issuer
  const srv = await startServer(config, { baseDir: examples })
  t.teardown(srv.close)
  const post = (clientId: string, secret: string, form: Record<string, string>) => postForm(`${srv.url}/connect/token`, form, { authorization: basic(clientId, secret) })

  const api = await post('app', 'app-secret', { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'openid orders:read' })
  t.equal(api.status, 200, said(api))
  const at = decodeJwt(api.json.access_token as string)
  t.equal(at.aud, 'https://api.example.com/orders')
  t.same(at.roles, ['admin', 'auditor'], 'an access token for an API carries the roles')
  t.equal(api.json.expires_in, 600, "the resource's lifetime")
  t.notOk('roles' in decodeJwt(api.json.id_token as string), 'no roles scope: not in the ID token')

  const withScope = await post('app', 'app-secret', { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'openid roles org' })
  t.equal(withScope.status, 200, said(withScope))
  t.match(decodeJwt(withScope.json.id_token as string), { roles: ['admin', 'auditor'], tenant: 'acme', department: 'research' })
  const userinfo = await fetch(`${srv.url}/connect/userinfo`, { headers: { authorization: `Bearer ${withScope.json.access_token as string}` } })
  t.match(await userinfo.json(), { sub: 'u-alice', roles: ['admin', 'auditor'], tenant: 'acme' })

  const svc = await post('svc', 'svc-secret', { grant_type: 'client_credentials', scope: 'orders:read' })
  t.equal(svc.status, 200, said(svc))
  t.notOk('roles' in decodeJwt(svc.json.access_token as string), 'no user, no roles')
  t.ok(asked.every((s) => s === 'u-alice'), 'the service is only asked about users')

  up = false
  const down = await post('app', 'app-secret', { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'openid orders:read' })
  t.equal(down.status, 503, 'fails closed while the roles service is down')
  t.equal(down.json.error, 'temporarily_unavailable')
  t.notOk('access_token' in down.json)
})

t.test('grantd check shows the claims hook and the resources', async (t) => {
  const { spawnSync } = await import('node:child_process')
  const { CLI, ROOT } = await import('../helpers/server.js')
  const res = spawnSync(process.execPath, [CLI, 'check', '--config', join(ROOT, 'examples', 'claims-roles.json')], { encoding: 'utf8' })
  t.equal(res.status, 0, res.stderr)
  t.match(res.stdout, /^plugin roles-from-service \(\.\/claims-roles\/roles-hook\.mjs\) — claims hook$/m)
  t.match(res.stdout, /^resources: https:\/\/api\.example\.com\/orders \(orders:read orders:write\)$/m)
})

// The shared conformance checks a third-party hook can run too (test/helpers/claims-hook-contract.ts).
claimsHookContract(t, AUDIT_HOOK)

