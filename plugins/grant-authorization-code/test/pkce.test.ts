import t from 'tap'
import { OAuthError, type Client } from '@grantd/core'
import { challengeOf, isValidVerifier, pkceRequired, verifierMatches } from '../src/pkce.js'

/** Pure PKCE rules (RFC 7636, RFC 9700 §2.1.1); the HTTP behaviour is in test/authorization-code. */

function client(overrides: Partial<Client> = {}): Client {
  return {
    client_id: 'c', token_endpoint_auth_method: 'client_secret_basic', grant_types: ['authorization_code'], redirect_uris: [],
    scopes: new Set(['openid']), require_pkce: false, allow_plain_pkce: false, identity_providers: [], confidential: true, ...overrides,
  }
}

// RFC 7636 Appendix B.
const VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'

t.test('S256 matches the RFC 7636 Appendix B example', async (t) => {
  t.ok(verifierMatches(VERIFIER, { challenge: CHALLENGE, method: 'S256' }))
  t.notOk(verifierMatches(VERIFIER.replace('d', 'e'), { challenge: CHALLENGE, method: 'S256' }))
  t.notOk(verifierMatches(CHALLENGE, { challenge: CHALLENGE, method: 'S256' }), 'the challenge is not a verifier')
})

t.test('plain compares the verifier itself', async (t) => {
  const v = 'a'.repeat(43)
  t.ok(verifierMatches(v, { challenge: v, method: 'plain' }))
  t.notOk(verifierMatches('b'.repeat(43), { challenge: v, method: 'plain' }))
})

t.test('verifier grammar: 43-128 of [A-Za-z0-9-._~]', async (t) => {
  t.ok(isValidVerifier('a'.repeat(43)))
  t.ok(isValidVerifier('A-._~'.repeat(20) + 'abcdefgh'))
  t.notOk(isValidVerifier('a'.repeat(42)))
  t.notOk(isValidVerifier('a'.repeat(129)))
  t.notOk(isValidVerifier('a'.repeat(42) + '+'))
  t.notOk(isValidVerifier('a'.repeat(42) + ' '))
  t.notOk(verifierMatches('a'.repeat(42), { challenge: 'a'.repeat(42), method: 'plain' }), 'a short verifier never matches')
})

/** The call throws OAuthError invalid_request (what the endpoint turns into an error redirect). */
function refused(fn: () => unknown): boolean {
  try {
    fn()
    return false
  } catch (err) {
    return err instanceof OAuthError && err.error === 'invalid_request'
  }
}

t.test('who must send a challenge, and which methods are accepted', async (t) => {
  t.notOk(pkceRequired(client()))
  t.ok(pkceRequired(client({ require_pkce: true })))
  t.ok(pkceRequired(client({ token_endpoint_auth_method: 'none', confidential: false })))

  t.equal(challengeOf(client(), undefined, undefined), undefined, 'optional for a plain confidential client')
  t.ok(refused(() => challengeOf(client({ require_pkce: true }), undefined, undefined)))
  t.ok(refused(() => challengeOf(client(), undefined, 'S256')), 'method without challenge')
  t.same(challengeOf(client(), CHALLENGE, 'S256'), { challenge: CHALLENGE, method: 'S256' })
  t.ok(refused(() => challengeOf(client(), CHALLENGE.slice(1), 'S256')), 'S256 challenge is 43 chars')
  t.ok(refused(() => challengeOf(client(), CHALLENGE, undefined)), 'defaults to plain, refused')
  t.ok(refused(() => challengeOf(client(), CHALLENGE, 'plain')))
  t.same(challengeOf(client({ allow_plain_pkce: true }), CHALLENGE, undefined), { challenge: CHALLENGE, method: 'plain' })
  t.ok(refused(() => challengeOf(client({ allow_plain_pkce: true }), 'short', 'plain')))
  t.ok(refused(() => challengeOf(client(), CHALLENGE, 's256')), 'method names are case-sensitive')
})
