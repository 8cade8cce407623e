/** The option reader every plugin and the config loader use (core/src/host/options.ts): key-path errors. */
import t from 'tap'
import { ConfigError, option } from '@grantd/core'

const fails = (fn: () => unknown, message: string) => t.throws(fn, { name: 'ConfigError', message }, message)

t.test('each reader checks one value and names its path', async (t) => {
  t.same(option.object({ a: 1 }, '(options)'), { a: 1 })
  fails(() => option.object([], '(options)'), '(options): expected object, got array')
  fails(() => option.object(null, 'x'), 'x: expected object, got null')
  t.equal(option.string('s', 'a'), 's')
  fails(() => option.string(1, 'a.b'), 'a.b: expected string, got number')
  fails(() => option.string('', 'a'), 'a: must not be empty')
  fails(() => option.string('abcd', 'a', 3), 'a: at most 3 characters')
  t.equal(option.boolean(false, 'b'), false)
  fails(() => option.boolean('yes', 'b'), 'b: expected boolean, got string')
  t.equal(option.integer(5, 'n', 1, 10), 5)
  fails(() => option.integer(5.5, 'n', 1, 10), 'n: expected integer, got number')
  fails(() => option.integer(11, 'n', 1, 10), 'n: must be between 1 and 10')
  t.same(option.stringArray(['a', 'b'], 'l'), ['a', 'b'])
  fails(() => option.stringArray(['a', 2], 'l'), 'l[1]: expected string, got number')
  fails(() => option.stringArray('a', 'l'), 'l: expected array, got string')
  t.equal(option.oneOf('b', 'm', ['a', 'b'] as const), 'b')
  fails(() => option.oneOf('c', 'm', ['a', 'b']), 'm: expected one of a, b')
  t.equal(option.url('https://a.example/x?y=1', 'u'), 'https://a.example/x?y=1')
  fails(() => option.url('nope', 'u'), 'u: expected an absolute URL')
  fails(() => option.url('ftp://a', 'u'), 'u: expected an http or https URL')
  fails(() => option.url('https://a/#f', 'u'), 'u: must not have a fragment')
  fails(() => option.url('https://a/?q', 'u', { allowQuery: false }), 'u: must not have a query')
  t.equal(option.optional(undefined, 'o', option.string, 'dflt'), 'dflt')
  t.equal(option.optional('v', 'o', option.string, 'dflt'), 'v')
  t.ok(new ConfigError('x') instanceof Error)
})

t.test('only: unknown keys, with the path of the object', async (t) => {
  t.doesNotThrow(() => option.only({ a: 1 }, '(options)', ['a', 'b']))
  fails(() => option.only({ c: 1 }, '(options)', ['a']), 'c: unknown key')
  fails(() => option.only({ c: 1 }, '', ['a']), 'c: unknown key')
  fails(() => option.only({ c: 1 }, 'providers.up', ['a']), 'providers.up.c: unknown key')
  t.equal(option.at('users', 2), 'users[2]')
  t.equal(option.at('(options)', 'x'), 'x')
})
