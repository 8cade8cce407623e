/** HTTP Basic client credentials, RFC 6749 §2.3.1: form-decode each half after base64. */
import t from 'tap'
import { parseBasic } from '../../core/src/clients/client-auth.js'

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64')
const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+')

t.test('decodes form-encoded halves', async (t) => {
  t.same(parseBasic(`Basic ${b64('svc:svc-secret')}`), { id: 'svc', secret: 'svc-secret' })
  const id = 'a b:c+d%e/é'
  const secret = 's3 cr:et+%/é&='
  t.same(parseBasic(`Basic ${b64(`${enc(id)}:${enc(secret)}`)}`), { id, secret })
  t.same(parseBasic(`Basic ${b64(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`)}`), { id, secret }, '%20 works like +')
  t.same(parseBasic(`basic ${b64('a:b')}`), { id: 'a', secret: 'b' }, 'scheme is case-insensitive')
  t.same(parseBasic(`Basic   ${b64('a:b')}  `), { id: 'a', secret: 'b' }, 'extra spaces around the credentials')
  t.same(parseBasic(`Basic ${b64('a:')}`), { id: 'a', secret: '' }, 'empty secret is decoded (and then fails verification)')
  t.same(parseBasic(`Basic ${b64('a:b:c')}`), { id: 'a', secret: 'b:c' }, 'the first colon splits')
  t.same(parseBasic(`Basic ${b64('a+b:c')}`), { id: 'a b', secret: 'c' }, 'an unencoded + is a space')
})

t.test('malformed credentials decode to nothing, never throw', async (t) => {
  const bad = [
    'Basic', 'Basic ', 'Bearer abc', `Digest ${b64('a:b')}`, `Basic ${b64('no-colon')}`, `Basic ${b64(':secret')}`,
    `Basic ${b64('a%zz:b')}`, `Basic ${b64('a:%E0%A4%A')}`, `Basic ${b64('a:b')} extra`, 'Basic !!!!', `Basic ${'A'.repeat(3000)}`,
    `Basic${b64('a:b')}`,
  ]
  for (const header of bad) t.equal(parseBasic(header), undefined, header.slice(0, 40))
  t.doesNotThrow(() => parseBasic(`Basic ${b64(Buffer.from([0xff, 0x3a, 0xfe]))}`))
})
