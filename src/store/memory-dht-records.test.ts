import { dhtRecordStoreContract } from './dht-records.contract.ts'
import { MemoryDhtRecords } from './memory-dht-records.ts'

dhtRecordStoreContract('MemoryDhtRecords', {
  async open() {
    // The memory twin outlives a "restart" only as the same object, which is what it offers.
    const records = new MemoryDhtRecords()
    return { records, restart: async () => records, close: async () => {} }
  },
})
