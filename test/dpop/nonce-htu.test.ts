/** Pure logic of @grantd/dpop: htu normalisation (RFC 3986 §6.2.2–6.2.3) and the nonce windows. */
import t from 'tap'
import { NonceSource, normalizeHtu } from '@grantd/dpop'

t.test('normalizeHtu', async (t) => {
  const base = 'https://id.example.com/connect/token'
  for (const same of ['HTTPS://ID.EXAMPLE.COM/connect/token', 'https://id.example.com:443/connect/token', 'https://id.example.com/connect/token?x=1#y',
    'https://id.example.com/connect/./token', 'https://id.example.com/connect/%74oken']) {
    t.equal(normalizeHtu(same), base, same)
  }
  for (const other of ['http://id.example.com/connect/token', 'https://id.example.com:8443/connect/token', 'https://id.example.com/connect/Token',
    'https://id.example.com/connect/token/', 'https://evil.example/connect/token']) {
    t.not(normalizeHtu(other), base, other)
  }
  t.equal(normalizeHtu('https://h/a%2fb'), 'https://h/a%2Fb', 'reserved percent-encodings stay encoded, upper-cased')
  t.equal(normalizeHtu('ftp://h/x'), undefined)
  t.equal(normalizeHtu('/connect/token'), undefined)
})

t.test('NonceSource: valid for one to two windows, in every process sharing the secret', async (t) => {
  const one = new NonceSource(['secret-a'], 300)
  const two = new NonceSource(['secret-a'], 300)
  const start = 1_800_000_000 - (1_800_000_000 % 300)
  const nonce = one.current(start + 10)
  t.ok(two.isValid(nonce, start + 10), 'another process accepts it')
  t.ok(two.isValid(nonce, start + 599), 'until the end of the next window')
  t.notOk(two.isValid(nonce, start + 600), 'not after two windows')
  t.notOk(two.isValid(nonce, start - 1), 'not before it was made')
  t.notOk(new NonceSource(['secret-b'], 300).isValid(nonce, start + 10), 'another secret does not accept it')
  t.ok(new NonceSource(['secret-b', 'secret-a'], 300).isValid(nonce, start + 10), 'an older secret still verifies')
  t.notOk(one.isValid('x', start), 'malformed')
  t.not(one.current(start), one.current(start + 300), 'a new nonce each window')
})
