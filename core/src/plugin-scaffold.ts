import { createRequire } from 'node:module'
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'

/** npm package names (scoped or not), lower case. */
const PACKAGE_NAME = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/

function coreVersion(): string {
  const pkg = createRequire(import.meta.url)('../package.json') as { version: string }
  return pkg.version
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
function skeleton(name: string, version: string): Record<string, string> {
  const shortName = name.replace(/^@[^/]+\//, '')
  const grantType = `urn:example:grant-type:${shortName}`
  return {
    'package.json': JSON.stringify({
      name,
      version: '0.1.0',
      description: `A grantd grant plugin (${grantType})`,
      type: 'module',
      main: './dist/src/index.js',
      types: './dist/src/index.d.ts',
      files: ['dist/src'],
      scripts: { build: 'tsc', test: 'tsc && node --test dist/test/plugin.test.js', start: 'tsc && grantd start --config grantd.json' },
      peerDependencies: { '@grantd/core': `^${version}` },
      // The config's default store is @grantd/store-memory; the test runs a real server with it.
      devDependencies: { '@grantd/core': `^${version}`, '@grantd/store-memory': `^${version}`, '@types/node': '^20.19.0', typescript: '^5.9.0' },
    }, null, 2) + '\n',
    'tsconfig.json': JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2023'], types: ['node'],
        strict: true, declaration: true, sourceMap: true, skipLibCheck: true, rootDir: '.', outDir: 'dist',
      },
      include: ['src', 'test'],
    }, null, 2) + '\n',
    '.gitignore': 'node_modules/\ndist/\n',
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
      async handle({ params, requestedScope }) {
        const sub = Object.hasOwn(host.options.tickets, params.ticket!) ? host.options.tickets[params.ticket!] : undefined
        if (sub === undefined) throw new OAuthError('invalid_grant', 'unknown ticket')
        // Decide what is granted; the core checks the scope against the client and issues the tokens.
        return { subject: sub, scope: requestedScope ?? [] }
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
    plugins: [{ use: '../src/index.js', options: { tickets: { 'ticket-1': 'u-1' } } }],
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

test('an unknown ticket is invalid_grant, a missing one invalid_request', async () => {
  const { server, url } = await start()
  try {
    assert.equal((await token(url, { grant_type: ${JSON.stringify(grantType)}, ticket: 'nope', scope: 'api' })).json.error, 'invalid_grant')
    assert.equal((await token(url, { grant_type: ${JSON.stringify(grantType)}, scope: 'api' })).json.error, 'invalid_request')
  } finally {
    await server.close()
  }
})
`,
    'grantd.json': JSON.stringify({
      issuer: 'http://127.0.0.1:4000',
      plugins: [{ use: './dist/src/index.js', options: { tickets: { 'ticket-1': 'u-1' } } }],
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
  const files = skeleton(name, coreVersion())
  for (const [path, text] of Object.entries(files)) {
    const target = join(folder, path)
    mkdirSync(dirname(target), { recursive: true })
    writeFileSync(target, text, { flag: 'wx' })
  }
  return { folder, files: Object.keys(files) }
}
