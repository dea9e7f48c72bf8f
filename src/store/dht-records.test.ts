import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Datastore } from './datastore.ts'
import { dhtRecordStoreContract } from './dht-records.contract.ts'

dhtRecordStoreContract('DhtRecords', {
  async open() {
    const directory = await mkdtemp(join(tmpdir(), 'shoal-dht-records-'))
    let datastore = await Datastore.open(directory)
    return {
      records: datastore.dhtRecords(),
      async restart() {
        await datastore.close()
        datastore = await Datastore.open(directory)
        return datastore.dhtRecords()
      },
      async close() {
        await datastore.close()
        await rm(directory, { recursive: true, force: true })
      },
    }
  },
})
