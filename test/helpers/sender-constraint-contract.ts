/**
 * Conformance checks for a sender-constraint plugin (`host.senderConstraint()`, RFC 9449 DPoP,
 * RFC 8705 mTLS), like the store and claims-hook contracts: hand it the plugin reference and a
 * way to make "provers" (a client holding one key or certificate) and it runs, against a real
 * server with the plugin loaded: client_credentials, the code flow of a public client, refresh,
 * userinfo and introspection, with one prover and with another one.
 *
 *   senderConstraintContract(t, { plugin: { use: '@grantd/dpop' }, prover: async () => myProver, scheme: 'DPoP', tokenType: 'DPoP' })
 */
import type { Test } from 'tap'
import { decodeJwt } from 'jose'
import { loginForCode, SPA_REDIRECT, startFlowServer, WEB_REDIRECT } from '../authorization-code/flow.js'
import { basic } from './server.js'

/** A client holding one key (DPoP) or certificate (mTLS): it sends requests with its proof attached. */
export interface SenderProver {
  /** Send `init` to `url` with this prover's proof; `accessToken` when calling a resource with a bound token. */
  send(url: string, init: { method: 'GET' | 'POST'; headers?: Record<string, string>; body?: string }, accessToken?: string): Promise<Response>
}

export interface SenderConstraintContractOptions {
  plugin: string | { use: string; options?: unknown }
  /** A new prover with a key / certificate of its own. */
  prover: () => Promise<SenderProver>
  /** The Authorization scheme bound tokens are presented with at userinfo (`DPoP`; `Bearer` for mTLS). */
  scheme: string
  /** The token_type bound tokens are issued with (`DPoP`; `Bearer` for mTLS). */
  tokenType: string
}

export function senderConstraintContract(t: Test, options: SenderConstraintContractOptions): void {
  t.test('sender-constraint contract', async (t) => {
    const srv = await startFlowServer({
      cookies: { keys: ['contract-cookie-key-0123456789'] },
      users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-alice', username: 'alice', password: 'wonderland', claims: { name: 'Alice' } }] } },
      plugins: ['@grantd/grant-authorization-code', '@grantd/grant-refresh-token', '@grantd/grant-client-credentials', options.plugin],
      clients: [
        { client_id: 'web', client_secret: 'web-secret', grant_types: ['authorization_code', 'refresh_token', 'client_credentials'], redirect_uris: [WEB_REDIRECT], scope: 'openid offline_access api' },
        { client_id: 'spa', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [SPA_REDIRECT], scope: 'openid api offline_access' },
      ],
    })
    t.teardown(srv.close)
    const token = `${srv.url}/connect/token`
    const form = (body: Record<string, string>, auth?: string) => ({
      method: 'POST' as const, body: new URLSearchParams(body).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(auth ? { authorization: auth } : {}) },
    })
    const json = async (res: Response) => ({ status: res.status, body: await res.json() as Record<string, unknown> })
    const web = basic('web', 'web-secret')
    const a = await options.prover()
    const b = await options.prover()

    // client_credentials: the token carries the binding, introspection answers it.
    const cc = await json(await a.send(token, form({ grant_type: 'client_credentials', scope: 'api' }, web)))
    t.equal(cc.status, 200, 'client_credentials with a proof')
    t.equal(cc.body.token_type, options.tokenType)
    const cnf = decodeJwt(cc.body.access_token as string).cnf as Record<string, unknown> | undefined
    t.ok(cnf && Object.keys(cnf).length > 0, 'the access token has cnf')
    const intro = await json(await fetch(`${srv.url}/connect/introspect`, form({ token: cc.body.access_token as string }, web)))
    t.same(intro.body.cnf, cnf, 'introspection answers the same cnf')
    t.equal(intro.body.token_type, options.tokenType, 'and the token_type')
    const ccB = await json(await b.send(token, form({ grant_type: 'client_credentials', scope: 'api' }, web)))
    t.notSame(decodeJwt(ccB.body.access_token as string).cnf, cnf, 'another prover, another binding')

    // A public client: code flow, userinfo, refresh bound to the prover.
    const { code, verifier } = await loginForCode(srv, { client: 'spa', scope: 'openid api offline_access' })
    const first = await json(await a.send(token, form({ grant_type: 'authorization_code', code, redirect_uri: SPA_REDIRECT, code_verifier: verifier, client_id: 'spa' })))
    t.equal(first.status, 200, 'code redeemed with a proof')
    const at = first.body.access_token as string
    t.same(decodeJwt(at).cnf, cnf, 'bound to the same prover as before')
    const ui = `${srv.url}/connect/userinfo`
    t.equal((await a.send(ui, { method: 'GET', headers: { authorization: `${options.scheme} ${at}` } }, at)).status, 200, 'userinfo with the prover')
    t.equal((await b.send(ui, { method: 'GET', headers: { authorization: `${options.scheme} ${at}` } }, at)).status, 401, 'userinfo with another prover')
    if (options.scheme.toLowerCase() !== 'bearer') {
      t.equal((await fetch(ui, { headers: { authorization: `Bearer ${at}` } })).status, 401, 'the bound token as a plain Bearer token')
    }
    const refresh = form({ grant_type: 'refresh_token', refresh_token: first.body.refresh_token as string, client_id: 'spa' })
    const stolen = await json(await b.send(token, refresh))
    t.equal(stolen.body.error, 'invalid_grant', 'the refresh token with another prover')
    const bare = await json(await fetch(token, refresh))
    t.equal(bare.body.error, 'invalid_grant', 'the refresh token without a proof')
    const mine = await json(await a.send(token, refresh))
    t.equal(mine.status, 200, 'the refresh token with its prover (not spent by the refusals)')
    t.same(decodeJwt(mine.body.access_token as string).cnf, cnf)
  })
}
