import t from 'tap'
import { MemoryStore } from '@grantd/store-memory'
import { storeContract } from '../../../test/helpers/store-contract.js'

const stores: MemoryStore[] = []
t.teardown(async () => { for (const s of stores) await s.close() })

storeContract(t, 'memory', async () => {
  const store = new MemoryStore(100)
  stores.push(store)
  return store
})
