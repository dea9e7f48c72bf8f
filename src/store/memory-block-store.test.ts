import { MemoryBlockStore } from './memory-block-store.ts'
import { blockStoreContract } from './block-store.contract.ts'

blockStoreContract('MemoryBlockStore', {
  open: async (options) => new MemoryBlockStore(options),
  corrupt: async (store, cid) => (store as MemoryBlockStore).corruptForTest(cid, new TextEncoder().encode('rot')),
})
