/** RFC 8628 §6.1 user codes: the pure parts (alphabet, format, normalisation). */
import t from 'tap'
import { formatUserCode, generateUserCode, normalizeUserCode, USER_CODE_ALPHABET } from '@grantd/grant-device-code'

t.test('generated codes: 8 letters of the alphabet, every letter used', async (t) => {
  const seen = new Set<string>()
  for (let i = 0; i < 500; i++) {
    const code = generateUserCode()
    t.equal(code.length, 8)
    for (const c of code) seen.add(c)
    if (!/^[BCDFGHJKLMNPQRSTVWXZ]{8}$/.test(code)) t.fail(`bad code ${code}`)
  }
  t.equal(seen.size, USER_CODE_ALPHABET.length, 'all 20 letters occur')
  t.equal(USER_CODE_ALPHABET, 'BCDFGHJKLMNPQRSTVWXZ')
})

t.test('format and normalise', async (t) => {
  t.equal(formatUserCode('BCDFGHJK'), 'BCDF-GHJK')
  for (const typed of ['BCDF-GHJK', 'bcdf-ghjk', 'bcdfghjk', ' bcdf ghjk ', 'BC-DF-GH-JK', 'bcdf\tghjk', 'BCDF\u2013GHJK']) {
    t.equal(normalizeUserCode(typed), 'BCDFGHJK', JSON.stringify(typed))
  }
  for (const bad of ['', 'BCDF-GHJ', 'BCDF-GHJKL', 'ABCD-EFGH', 'BCDF-GHJ0', 'x'.repeat(100), 'BCDF_GHJK']) {
    t.equal(normalizeUserCode(bad), undefined, JSON.stringify(bad))
  }
})
