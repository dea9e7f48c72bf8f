import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { asPeerId } from '../core/sans-io.ts'
import { Datastore } from './datastore.ts'

describe('DhtRecords', () => {
  it('keeps what the core stored across a restart, and drops what expired', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'shoal-dht-records-'))
    try {
      let datastore = await Datastore.open(directory)
      let records = datastore.dhtRecords()
      const key = new Uint8Array([1, 2, 3])
      const provider = asPeerId('12D3KooWprovider')
      records.apply({ op: 'put-provider', record: { key, provider, addresses: ['/ip4/127.0.0.1/tcp/1'], expiresAtMs: 2_000 } })
      records.apply({ op: 'put-provider', record: { key, provider: asPeerId('12D3KooWgone'), addresses: [], expiresAtMs: 500 } })
      records.apply({ op: 'put-value', record: { key: new TextEncoder().encode('/pk/x'), value: new Uint8Array([9]), receivedAtMs: 0, expiresAtMs: 2_000 } })
      records.apply({ op: 'put-value', record: { key: new TextEncoder().encode('/pk/y'), value: new Uint8Array([8]), receivedAtMs: 0, expiresAtMs: 2_000 } })
      records.apply({ op: 'delete-value', key: new TextEncoder().encode('/pk/y') })
      await records.flush()
      await datastore.close()

      datastore = await Datastore.open(directory)
      records = datastore.dhtRecords()
      const loaded = await records.load(1_000)
      assert.deepEqual(loaded.providers, [{ key, provider, addresses: ['/ip4/127.0.0.1/tcp/1'], expiresAtMs: 2_000 }])
      assert.equal(loaded.values.length, 1)
      assert.deepEqual(loaded.values[0]!.value, new Uint8Array([9]))
      // The expired record was deleted by the load.
      assert.equal((await records.load(0)).providers.length, 1)
      await datastore.close()
    } finally {
      await rm(directory, { recursive: true, force: true })
    }
  })
})
