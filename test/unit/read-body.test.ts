/** Reading a request body with the SPEC §5 16 KiB limit (parsing itself: form-parsing.test.ts). */
import t from 'tap'
import { PassThrough } from 'node:stream'
import type { IncomingMessage } from 'node:http'
import { MAX_FORM_BYTES, readBody } from '../../core/src/form-body.js'

function fakeRequest(chunks: Buffer[], headers: Record<string, string> = {}): IncomingMessage {
  const stream = new PassThrough()
  Object.assign(stream, { headers })
  setImmediate(() => { for (const c of chunks) stream.write(c); stream.end() })
  return stream as unknown as IncomingMessage
}

t.test('readBody: 16 KiB limit by declared length and by bytes read', async (t) => {
  t.equal(await readBody(fakeRequest([Buffer.from('a=1'), Buffer.from('&b=2')])), 'a=1&b=2')
  t.equal(await readBody(fakeRequest([])), '')
  await t.rejects(readBody(fakeRequest([], { 'content-length': String(MAX_FORM_BYTES + 1) })), { name: 'OAuthError', error: 'invalid_request', status: 413 })
  await t.rejects(readBody(fakeRequest([Buffer.alloc(10_000, 97), Buffer.alloc(10_000, 97)])), { name: 'OAuthError', error: 'invalid_request', status: 413 })
  t.equal((await readBody(fakeRequest([Buffer.alloc(MAX_FORM_BYTES, 97)]))).length, MAX_FORM_BYTES, 'exactly the limit is fine')
  t.equal(await readBody(fakeRequest([Buffer.from([0x61, 0xff, 0x62])])), 'a\ufffdb', 'invalid UTF-8 becomes U+FFFD')
  // A multi-byte character split across chunks still decodes.
  const e = Buffer.from('é')
  t.equal(await readBody(fakeRequest([Buffer.from([0x61, e[0]!]), Buffer.from([e[1]!, 0x62])])), 'aéb')
})
