/**
 * MemoryDhtRecords: the in-memory twin of DhtRecords, for nodes that run the DHT without a
 * repository (benchmarks of many nodes in one process). It applies the core's changes to
 * maps and hands back what has not expired; nothing outlives the process.
 */
import type { RecordChange } from '../core/kad/kad.ts'
import { hexOf, type ProviderRecord, type ValueRecord } from '../core/kad/records.ts'
import type { DhtRecordStore } from './dht-records.ts'

export class MemoryDhtRecords implements DhtRecordStore {
  /** By `<content key hex>/<provider>`, as DhtRecords keys them. */
  readonly #providers = new Map<string, ProviderRecord>()
  /** By record key hex. */
  readonly #values = new Map<string, ValueRecord>()

  apply(change: RecordChange): void {
    switch (change.op) {
      case 'put-provider':
        this.#providers.set(`${hexOf(change.record.key)}/${change.record.provider}`, change.record)
        return
      case 'delete-provider':
        this.#providers.delete(`${hexOf(change.key)}/${change.provider}`)
        return
      case 'put-value':
        this.#values.set(hexOf(change.record.key), change.record)
        return
      case 'delete-value':
        this.#values.delete(hexOf(change.key))
    }
  }

  flush(): Promise<void> {
    return Promise.resolve()
  }

  load(nowMs: number): Promise<{ providers: ProviderRecord[]; values: ValueRecord[] }> {
    for (const [key, record] of this.#providers) if (record.expiresAtMs <= nowMs) this.#providers.delete(key)
    for (const [key, record] of this.#values) if (record.expiresAtMs <= nowMs) this.#values.delete(key)
    return Promise.resolve({ providers: [...this.#providers.values()], values: [...this.#values.values()] })
  }
}
