/** application/x-www-form-urlencoded bodies (SPEC §5, §9): duplicates, bounds, NUL, odd escapes, content type. */
import t from 'tap'
import { parseForm } from '@grantd/core'
import { isFormContentType, MAX_PARAM_LENGTH } from '../../core/src/http/form-body.js'

t.test('values decode per WHATWG urlencoded parsing', async (t) => {
  const form = parseForm('grant_type=client_credentials&scope=a+b%20c&client_id=a%20b%3Ac%2Bd%25e%2F%C3%A9&empty=&bare')
  t.equal(form.get('grant_type'), 'client_credentials')
  t.equal(form.get('scope'), 'a b c', '+ and %20 are both a space')
  t.equal(form.get('client_id'), 'a b:c+d%e/é')
  t.equal(form.get('empty'), undefined, 'an empty value counts as absent (RFC 6749 §3.1)')
  t.equal(form.get('bare'), undefined, 'a name without = is an empty value')
  t.equal(form.get('missing'), undefined)
  t.notOk(form.has('empty'))
  t.ok(form.has('scope'))
  t.same([...form.names()], ['grant_type', 'scope', 'client_id', 'empty', 'bare'])
  t.same([...parseForm('').names()], [])
})

t.test('invalid escapes and invalid UTF-8 never throw', async (t) => {
  t.equal(parseForm('scope=%zz%').get('scope'), '%zz%', 'invalid escapes are kept literally')
  t.equal(parseForm('scope=%FF%FE').get('scope'), '\ufffd\ufffd', 'invalid UTF-8 becomes U+FFFD')
  t.same([...parseForm('%%%&&&===&a=1').names()].sort(), ['', '%%%', 'a'].sort())
})

t.test('a parameter given twice is invalid_request when read, whatever the values', async (t) => {
  const form = parseForm('grant_type=a&grant_type=a&scope=x&client_id=c&client_id=')
  t.equal(form.count('grant_type'), 2)
  t.throws(() => form.get('grant_type'), { name: 'OAuthError', error: 'invalid_request', message: /grant_type/ })
  t.throws(() => form.get('client_id'), { name: 'OAuthError', error: 'invalid_request' }, 'repeated even when one copy is empty')
  t.throws(() => form.has('grant_type'), { name: 'OAuthError', error: 'invalid_request' })
  t.equal(form.get('scope'), 'x', 'other parameters still read')
})

t.test('bounds apply to the parameters read: NUL and value length', async (t) => {
  t.throws(() => parseForm('scope=api%00').get('scope'), { name: 'OAuthError', error: 'invalid_request' })
  t.throws(() => parseForm('a=\u0000').get('a'), { name: 'OAuthError', error: 'invalid_request' })
  t.equal(parseForm(`v=${'a'.repeat(MAX_PARAM_LENGTH)}`).get('v')!.length, MAX_PARAM_LENGTH)
  t.throws(() => parseForm(`v=${'a'.repeat(MAX_PARAM_LENGTH + 1)}`).get('v'), { name: 'OAuthError', error: 'invalid_request', message: 'parameter v is too long' })
  // Length counts decoded characters: 4096 escaped bytes are fewer characters.
  t.equal(parseForm(`v=${'%C3%A9'.repeat(MAX_PARAM_LENGTH)}`).get('v')!.length, MAX_PARAM_LENGTH)
  t.throws(() => parseForm('a=1&b=x%00&b=y').check(['a', 'b']), { name: 'OAuthError', error: 'invalid_request' }, 'check() reads without using')
})

t.test('RFC 6749 §3.2: parameters nobody reads are never refused', async (t) => {
  const big = parseForm(`x%00=1&junk=%00&${'n'.repeat(4096)}=1&pad=${'a'.repeat(15 * 1024)}&r=1&r=2&scope=api`)
  t.equal(big.get('scope'), 'api')
  t.doesNotThrow(() => big.check(['scope', 'grant_type']))
  const params = (n: number) => Array.from({ length: n }, (_, i) => `p${i}=1`).join('&')
  t.equal([...parseForm(params(4000)).names()].length, 4000, 'no count limit: the 16 KiB body bounds it')
})

t.test('content type: the form media type only, any case, with parameters', async (t) => {
  for (const ok of ['application/x-www-form-urlencoded', 'Application/X-WWW-Form-Urlencoded', 'application/x-www-form-urlencoded; charset=UTF-8', ' application/x-www-form-urlencoded ;charset=utf-8']) {
    t.ok(isFormContentType(ok), ok)
  }
  for (const bad of [undefined, '', 'application/json', 'multipart/form-data; boundary=x', 'text/plain', 'application/x-www-form-urlencodedx', 'application/x-www-form-urlencoded-evil; a=b', 'x-www-form-urlencoded']) {
    t.notOk(isFormContentType(bad), String(bad))
  }
})
