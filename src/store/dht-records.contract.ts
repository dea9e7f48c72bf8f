/**
 * The DhtRecordStore contract, run against every implementation by its own test file.
 * `restart` gives the store as a restarted node would find it (the same medium reopened).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { asPeerId } from '../core/sans-io.ts'
import type { DhtRecordStore } from './dht-records.ts'

export interface DhtRecordStoreHarness {
  open(): Promise<{ records: DhtRecordStore; restart(): Promise<DhtRecordStore>; close(): Promise<void> }>
}

export function dhtRecordStoreContract(name: string, harness: DhtRecordStoreHarness): void {
  test(`${name}: keeps what the core stored across a restart, and drops what expired`, async () => {
    const store = await harness.open()
    try {
      let records = store.records
      const key = new Uint8Array([1, 2, 3])
      const provider = asPeerId('12D3KooWprovider')
      records.apply({ op: 'put-provider', record: { key, provider, addresses: ['/ip4/127.0.0.1/tcp/1'], expiresAtMs: 2_000 } })
      records.apply({ op: 'put-provider', record: { key, provider: asPeerId('12D3KooWgone'), addresses: [], expiresAtMs: 500 } })
      records.apply({ op: 'put-provider', record: { key, provider: asPeerId('12D3KooWdropped'), addresses: [], expiresAtMs: 2_000 } })
      records.apply({ op: 'delete-provider', key, provider: asPeerId('12D3KooWdropped') })
      records.apply({ op: 'put-value', record: { key: new TextEncoder().encode('/pk/x'), value: new Uint8Array([9]), receivedAtMs: 0, expiresAtMs: 2_000 } })
      records.apply({ op: 'put-value', record: { key: new TextEncoder().encode('/pk/y'), value: new Uint8Array([8]), receivedAtMs: 0, expiresAtMs: 2_000 } })
      records.apply({ op: 'delete-value', key: new TextEncoder().encode('/pk/y') })
      await records.flush()

      records = await store.restart()
      const loaded = await records.load(1_000)
      assert.deepEqual(loaded.providers, [{ key, provider, addresses: ['/ip4/127.0.0.1/tcp/1'], expiresAtMs: 2_000 }])
      assert.equal(loaded.values.length, 1)
      assert.deepEqual(loaded.values[0]!.value, new Uint8Array([9]))
      // The expired record was forgotten by the load.
      assert.equal((await records.load(0)).providers.length, 1)
    } finally {
      await store.close()
    }
  })
}
