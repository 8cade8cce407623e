/**
 * SPEC §4: `proxy.trust` also decides whether X-Forwarded-For names the client address
 * that request logs show; an untrusted peer cannot choose the address it is logged under.
 */
import t from 'tap'
import { startServer, type RunningServer } from '../helpers/server.js'

const CLIENTS = [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' }]

async function loggedIp(srv: RunningServer, headers: Record<string, string>): Promise<unknown> {
  const path = `/healthz?probe=${Math.random()}`
  await (await fetch(`${srv.url}${path}`, { headers })).text()
  const line = srv.log.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request' && l.path === '/healthz').at(-1)
  return line?.ip
}

t.test('X-Forwarded-For counts only from a trusted proxy', async (t) => {
  const plain = await startServer({ plugins: ['@grantd/grant-client-credentials'], clients: CLIENTS })
  t.teardown(plain.close)
  t.equal(await loggedIp(plain, { 'x-forwarded-for': '198.51.100.7' }), '127.0.0.1', 'no proxy.trust: the peer')

  const trusted = await startServer({ proxy: { trust: ['127.0.0.1'] }, plugins: ['@grantd/grant-client-credentials'], clients: CLIENTS })
  t.teardown(trusted.close)
  t.equal(await loggedIp(trusted, { 'x-forwarded-for': '198.51.100.7' }), '198.51.100.7', 'trusted peer: the forwarded client')
  t.equal(await loggedIp(trusted, { 'x-forwarded-for': '203.0.113.66, 198.51.100.7' }), '198.51.100.7', 'a client-supplied leftmost hop is not believed')
  t.equal(await loggedIp(trusted, {}), '127.0.0.1', 'no header: the peer')

  const otherProxy = await startServer({ proxy: { trust: ['10.0.0.0/8'] }, plugins: ['@grantd/grant-client-credentials'], clients: CLIENTS })
  t.teardown(otherProxy.close)
  t.equal(await loggedIp(otherProxy, { 'x-forwarded-for': '198.51.100.7' }), '127.0.0.1', 'a peer outside the list cannot forward')

  // A configured issuer fixes the URLs, not the client address: that still comes from the trusted proxy.
  const fixed = await startServer({ issuer: 'https://id.example.com', proxy: { trust: true }, plugins: ['@grantd/grant-client-credentials'], clients: CLIENTS })
  t.teardown(fixed.close)
  t.equal(await loggedIp(fixed, { 'x-forwarded-for': '198.51.100.7' }), '198.51.100.7')
})
