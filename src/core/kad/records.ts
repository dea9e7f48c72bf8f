/**
 * What a DHT server stores for others: provider records ("peer P holds content K") and
 * value records (signed public keys, IPNS records), each with an expiry, bounded in count
 * and bytes. Owned by the Kad core, which decides what to admit (validation, rate limits)
 * and tells the node what to persist; these stores only keep, bound and expire.
 */
import type { Millis, PeerId } from '../sans-io.ts'

export interface ProviderRecord {
  /** The content's multihash bytes, as on the wire. */
  key: Uint8Array
  provider: PeerId
  addresses: readonly string[]
  expiresAtMs: Millis
}

export interface ValueRecord {
  key: Uint8Array
  value: Uint8Array
  receivedAtMs: Millis
  expiresAtMs: Millis
}

export interface ProviderStoreLimits {
  /** Providers kept per key; a newcomer past it replaces the record expiring soonest. */
  providersPerKeyMax: number
  /** Provider records in all. */
  providerRecordsMax: number
}

export type ProviderAdmission = 'added' | 'renewed' | 'replaced' | 'store-full'

/** Keys are kept as hex: Uint8Arrays do not compare by value in a Map. */
export function hexOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

export class ProviderStore {
  readonly #limits: ProviderStoreLimits
  readonly #byKey = new Map<string, Map<PeerId, ProviderRecord>>()
  #size = 0

  constructor(limits: ProviderStoreLimits) {
    this.#limits = limits
  }

  get size(): number {
    return this.#size
  }

  get keyCount(): number {
    return this.#byKey.size
  }

  /** Adds or renews; returns the record evicted to make room, if any, with the outcome. */
  add(record: ProviderRecord): { outcome: ProviderAdmission; evicted?: ProviderRecord } {
    const hex = hexOf(record.key)
    let providers = this.#byKey.get(hex)
    const existing = providers?.get(record.provider)
    if (existing !== undefined) {
      existing.expiresAtMs = record.expiresAtMs
      if (record.addresses.length > 0) existing.addresses = record.addresses
      return { outcome: 'renewed' }
    }
    if (providers !== undefined && providers.size >= this.#limits.providersPerKeyMax) {
      const evicted = soonestExpiring(providers.values())!
      providers.delete(evicted.provider)
      providers.set(record.provider, record)
      return { outcome: 'replaced', evicted }
    }
    if (this.#size >= this.#limits.providerRecordsMax) return { outcome: 'store-full' }
    if (providers === undefined) {
      providers = new Map()
      this.#byKey.set(hex, providers)
    }
    providers.set(record.provider, record)
    this.#size++
    return { outcome: 'added' }
  }

  /** Unexpired providers of `key`, at most `countMax`, latest expiry first. */
  get(now: Millis, key: Uint8Array, countMax: number): ProviderRecord[] {
    const providers = this.#byKey.get(hexOf(key))
    if (providers === undefined) return []
    const live = [...providers.values()].filter((record) => record.expiresAtMs > now)
    live.sort((a, b) => b.expiresAtMs - a.expiresAtMs)
    return live.slice(0, countMax)
  }

  /** Removes expired records and returns them. */
  expire(now: Millis): ProviderRecord[] {
    const expired: ProviderRecord[] = []
    for (const [hex, providers] of this.#byKey) {
      for (const record of providers.values()) {
        if (record.expiresAtMs > now) continue
        providers.delete(record.provider)
        expired.push(record)
      }
      if (providers.size === 0) this.#byKey.delete(hex)
    }
    this.#size -= expired.length
    return expired
  }

  *records(): Iterable<ProviderRecord> {
    for (const providers of this.#byKey.values()) yield* providers.values()
  }
}

export interface ValueStoreLimits {
  valueRecordsMax: number
  /** Sum of value sizes kept. */
  valueBytesTotalMax: number
}

export class ValueStore {
  readonly #limits: ValueStoreLimits
  readonly #byKey = new Map<string, ValueRecord>()
  #bytes = 0

  constructor(limits: ValueStoreLimits) {
    this.#limits = limits
  }

  get size(): number {
    return this.#byKey.size
  }

  get bytes(): number {
    return this.#bytes
  }

  get(now: Millis, key: Uint8Array): ValueRecord | undefined {
    const record = this.#byKey.get(hexOf(key))
    return record !== undefined && record.expiresAtMs > now ? record : undefined
  }

  /** Stores `record` in place of any older one for its key; false when full. */
  put(record: ValueRecord): boolean {
    const hex = hexOf(record.key)
    const previous = this.#byKey.get(hex)
    const bytesAfter = this.#bytes - (previous?.value.byteLength ?? 0) + record.value.byteLength
    if (previous === undefined && this.#byKey.size >= this.#limits.valueRecordsMax) return false
    if (bytesAfter > this.#limits.valueBytesTotalMax) return false
    this.#byKey.set(hex, record)
    this.#bytes = bytesAfter
    return true
  }

  expire(now: Millis): ValueRecord[] {
    const expired: ValueRecord[] = []
    for (const [hex, record] of this.#byKey) {
      if (record.expiresAtMs > now) continue
      this.#byKey.delete(hex)
      this.#bytes -= record.value.byteLength
      expired.push(record)
    }
    return expired
  }

  records(): Iterable<ValueRecord> {
    return this.#byKey.values()
  }
}

function soonestExpiring(records: Iterable<ProviderRecord>): ProviderRecord | undefined {
  let soonest: ProviderRecord | undefined
  for (const record of records) if (soonest === undefined || record.expiresAtMs < soonest.expiresAtMs) soonest = record
  return soonest
}
