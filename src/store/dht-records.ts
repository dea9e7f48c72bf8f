/**
 * DhtRecords: the DHT's stored records (provider and value records other peers put on this
 * node) in the datastore, so that a restarted server still answers for them until they
 * expire. The Kad core decides what is stored; this applies its `persist` changes in
 * order, batched, and hands everything unexpired back at start.
 *
 * Layout: sublevel `dht-providers`, key `<content key hex>/<provider>`; sublevel
 * `dht-values`, key `<record key hex>`; JSON values with bytes as base64.
 */
import type { AbstractSublevel } from 'abstract-level'
import type { RecordChange } from '../core/kad/kad.ts'
import { hexOf, type ProviderRecord, type ValueRecord } from '../core/kad/records.ts'
import { asPeerId } from '../core/sans-io.ts'

interface StoredProvider {
  key: string
  provider: string
  addresses: string[]
  expiresAtMs: number
}

interface StoredValue {
  key: string
  value: string
  receivedAtMs: number
  expiresAtMs: number
}

type Level<T> = AbstractSublevel<any, string | Uint8Array, string, T>

type Operation =
  | { type: 'put'; sublevel: Level<any>; key: string; value: StoredProvider | StoredValue }
  | { type: 'del'; sublevel: Level<any>; key: string }

/**
 * Where the DHT keeps the records the core stores: DhtRecords in the datastore, or
 * MemoryDhtRecords (memory-dht-records.ts) for nodes without a repository.
 */
export interface DhtRecordStore {
  /** Takes a change from the core, in order; it is durable once flush() resolves. */
  apply(change: RecordChange): void
  flush(): Promise<void>
  /** Unexpired records (expired ones are forgotten on the way). */
  load(nowMs: number): Promise<{ providers: ProviderRecord[]; values: ValueRecord[] }>
}

/** Changes written in one batch at most; more wait for the next. */
const BATCH_OPERATIONS_MAX = 1_000

export class DhtRecords implements DhtRecordStore {
  readonly #providers: Level<StoredProvider>
  readonly #values: Level<StoredValue>
  #pending: Operation[] = []
  #writing: Promise<void> = Promise.resolve()

  constructor(providers: Level<StoredProvider>, values: Level<StoredValue>) {
    this.#providers = providers
    this.#values = values
  }

  /** Queues a change from the core; flush() (or the next apply after a write) writes it. */
  apply(change: RecordChange): void {
    switch (change.op) {
      case 'put-provider': {
        const { record } = change
        this.#pending.push({ type: 'put', sublevel: this.#providers, key: providerKey(record.key, record.provider), value: { key: base64(record.key), provider: record.provider, addresses: [...record.addresses], expiresAtMs: record.expiresAtMs } })
        break
      }
      case 'delete-provider':
        this.#pending.push({ type: 'del', sublevel: this.#providers, key: providerKey(change.key, change.provider) })
        break
      case 'put-value': {
        const { record } = change
        this.#pending.push({ type: 'put', sublevel: this.#values, key: hexOf(record.key), value: { key: base64(record.key), value: base64(record.value), receivedAtMs: record.receivedAtMs, expiresAtMs: record.expiresAtMs } })
        break
      }
      case 'delete-value':
        this.#pending.push({ type: 'del', sublevel: this.#values, key: hexOf(change.key) })
    }
    if (this.#pending.length >= BATCH_OPERATIONS_MAX) void this.flush()
  }

  /** Writes queued changes, in order after any write in progress. */
  flush(): Promise<void> {
    const batch = this.#pending
    this.#pending = []
    if (batch.length === 0) return this.#writing
    this.#writing = this.#writing.then(() => this.#providers.db.batch(batch.map((operation) => (
      operation.type === 'put'
        ? { type: 'put' as const, sublevel: operation.sublevel, key: operation.key, value: operation.value }
        : { type: 'del' as const, sublevel: operation.sublevel, key: operation.key }
    ))))
    return this.#writing
  }

  /** Unexpired records; expired ones are deleted on the way. */
  async load(nowMs: number): Promise<{ providers: ProviderRecord[]; values: ValueRecord[] }> {
    const providers: ProviderRecord[] = []
    const values: ValueRecord[] = []
    const expired: Operation[] = []
    for await (const [key, stored] of this.#providers.iterator()) {
      if (stored.expiresAtMs <= nowMs) expired.push({ type: 'del', sublevel: this.#providers, key })
      else providers.push({ key: fromBase64(stored.key), provider: asPeerId(stored.provider), addresses: stored.addresses, expiresAtMs: stored.expiresAtMs })
    }
    for await (const [key, stored] of this.#values.iterator()) {
      if (stored.expiresAtMs <= nowMs) expired.push({ type: 'del', sublevel: this.#values, key })
      else values.push({ key: fromBase64(stored.key), value: fromBase64(stored.value), receivedAtMs: stored.receivedAtMs, expiresAtMs: stored.expiresAtMs })
    }
    this.#pending.push(...expired)
    await this.flush()
    return { providers, values }
  }
}

function providerKey(key: Uint8Array, provider: string): string {
  return `${hexOf(key)}/${provider}`
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

function fromBase64(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'base64'))
}
