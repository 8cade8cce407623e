import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, validateConfig } from '@grantd/core'
import { memoryLogger } from '../helpers/server.js'

t.test('a refused boot runs the close hooks of the plugins that loaded, then closes the store', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'grantd-boot-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const events: string[] = []
  ;(globalThis as { __grantdBootEvents?: string[] }).__grantdBootEvents = events
  writeFileSync(join(dir, 'store.mjs'), `
import { MemoryStore } from '@grantd/store-memory'
export default { name: 'recording-store', register(host) {
  const store = new MemoryStore()
  const close = store.close.bind(store)
  store.close = async () => { globalThis.__grantdBootEvents.push('store closed'); await close() }
  host.store(store)
} }`)
  writeFileSync(join(dir, 'hooked.mjs'), `
export default { name: 'hooked', register(host) { host.onClose(() => { globalThis.__grantdBootEvents.push('hook ran') }) } }`)
  const config = validateConfig({
    store: { use: './store.mjs' },
    plugins: ['./hooked.mjs'],
    clients: [{ client_id: 'c', client_secret: 'c-secret', grant_types: ['client_credentials'], scope: 'api' }],
  }, dir)
  await t.rejects(createServer(config, { log: memoryLogger() }), /clients\[0\]\.grant_types\[0\]: grant type "client_credentials" is not loaded/)
  t.same(events, ['hook ran', 'store closed'], 'plugins close in reverse, the store last')
})
