/**
 * SPEC §3: unknown keys, wrong types and bad values are errors that name the key path
 * (`clients[1].redirect_uris: expected array`); so are bad plugin options and client
 * settings only the server can check (a malformed `$scrypt$` hash).
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfigFile, validateConfig } from '@grantd/core'
import { ROOT, startServer } from '../helpers/server.js'

const FIXTURES = join(ROOT, 'test', 'fixtures', 'core')
const svc = { client_id: 'svc', client_secret: 's', grant_types: ['client_credentials'], scope: 'api' }

t.test('validation errors name the key path', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['not an object', [], /^\(config\): expected object, got array$/],
    ['unknown top-level key', { isuer: 'http://x' }, /^isuer: unknown key$/],
    ['unknown nested key', { tokens: { accessTokenTTL: 60 } }, /^tokens\.accessTokenTTL: unknown key$/],
    ['unknown client key', { clients: [svc, { ...svc, client_id: 'b', scopes: 'api' }] }, /^clients\[1\]\.scopes: unknown key$/],
    ['redirect_uris not an array', { clients: [svc, { ...svc, client_id: 'web', redirect_uris: 'http://127.0.0.1/cb' }] }, /^clients\[1\]\.redirect_uris: expected array, got string$/],
    ['redirect_uris item', { clients: [{ ...svc, redirect_uris: ['http://ok.example/cb', 42] }] }, /^clients\[0\]\.redirect_uris\[1\]: expected string, got number$/],
    ['redirect_uri not a URL', { clients: [{ ...svc, redirect_uris: ['/cb'] }] }, /^clients\[0\]\.redirect_uris\[0\]: expected an absolute URL$/],
    ['redirect_uri with a fragment', { clients: [{ ...svc, redirect_uris: ['http://ok.example/cb#x'] }] }, /^clients\[0\]\.redirect_uris\[0\]: must not have a fragment$/],
    ['ttl of the wrong type', { tokens: { accessTokenTtl: '300' } }, /^tokens\.accessTokenTtl: expected integer, got string$/],
    ['ttl out of range', { tokens: { accessTokenTtl: 0 } }, /^tokens\.accessTokenTtl: must be between 1 and 86400$/],
    ['port out of range', { port: 70000 }, /^port: must be between 0 and 65535$/],
    ['proxy.trust of the wrong type', { proxy: { trust: 'yes' } }, /^proxy\.trust: expected boolean, got string$/],
    ['proxy.trust list item', { proxy: { trust: ['10.0.0.0/8', 7] } }, /^proxy\.trust\[1\]: expected string, got number$/],
    ['issuer not a URL', { issuer: 'id.example.com' }, /^issuer: expected an absolute URL$/],
    ['issuer with a query', { issuer: 'https://id.example.com/?a=1' }, /^issuer: must not have a query$/],
    ['issuer of another scheme', { issuer: 'ftp://id.example.com' }, /^issuer: expected an http or https URL$/],
    ['plugins not an array', { plugins: { use: 'x' } }, /^plugins: expected array, got object$/],
    ['plugin without use', { plugins: ['@grantd/grant-client-credentials', { options: {} }] }, /^plugins\[1\]\.use: expected string, got undefined$/],
    ['plugin entry with an unknown key', { plugins: [{ use: 'x', opts: {} }] }, /^plugins\[0\]\.opts: unknown key$/],
    ['plugin options not an object', { plugins: [{ use: 'x', options: [] }] }, /^plugins\[0\]\.options: expected object, got array$/],
    ['store of the wrong type', { store: 42 }, /^store: expected object, got number$/],
    ['clients not an array', { clients: {} }, /^clients: expected array, got object$/],
    ['client_id missing', { clients: [{ scope: 'api' }] }, /^clients\[0\]\.client_id: expected string, got undefined$/],
    ['duplicate client_id', { clients: [svc, svc] }, /^clients\[1\]\.client_id: duplicate client_id "svc"$/],
    ['unknown auth method', { clients: [{ ...svc, token_endpoint_auth_method: 'client_secret_jwt' }] }, /^clients\[0\]\.token_endpoint_auth_method: expected one of /],
    ['basic without a secret', { clients: [{ client_id: 'x', token_endpoint_auth_method: 'client_secret_basic' }] }, /^clients\[0\]\.client_secret: required for client_secret_basic$/],
    ['public client with a secret', { clients: [{ ...svc, token_endpoint_auth_method: 'none' }] }, /^clients\[0\]\.client_secret: a client with token_endpoint_auth_method none has no secret$/],
    ['private_key_jwt without jwks', { clients: [{ client_id: 'x', token_endpoint_auth_method: 'private_key_jwt' }] }, /^clients\[0\]\.jwks: required for private_key_jwt$/],
    ['client jwks with a private member', { clients: [{ client_id: 'x', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'a', y: 'b', d: 'c' }] } }] }, /^clients\[0\]\.jwks\.keys\[0\]\.d: a client jwks must hold public keys only$/],
    ['require_pkce of the wrong type', { clients: [{ ...svc, require_pkce: 'yes' }] }, /^clients\[0\]\.require_pkce: expected boolean, got string$/],
    ['empty string', { host: '' }, /^host: must not be empty$/],
    ['log level', { log: { level: 'loud' } }, /^log\.level: expected one of /],
    ['short cookie key', { cookies: { keys: ['short'] } }, /^cookies\.keys\[0\]: must be at least 16 characters$/],
  ]
  for (const [what, config, message] of cases) {
    t.throws(() => validateConfig(config, ROOT), { name: 'ConfigError', message }, what)
  }
})

t.test('errors only the server can find still name the key path', async (t) => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['malformed $scrypt$ hash', { clients: [svc, { ...svc, client_id: 'h', client_secret: '$scrypt$ln=15$nope' }] }, /^clients\[1\]\.client_secret: malformed \$scrypt\$ secret hash$/],
    ['invalid scope token', { clients: [{ ...svc, scope: 'api "quoted"' }] }, /^clients\[0\]\.scope: ""quoted"" is not a valid scope token$/],
    ['grant type nobody loads', { clients: [{ ...svc, grant_types: ['client_credentials', 'password'] }] }, /^clients\[0\]\.grant_types\[1\]: grant type "password" is not loaded by any plugin$/],
    ['bad plugin options', { plugins: ['@grantd/grant-client-credentials', { use: './strict-options.mjs', options: { ttl: 'long' } }] }, /^plugins\[1\]\.options: ttl: expected number, got string$/],
    ['a package that does not exist', { plugins: ['@grantd/grant-nope'] }, /^plugins\[0\]: cannot load "@grantd\/grant-nope" \(/],
    ['a store that does not exist', { store: { use: './no-store.mjs' } }, /^store: cannot load "\.\/no-store\.mjs" \(/],
  ]
  for (const [what, config, message] of cases) {
    await t.rejects(startServer({ plugins: ['@grantd/grant-client-credentials'], clients: [svc], ...config }, { baseDir: FIXTURES }), { name: 'ConfigError', message }, what)
  }
})

t.test('config files: JSON and YAML load; syntax errors name the file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'grantd-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const yaml = join(dir, 'grantd.yaml')
  writeFileSync(yaml, 'issuer: https://id.example.com/\nkeys:\n  file: ./keys/signing.json\nclients:\n  - client_id: svc\n    client_secret: s\n    scope: api\n')
  const fromYaml = await loadConfigFile(yaml)
  t.equal(fromYaml.issuer, 'https://id.example.com', 'a trailing slash on the issuer is dropped')
  t.equal(fromYaml.keys?.file, join(dir, 'keys', 'signing.json'), 'keys.file resolves against the config folder')
  t.equal(fromYaml.store.use, '@grantd/store-memory', 'the memory store is the default')
  t.equal(fromYaml.clients[0]?.client_id, 'svc')
  const badYaml = join(dir, 'bad.yml')
  writeFileSync(badYaml, 'clients: [\n')
  await t.rejects(loadConfigFile(badYaml), { name: 'ConfigError', message: /bad\.yml: not valid YAML/ })
  const badJson = join(dir, 'bad.json')
  writeFileSync(badJson, '{"clients": [}')
  await t.rejects(loadConfigFile(badJson), { name: 'ConfigError', message: /bad\.json: not valid JSON/ })
  const wrongType = join(dir, 'wrong.yaml')
  writeFileSync(wrongType, 'clients:\n  - client_id: a\n    client_secret: s\n  - client_id: b\n    client_secret: s\n    redirect_uris: http://x/cb\n')
  await t.rejects(loadConfigFile(wrongType), { message: 'clients[1].redirect_uris: expected array, got string' })
  await t.rejects(loadConfigFile(join(FIXTURES, 'bad-redirect-uris.json')), { message: 'clients[1].redirect_uris: expected array, got string' })
  const mjs = join(dir, 'grantd.mjs')
  writeFileSync(mjs, "export default { port: 'eighty' }\n")
  await t.rejects(loadConfigFile(mjs), { message: 'port: expected integer, got string' })
})
