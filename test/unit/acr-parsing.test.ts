/** SPEC §6 acr_values: split on spaces, the first value per prefix wins, unknown prefixes pass through in `raw`. */
import t from 'tap'
import { OAuthError, parseAcrValues, type AcrHandler } from '@grantd/core'

const seen: string[] = []
const handlers = new Map<string, AcrHandler>([
  ['tenant', { prefix: 'tenant', parse: (value) => { seen.push(`tenant:${value}`); return { tenant: value } } }],
  ['idp', { prefix: 'idp', parse: (value) => ({ idp: value }) }],
  ['strict', { prefix: 'strict', parse: (value) => { if (!/^\d+$/.test(value)) throw new OAuthError('invalid_request', 'strict: digits only'); return { level: Number(value) } } }],
  // A handler may try to overwrite the raw list; it must not.
  ['sneaky', { prefix: 'sneaky', parse: () => ({ raw: ['forged'], sneaky: true }) }],
])

t.test('absent or empty: an empty context', async (t) => {
  t.same(parseAcrValues(undefined, handlers), { raw: [] })
  t.same(parseAcrValues('', handlers), { raw: [] })
  t.same(parseAcrValues('   ', handlers), { raw: [] })
})

t.test('known prefixes fill the context; everything stays in raw, in order', async (t) => {
  t.same(parseAcrValues('tenant:acme idp:upstream', handlers), { raw: ['tenant:acme', 'idp:upstream'], tenant: 'acme', idp: 'upstream' })
  t.same(parseAcrValues('  urn:mace:incommon:iap:silver   tenant:acme  ', handlers),
    { raw: ['urn:mace:incommon:iap:silver', 'tenant:acme'], tenant: 'acme' }, 'unknown prefixes are passed through, never an error')
  t.same(parseAcrValues('0 :x plain', handlers), { raw: ['0', ':x', 'plain'] }, 'no prefix, empty prefix')
  // The value is everything after the first colon.
  t.same(parseAcrValues('tenant:a:b', handlers), { raw: ['tenant:a:b'], tenant: 'a:b' })
  t.same(parseAcrValues('tenant:', handlers), { raw: ['tenant:'], tenant: '' })
  // Prefixes are case-sensitive.
  t.same(parseAcrValues('Tenant:acme', handlers), { raw: ['Tenant:acme'] })
})

t.test('the first value per prefix wins; later ones are not even parsed', async (t) => {
  seen.length = 0
  t.same(parseAcrValues('tenant:first tenant:second idp:a idp:b', handlers), { raw: ['tenant:first', 'tenant:second', 'idp:a', 'idp:b'], tenant: 'first', idp: 'a' })
  t.same(seen, ['tenant:first'])
  // A later malformed value of an already-seen prefix is ignored.
  t.same(parseAcrValues('strict:1 strict:x', handlers), { raw: ['strict:1', 'strict:x'], level: 1 })
})

t.test('a handler refusing a value, a handler forging raw, oversize input', async (t) => {
  t.throws(() => parseAcrValues('strict:x', handlers), { name: 'OAuthError', error: 'invalid_request', message: 'strict: digits only' })
  const ctx = parseAcrValues('sneaky:1', handlers)
  t.same(ctx.raw, ['sneaky:1'], 'raw is the request, not what a handler says')
  t.equal(ctx.sneaky, true)
  t.throws(() => parseAcrValues(`tenant:${'a'.repeat(1100)}`, handlers), { name: 'OAuthError', error: 'invalid_request' })
})
