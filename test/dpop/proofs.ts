/**
 * Hand-made DPoP proofs (RFC 9449 §4.2) signed with jose, for the attack tests: every field
 * can be set wrong on purpose. The well-behaved client in the tests is oauth4webapi's DPoP handle.
 */
import { createHash, randomUUID } from 'node:crypto'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose'
import { baseConfig, startFlowServer, SPA_REDIRECT, WEB_REDIRECT } from '../authorization-code/flow.js'
import type { RunningServer } from '../helpers/server.js'

export interface ProofKey {
  privateKey: CryptoKey
  publicJwk: JWK
  jkt: string
  alg: string
}

export async function proofKey(alg = 'ES256'): Promise<ProofKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const publicJwk = await exportJWK(publicKey)
  return { privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256'), alg }
}

export interface ProofFields {
  htm?: string
  htu: string
  iat?: number
  jti?: string
  nonce?: string
  /** The access token whose hash goes into `ath`. */
  accessToken?: string
  typ?: string
  jwk?: JWK
  alg?: string
}

export async function makeProof(key: ProofKey, fields: ProofFields): Promise<string> {
  const payload: Record<string, unknown> = {
    jti: fields.jti ?? randomUUID(),
    htm: fields.htm ?? 'POST',
    htu: fields.htu,
  }
  if (fields.nonce !== undefined) payload.nonce = fields.nonce
  if (fields.accessToken !== undefined) payload.ath = createHash('sha256').update(fields.accessToken).digest('base64url')
  return new SignJWT(payload)
    .setProtectedHeader({ alg: fields.alg ?? key.alg, typ: fields.typ ?? 'dpop+jwt', jwk: fields.jwk ?? key.publicJwk })
    .setIssuedAt(fields.iat ?? Math.floor(Date.now() / 1000))
    .sign(key.privateKey)
}

/** An unsigned JWS with the given header and payload and a junk signature part. */
export function unsignedProof(header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  return `${enc(header)}.${enc(payload)}.${Buffer.from('not a signature').toString('base64url')}`
}

export const DPOP_CLIENTS = [
  { client_id: 'web', client_secret: 'web-secret', grant_types: ['authorization_code', 'refresh_token', 'client_credentials'], redirect_uris: [WEB_REDIRECT], scope: 'openid profile email offline_access api', require_pkce: true },
  { client_id: 'spa', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [SPA_REDIRECT], scope: 'openid api offline_access' },
  { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'], scope: 'api' },
  { client_id: 'bound', client_secret: 'bound-secret', grant_types: ['client_credentials'], scope: 'api', dpop_bound_access_tokens: true },
]

/** A server with @grantd/dpop and the code, refresh and client_credentials grants. */
export function startDpopServer(options: { dpop?: Record<string, unknown>; tokens?: Record<string, unknown>; extraPlugins?: unknown[] } = {}): Promise<RunningServer> {
  return startFlowServer(baseConfig({
    ...(options.tokens ? { tokens: options.tokens } : {}),
    plugins: ['@grantd/grant-authorization-code', '@grantd/grant-refresh-token', '@grantd/grant-client-credentials',
      { use: '@grantd/dpop', options: options.dpop ?? {} }, ...(options.extraPlugins ?? [])],
    clients: DPOP_CLIENTS,
  }))
}
