import { createRequire } from 'node:module'
import { mkdirSync, readdirSync, realpathSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** npm package names (scoped or not), lower case. */
const PACKAGE_NAME = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/

function coreVersion(): string {
  const pkg = createRequire(import.meta.url)('../../package.json') as { version: string }
  return pkg.version
}

/**
 * The folder of the @grantd/core this CLI runs from (this repo's core/, or
 * node_modules/@grantd/core of a tarball install): the scaffold depends on it with a
 * `file:` link, so its tests run against this very install and npm never looks
 * @grantd/core up in a registry.
 */
function coreFolder(): string {
  return realpathSync(resolve(dirname(fileURLToPath(import.meta.url)), '../..'))
}

function isEmptyOrMissing(dir: string): boolean {
  try {
    return readdirSync(dir).length === 0
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true
    throw err
  }
}

/** The files of a new grant plugin package, keyed by relative path. */
function skeleton(name: string, version: string, core: string): Record<string, string> {
  const shortName = name.replace(/^@[^/]+\//, '')
  const grantType = `urn:example:grant-type:${shortName}`
  return {
    'package.json': JSON.stringify({
      name,
      version: '0.1.0',
      description: `A grantd grant plugin (${grantType})`,
      type: 'module',
      main: './dist/index.js',
      types: './dist/index.d.ts',
      exports: { '.': { types: './dist/index.d.ts', default: './dist/index.js' } },
      files: ['dist'],
      scripts: {
        build: 'tsc',
        test: 'tsc && tsc -p tsconfig.test.json && node --test dist-test/test/',
        start: 'tsc && grantd start --config grantd.json',
      },
      peerDependencies: { '@grantd/core': `^${version}` },
      // The grantd this package was made with, linked (its store and user service plugins come with it).
      devDependencies: { '@grantd/core': `file:${core}`, '@types/node': '^20.19.0', typescript: '^5.9.0' },
    }, null, 2) + '\n',
    'tsconfig.json': JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2023'], types: ['node'],
        strict: true, declaration: true, sourceMap: true, skipLibCheck: true, rootDir: 'src', outDir: 'dist',
      },
      include: ['src'],
    }, null, 2) + '\n',
    // The tests compile on their own, next to a copy of src, so dist/ holds only what is published.
    'tsconfig.test.json': JSON.stringify({
      extends: './tsconfig.json',
      compilerOptions: { rootDir: '.', outDir: 'dist-test', declaration: false },
      include: ['src', 'test'],
    }, null, 2) + '\n',
    '.gitignore': 'node_modules/\ndist/\ndist-test/\n',
    'src/index.ts': `import { definePlugin, OAuthError } from '@grantd/core'

/** Options from the config file, validated once at start (see docs/plugins.md). */
export interface Options {
  /** Tickets this grant accepts, mapped to the user they stand for. Replace with your own check. */
  tickets: Record<string, string>
}

export default definePlugin({
  name: ${JSON.stringify(shortName)},
  options(raw): Options {
    const tickets = (raw as { tickets?: unknown }).tickets ?? {}
    if (typeof tickets !== 'object' || tickets === null || !Object.values(tickets).every((sub) => typeof sub === 'string')) {
      throw new Error('tickets: expected { "<ticket>": "<sub>" }')
    }
    return { tickets: tickets as Record<string, string> }
  },
  register(host) {
    host.grant({
      type: ${JSON.stringify(grantType)},
      // Body parameters the handler reads; the core refuses them when repeated.
      parameters: ['ticket'],
      required: ['ticket'],
      async handle({ params, requestedScope, acr, services }) {
        const sub = Object.hasOwn(host.options.tickets, params.ticket!) ? host.options.tickets[params.ticket!] : undefined
        if (sub === undefined) throw new OAuthError('invalid_grant', 'unknown ticket')
        // A ticket stands for a user of the configured user service, and only while that user is active.
        const user = await services.users.findById(sub, acr)
        if (!user || !(await services.users.isActive(sub, acr))) throw new OAuthError('invalid_grant', 'the user of this ticket is unknown or disabled')
        // Decide what is granted; the core checks the scope against the client and issues the tokens.
        return { subject: sub, user, scope: requestedScope ?? [] }
      },
    })
  },
})
`,
    'test/plugin.test.ts': `import { test } from 'node:test'
import assert from 'node:assert/strict'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createServer, validateConfig } from '@grantd/core'

const silent = { info() {}, warn() {}, error() {}, debug() {} }
const here = dirname(fileURLToPath(import.meta.url))

/** Start a real grantd with this plugin on a free port; the plugin loads by a path relative to here. */
async function start() {
  const config = validateConfig({
    users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-1', username: 'ticket-holder' }] } },
    plugins: [{ use: '../src/index.js', options: { tickets: { 'ticket-1': 'u-1', 'ticket-2': 'u-gone' } } }],
    clients: [{ client_id: 'c', client_secret: 's', grant_types: [${JSON.stringify(grantType)}], scope: 'api' }],
  }, here)
  const server = await createServer(config, { log: silent })
  const { url } = await server.listen(0, '127.0.0.1')
  return { server, url }
}

async function token(url: string, form: Record<string, string>) {
  const res = await fetch(\`\${url}/connect/token\`, {
    method: 'POST',
    body: new URLSearchParams(form),
    headers: { authorization: 'Basic ' + Buffer.from('c:s').toString('base64') },
  })
  return { status: res.status, json: (await res.json()) as Record<string, unknown> }
}

test('a known ticket is granted', async () => {
  const { server, url } = await start()
  try {
    const res = await token(url, { grant_type: ${JSON.stringify(grantType)}, ticket: 'ticket-1', scope: 'api' })
    assert.equal(res.status, 200)
    const claims = JSON.parse(Buffer.from(String(res.json.access_token).split('.')[1]!, 'base64url').toString())
    assert.equal(claims.sub, 'u-1')
    assert.equal(res.json.scope, 'api')
  } finally {
    await server.close()
  }
})

test('an unknown ticket or user is invalid_grant, a missing ticket invalid_request', async () => {
  const { server, url } = await start()
  try {
    assert.equal((await token(url, { grant_type: ${JSON.stringify(grantType)}, ticket: 'nope', scope: 'api' })).json.error, 'invalid_grant')
    assert.equal((await token(url, { grant_type: ${JSON.stringify(grantType)}, scope: 'api' })).json.error, 'invalid_request')
    assert.equal((await token(url, { grant_type: ${JSON.stringify(grantType)}, ticket: 'ticket-2', scope: 'api' })).json.error, 'invalid_grant')
  } finally {
    await server.close()
  }
})
`,
    'grantd.json': JSON.stringify({
      issuer: 'http://127.0.0.1:4000',
      users: { use: '@grantd/users-static', options: { users: [{ sub: 'u-1', username: 'ticket-holder' }] } },
      plugins: [{ use: './dist/index.js', options: { tickets: { 'ticket-1': 'u-1' } } }],
      clients: [{ client_id: 'c', client_secret: 's', grant_types: [grantType], scope: 'api' }],
    }, null, 2) + '\n',
    'README.md': `# ${name}

A grantd grant plugin: \`${grantType}\` trades a \`ticket\` for an access token.

\`\`\`sh
npm install
npm test          # builds, then starts a real grantd with the plugin and talks HTTP to it
npm start         # grantd with grantd.json on http://127.0.0.1:4000
curl -s -u c:s -d grant_type=${grantType} -d ticket=ticket-1 -d scope=api http://127.0.0.1:4000/connect/token
\`\`\`

## Options

| option | what |
| --- | --- |
| \`tickets\` | \`{ "<ticket>": "<sub>" }\`: the tickets accepted and the user each stands for |

\`@grantd/core\` is a dev dependency on \`file:${core}\`, the grantd this package was made
with: the tests run against it and \`npm install\` never looks it up in a registry. At run
time the plugin uses the server's copy (a peer dependency). The test config's user service is
\`@grantd/users-static\`, which comes with that grantd.

See grantd's docs/plugins.md for the plugin contract.
`,
  }
}

/**
 * `grantd new plugin <name>`: write a grant plugin package skeleton (TypeScript, a real
 * server test, a config) into `dir/<name without scope>`. Refuses to write into a folder
 * that has files. Returns the folder and the files written.
 */
export function scaffoldPlugin(name: string, dir: string): { folder: string; files: string[] } {
  if (!PACKAGE_NAME.test(name) || name.length > 214) throw new Error(`"${name}" is not an npm package name (lower case, e.g. grantd-grant-example or @me/grant-example)`)
  const folder = resolve(dir, name.replace(/^@[^/]+\//, ''))
  if (!isEmptyOrMissing(folder)) throw new Error(`${folder} exists and is not empty; refusing to overwrite`)
  const files = skeleton(name, coreVersion(), coreFolder())
  for (const [path, text] of Object.entries(files)) {
    const target = join(folder, path)
    mkdirSync(dirname(target), { recursive: true })
    writeFileSync(target, text, { flag: 'wx' })
  }
  return { folder, files: Object.keys(files) }
}
