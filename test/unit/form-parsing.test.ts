/** application/x-www-form-urlencoded bodies (SPEC §5): duplicates, bounds, NUL, odd escapes, content type. */
import t from 'tap'
import { parseForm } from '@grantd/core'
import { isFormContentType, MAX_PARAM_LENGTH, MAX_PARAMS } from '../../core/src/form-body.js'

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

t.test('bounds: NUL, value length, name length, parameter count', async (t) => {
  t.throws(() => parseForm('scope=api%00'), { name: 'OAuthError', error: 'invalid_request' })
  t.throws(() => parseForm('x%00=1'), { name: 'OAuthError', error: 'invalid_request' })
  t.throws(() => parseForm('a=\u0000'), { name: 'OAuthError', error: 'invalid_request' })
  t.equal(parseForm(`v=${'a'.repeat(MAX_PARAM_LENGTH)}`).get('v')!.length, MAX_PARAM_LENGTH)
  t.throws(() => parseForm(`v=${'a'.repeat(MAX_PARAM_LENGTH + 1)}`), { name: 'OAuthError', error: 'invalid_request' })
  // Length counts decoded characters: 4096 escaped bytes are fewer characters.
  t.equal(parseForm(`v=${'%C3%A9'.repeat(MAX_PARAM_LENGTH)}`).get('v')!.length, MAX_PARAM_LENGTH)
  t.throws(() => parseForm(`${'n'.repeat(129)}=1`), { name: 'OAuthError', error: 'invalid_request' })
  const params = (n: number) => Array.from({ length: n }, (_, i) => `p${i}=1`).join('&')
  t.equal([...parseForm(params(MAX_PARAMS)).names()].length, MAX_PARAMS)
  t.throws(() => parseForm(params(MAX_PARAMS + 1)), { name: 'OAuthError', error: 'invalid_request', message: 'too many parameters' })
})

t.test('content type: the form media type only, any case, with parameters', async (t) => {
  for (const ok of ['application/x-www-form-urlencoded', 'Application/X-WWW-Form-Urlencoded', 'application/x-www-form-urlencoded; charset=UTF-8', ' application/x-www-form-urlencoded ;charset=utf-8']) {
    t.ok(isFormContentType(ok), ok)
  }
  for (const bad of [undefined, '', 'application/json', 'multipart/form-data; boundary=x', 'text/plain', 'application/x-www-form-urlencodedx', 'application/x-www-form-urlencoded-evil; a=b', 'x-www-form-urlencoded']) {
    t.notOk(isFormContentType(bad), String(bad))
  }
})
