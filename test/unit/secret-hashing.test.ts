/** SPEC §3 client secrets: `$scrypt$` hashes and clear secrets, both checked in constant time. */
import t from 'tap'
import { hashSecret, SecretVerifier } from '@grantd/core'
import { isHashedSecret, parseHashedSecret } from '../../core/src/clients/client-secret.js'

const LN = 10 // the cheapest cost the verifier accepts: keeps the test fast

t.test('hashSecret: a PHC-like string, a fresh salt every time', async (t) => {
  const [a, b] = await Promise.all([hashSecret('s3cret', LN), hashSecret('s3cret', LN)])
  t.match(a, /^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/)
  t.not(a, b, 'salted')
  t.ok(isHashedSecret(a))
  t.notOk(isHashedSecret('s3cret'))
  t.match(parseHashedSecret(a), { ln: 10, r: 8, p: 1 })
  t.match(await hashSecret('x'), /^\$scrypt\$ln=15,/, 'the default cost is ln=15')
})

t.test('a hashed secret: right passes, wrong fails, before and after a success', async (t) => {
  const secret = 'a b:c+d%e/é'
  const v = new SecretVerifier(await hashSecret(secret, LN))
  t.equal(await v.verify('wrong'), false)
  t.equal(await v.verify(''), false)
  t.equal(await v.verify(secret), true)
  t.equal(await v.verify(secret), true, 'again (remembered)')
  t.equal(await v.verify(`${secret} `), false, 'a near miss after a success')
  t.equal(await v.verify(secret.normalize('NFD')), false, 'another Unicode normalisation is another secret')
  const all = await Promise.all(['x', secret, 'y', secret].map((s) => v.verify(s)))
  t.same(all, [false, true, false, true], 'concurrent checks')
})

t.test('a clear secret: exact match only, any length', async (t) => {
  const v = new SecretVerifier('dev-secret')
  t.equal(await v.verify('dev-secret'), true)
  for (const wrong of ['', 'dev-secre', 'dev-secret ', 'DEV-SECRET', 'dev-secret'.repeat(100)]) t.equal(await v.verify(wrong), false, JSON.stringify(wrong.slice(0, 20)))
  // Only `$scrypt$` marks a hash; any other string, even one starting with `$`, is a clear secret.
  t.equal(await new SecretVerifier('$crypt$abc').verify('$crypt$abc'), true, 'other $-prefixes are clear secrets')
})

t.test('malformed hashes are refused when the client is loaded, not at request time', async (t) => {
  const good = await hashSecret('x', LN)
  const [, , params, salt, hash] = good.split('$') as [string, string, string, string, string]
  for (const bad of [
    '$scrypt$', '$scrypt$ln=10,r=8,p=1$', `$scrypt$ln=10,r=8$${salt}$${hash}`, `$scrypt$ln=9,r=8,p=1$${salt}$${hash}`,
    `$scrypt$ln=21,r=8,p=1$${salt}$${hash}`, `$scrypt$ln=10,r=0,p=1$${salt}$${hash}`, `$scrypt$ln=10,r=8,p=1$${salt.slice(0, 10)}$${hash}`,
    `$scrypt$ln=10,r=8,p=1$${salt}$${hash.slice(0, 20)}`, `$scrypt$ln=x,r=8,p=1$${salt}$${hash}`, `$scrypt$${params}$${salt}$${hash}$extra`,
  ]) t.throws(() => new SecretVerifier(bad), /malformed/, bad)
})
