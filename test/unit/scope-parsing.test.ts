/** RFC 6749 §3.3 scope strings: space-delimited, case-sensitive, a restricted character set. */
import t, { type Test } from 'tap'
import { formatScope, isSubset, OAuthError, parseScope } from '@grantd/core'

function refused(t: Test, value: string, error: string, what: string): void {
  try {
    parseScope(value)
    t.fail(`${what}: accepted`)
  } catch (err) {
    t.ok(err instanceof OAuthError, `${what}: an OAuthError`)
    t.equal((err as OAuthError).error, error, what)
  }
}

t.test('splits on spaces, drops empties and duplicates, keeps order and case', async (t) => {
  t.equal(parseScope(undefined), undefined, 'absent stays absent')
  t.same(parseScope(''), [])
  t.same(parseScope('   '), [])
  t.same(parseScope('api'), ['api'])
  t.same(parseScope('  b a  b api:read '), ['b', 'a', 'api:read'])
  t.same(parseScope('API api'), ['API', 'api'], 'case-sensitive')
  // Every printable ASCII character except space, " and \ is allowed (%x21 / %x23-5B / %x5D-7E).
  t.same(parseScope("!#$%&'()*+,-./:;<=>?@[]^_`{|}~"), ["!#$%&'()*+,-./:;<=>?@[]^_`{|}~"])
  t.equal(formatScope(parseScope('z  y z')!), 'z y')
})

t.test('forbidden characters are invalid_scope; oversize input is invalid_request', async (t) => {
  for (const [value, what] of [
    ['api "x"', 'double quote'], ['a\\b', 'backslash'], ['a\tb', 'tab is not a separator'], ['a\nb', 'newline'],
    ['a\u0000', 'NUL'], ['café', 'non-ASCII'], ['a\u00a0b', 'no-break space'], ['\u007f', 'DEL'],
  ] as const) refused(t, value, 'invalid_scope', what)
  refused(t, 'a'.repeat(2049), 'invalid_request', 'longer than 2048')
  t.same(parseScope('a'.repeat(2048)), ['a'.repeat(2048)], '2048 is fine')
  refused(t, Array.from({ length: 65 }, (_, i) => `s${i}`).join(' '), 'invalid_request', 'more than 64 scopes')
  t.equal(parseScope(Array.from({ length: 64 }, (_, i) => `s${i}`).join(' '))!.length, 64)
  t.equal(parseScope(Array.from({ length: 200 }, () => 'same').join(' '))!.length, 1, 'repeats do not count')
})

t.test('isSubset: every requested scope must be allowed', async (t) => {
  t.ok(isSubset([], []))
  t.ok(isSubset(['a'], ['a', 'b']))
  t.ok(isSubset(['b', 'a'], new Set(['a', 'b'])))
  t.notOk(isSubset(['a', 'c'], ['a', 'b']))
  t.notOk(isSubset(['A'], ['a']))
  t.notOk(isSubset(['a'], new Set()))
})
