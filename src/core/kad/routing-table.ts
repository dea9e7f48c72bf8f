/**
 * RoutingTable: Kademlia k-buckets (Maymounkov and Mazières, §2.2; libp2p kad-dht). A
 * contact lives in the bucket of its common prefix length with our key; a bucket holds
 * `bucketSize` (k = 20) contacts ordered least recently seen first. A newcomer to a full
 * bucket waits in the bucket's replacement cache while the least recently seen contact is
 * checked; only if that contact fails the check is it evicted and the most recent
 * replacement promoted — Kademlia's preference for long-lived nodes, which also makes the
 * table hard to flush with fresh Sybils. IP diversity limits (at most `ipGroupPerBucketMax`
 * contacts of one /16 or /32 per bucket and `ipGroupPerTableMax` in the table) resist
 * eclipse attacks from one network.
 *
 * Owned and driven by the Kad core, which sends the liveness checks the table asks for
 * and reports their results. Pure: time arrives as `now`.
 */
import type { Millis, PeerId } from '../sans-io.ts'
import { ipGroupOf } from '../ip-address.ts'
import { commonPrefixLength, compareDistance, KEY_BITS, keyBits0To23, keyBits24To47, type Key } from './key.ts'

export interface Contact {
  peer: PeerId
  key: Key
  addresses: readonly string[]
  lastSeenMs: Millis
  /** undefined: no group counted (no IP address, or an exempt private one). */
  ipGroup: string | undefined
  /**
   * The key's first 48 bits, held in the contact itself: ranking contacts by distance
   * then reads no key bytes (with thousands of simulated tables, each read is a cache miss).
   */
  keyBits0To23: number
  keyBits24To47: number
}

export interface RoutingTableConfig {
  self: Key
  /** k */
  bucketSize: number
  /** Candidates kept per bucket while it is full. */
  replacementCacheSize: number
  ipGroupPerBucketMax: number
  ipGroupPerTableMax: number
  /** Loopback, private and link-local addresses count toward no group. */
  privateAddressesExempt: boolean
  /** A bucket not looked into for this long is due a refresh. */
  refreshIntervalMs: number
  /**
   * A full bucket whose least recently seen contact was seen within this long has only
   * live contacts: a newcomer waits among the replacements without a liveness check (as
   * js-libp2p-kad-dht does not re-ping recently pinged contacts).
   */
  contactFreshMs: number
}

export const DEFAULT_ROUTING_TABLE_CONFIG: Omit<RoutingTableConfig, 'self'> = {
  bucketSize: 20,
  replacementCacheSize: 20,
  ipGroupPerBucketMax: 2,
  ipGroupPerTableMax: 3,
  privateAddressesExempt: true,
  refreshIntervalMs: 60 * 60_000,
  contactFreshMs: 10 * 60_000,
}

export type InsertOutcome =
  | { outcome: 'added' }
  /** Already a contact: moved to the most recently seen end, addresses refreshed. */
  | { outcome: 'updated' }
  /** The bucket is full: the candidate waits; the caller must check `oldest` and report with checked(). */
  | { outcome: 'check-oldest'; oldest: Contact }
  /** The bucket is full and its oldest contact is already being checked: the candidate waits. */
  | { outcome: 'queued' }
  | { outcome: 'rejected'; reason: 'self' | 'ip-group-bucket' | 'ip-group-table' }

interface Bucket {
  /** Least recently seen first. */
  contacts: Contact[]
  /** Most recent last. */
  replacements: Contact[]
  /** The contact under a liveness check, if any. */
  checking: PeerId | undefined
  lastLookupMs: Millis
}

export interface BucketView {
  index: number
  contacts: readonly Contact[]
  replacements: readonly Contact[]
  lastLookupMs: Millis
}

export class RoutingTable {
  readonly #config: RoutingTableConfig
  readonly #buckets: Array<Bucket | undefined> = new Array(KEY_BITS).fill(undefined)
  readonly #byPeer = new Map<PeerId, Contact>()
  /** The replacement caches' candidates by peer (a scan of the caches would read every candidate). */
  readonly #waiting = new Map<PeerId, Contact>()
  readonly #ipGroupCounts = new Map<string, number>()
  readonly #createdMs: Millis
  /** No bucket past it has ever held a contact. */
  #deepestIndex = -1
  /** closest()'s scratch: the distance prefixes of the contacts it ranks, parallel to its result. */
  readonly #distances: number[] = []

  constructor(config: RoutingTableConfig, now: Millis) {
    this.#config = config
    this.#createdMs = now
  }

  get size(): number {
    return this.#byPeer.size
  }

  get(peer: PeerId): Contact | undefined {
    return this.#byPeer.get(peer)
  }

  insert(now: Millis, peer: PeerId, key: Key, addresses: readonly string[]): InsertOutcome {
    const index = this.#indexOf(key)
    if (index === undefined) return { outcome: 'rejected', reason: 'self' }
    const bucket = this.#bucket(index, now)
    const existing = this.#byPeer.get(peer)
    if (existing !== undefined) {
      existing.lastSeenMs = now
      if (addresses.length > 0) existing.addresses = addresses
      this.#detach(bucket, existing)
      bucket.contacts.push(existing)
      return { outcome: 'updated' }
    }
    const contact: Contact = {
      peer,
      key,
      addresses,
      lastSeenMs: now,
      ipGroup: ipGroupOf(addresses, this.#config.privateAddressesExempt),
      keyBits0To23: keyBits0To23(key),
      keyBits24To47: keyBits24To47(key),
    }
    const refusal = this.#diversityRefusal(bucket, contact.ipGroup)
    if (refusal !== undefined) return { outcome: 'rejected', reason: refusal }
    if (bucket.contacts.length < this.#config.bucketSize) {
      this.#add(bucket, contact)
      return { outcome: 'added' }
    }
    this.#queueReplacement(bucket, contact)
    const oldest = bucket.contacts[0]!
    if (bucket.checking !== undefined || now - oldest.lastSeenMs < this.#config.contactFreshMs) return { outcome: 'queued' }
    bucket.checking = oldest.peer
    return { outcome: 'check-oldest', oldest }
  }

  /**
   * The result of a liveness check the table asked for. A live contact becomes the most
   * recently seen; a dead one is evicted and the most recent replacement takes its place.
   * Returns the promoted contact, if any.
   */
  checked(now: Millis, peer: PeerId, alive: boolean): Contact | undefined {
    const contact = this.#byPeer.get(peer)
    if (contact === undefined) return undefined
    const bucket = this.#buckets[this.#indexOf(contact.key)!]!
    if (bucket.checking === peer) bucket.checking = undefined
    if (alive) {
      contact.lastSeenMs = now
      this.#detach(bucket, contact)
      bucket.contacts.push(contact)
      return undefined
    }
    return this.remove(peer)
  }

  /** Removes a contact (it failed, or left); returns the replacement promoted in its place. */
  remove(peer: PeerId): Contact | undefined {
    const contact = this.#byPeer.get(peer)
    if (contact === undefined) {
      const waiting = this.#waiting.get(peer)
      if (waiting !== undefined) {
        const { replacements } = this.#buckets[this.#indexOf(waiting.key)!]!
        replacements.splice(replacements.indexOf(waiting), 1)
        this.#waiting.delete(peer)
      }
      return undefined
    }
    const bucket = this.#buckets[this.#indexOf(contact.key)!]!
    this.#detach(bucket, contact)
    if (bucket.checking === peer) bucket.checking = undefined
    this.#byPeer.delete(peer)
    this.#countGroup(contact.ipGroup, -1)
    // Most recent first: it is the likeliest to be alive. Diversity is checked again,
    // since the table changed while it waited.
    while (bucket.replacements.length > 0) {
      const candidate = bucket.replacements.pop()!
      this.#waiting.delete(candidate.peer)
      if (this.#diversityRefusal(bucket, candidate.ipGroup) !== undefined) continue
      this.#add(bucket, candidate)
      return candidate
    }
    return undefined
  }

  /** Up to `count` contacts closest to `target`, closest first, `excluded` left out. */
  closest(target: Key, count: number, excluded?: PeerId): Contact[] {
    // Buckets are whole groups in distance order, so only the buckets needed are ranked.
    // With c = cpl(self, target) and d = self XOR target: bucket c is closest (its contacts
    // share bit c with the target); then the deeper buckets j with bit j of d set, shallow
    // first (bit j of the distance is 0 for them and 1 for every bucket deeper); then the
    // deeper buckets with bit j of d clear, deep first; then the buckets below c, deep first.
    const result: Contact[] = []
    if (count <= 0) return result
    const self = this.#config.self
    const c = Math.min(commonPrefixLength(self, target), KEY_BITS - 1)
    const differs = (bit: number) => ((self[bit >> 3]! ^ target[bit >> 3]!) & (0x80 >> (bit & 7))) !== 0
    // Every request a server answers runs this, so it sorts in place and allocates no
    // per-contact objects: a bounded insertion sort per bucket, distance prefixes alongside.
    const distances = this.#distances
    const targetBits0To23 = keyBits0To23(target)
    const targetBits24To47 = keyBits24To47(target)
    const closerThanAt = (distance: number, contact: Contact, at: number) =>
      distance < distances[at]! || (distance === distances[at] && compareDistance(target, contact.key, result[at]!.key) < 0)
    const rank = (bucket: Bucket | undefined) => {
      if (bucket === undefined || result.length >= count) return
      const groupStart = result.length
      for (const contact of bucket.contacts) {
        if (contact.peer === excluded) continue
        // distancePrefix(target, contact.key), from the halves kept in the contact.
        const distance = (contact.keyBits0To23 ^ targetBits0To23) * 0x1000000 + (contact.keyBits24To47 ^ targetBits24To47)
        let at = result.length
        if (at === count) {
          if (!closerThanAt(distance, contact, at - 1)) continue
          at--
        }
        for (; at > groupStart && closerThanAt(distance, contact, at - 1); at--) {
          result[at] = result[at - 1]!
          distances[at] = distances[at - 1]!
        }
        result[at] = contact
        distances[at] = distance
      }
    }
    rank(this.#buckets[c])
    for (let index = c + 1; index <= this.#deepestIndex; index++) if (differs(index)) rank(this.#buckets[index])
    for (let index = this.#deepestIndex; index > c; index--) if (!differs(index)) rank(this.#buckets[index])
    for (let index = c - 1; index >= 0; index--) rank(this.#buckets[index])
    return result
  }

  /** A lookup toward `target` refreshes the bucket it falls in. */
  markLookup(now: Millis, target: Key): void {
    const index = this.#indexOf(target)
    if (index !== undefined) this.markBucketLookup(now, index)
  }

  markBucketLookup(now: Millis, index: number): void {
    this.#bucket(index, now).lastLookupMs = now
  }

  /**
   * Bucket indexes (common prefix lengths) due a refresh lookup: not looked into for
   * refreshIntervalMs, up to the deepest non-empty bucket (deeper ones cannot be filled).
   */
  bucketsDue(now: Millis): number[] {
    let deepest = -1
    for (let index = KEY_BITS - 1; index >= 0; index--) {
      if ((this.#buckets[index]?.contacts.length ?? 0) > 0) {
        deepest = index
        break
      }
    }
    const due: number[] = []
    for (let index = 0; index <= deepest; index++) {
      const lastLookupMs = this.#buckets[index]?.lastLookupMs ?? this.#createdMs
      // The same sum as nextRefreshAt(): `now - last >= interval` can differ from it in rounding.
      if (lastLookupMs + this.#config.refreshIntervalMs <= now) due.push(index)
    }
    return due
  }

  /** When the next bucket falls due, for the core's deadline. */
  nextRefreshAt(): Millis | undefined {
    let earliest: Millis | undefined
    for (const bucket of this.#buckets) {
      if (bucket === undefined || bucket.contacts.length === 0) continue
      const at = bucket.lastLookupMs + this.#config.refreshIntervalMs
      earliest = earliest === undefined ? at : Math.min(earliest, at)
    }
    return earliest
  }

  /** Non-empty buckets, for `shoal dht table`. */
  buckets(): BucketView[] {
    const views: BucketView[] = []
    this.#buckets.forEach((bucket, index) => {
      if (bucket === undefined || (bucket.contacts.length === 0 && bucket.replacements.length === 0)) return
      views.push({ index, contacts: [...bucket.contacts], replacements: [...bucket.replacements], lastLookupMs: bucket.lastLookupMs })
    })
    return views
  }

  #indexOf(key: Key): number | undefined {
    const length = commonPrefixLength(this.#config.self, key)
    return length === KEY_BITS ? undefined : length
  }

  #bucket(index: number, now: Millis): Bucket {
    let bucket = this.#buckets[index]
    if (bucket === undefined) {
      bucket = { contacts: [], replacements: [], checking: undefined, lastLookupMs: now }
      this.#buckets[index] = bucket
    }
    return bucket
  }

  #diversityRefusal(bucket: Bucket, group: string | undefined): 'ip-group-bucket' | 'ip-group-table' | undefined {
    if (group === undefined) return undefined
    if ((this.#ipGroupCounts.get(group) ?? 0) >= this.#config.ipGroupPerTableMax) return 'ip-group-table'
    let inBucket = 0
    for (const contact of bucket.contacts) if (contact.ipGroup === group) inBucket++
    return inBucket >= this.#config.ipGroupPerBucketMax ? 'ip-group-bucket' : undefined
  }

  #add(bucket: Bucket, contact: Contact): void {
    this.#deepestIndex = Math.max(this.#deepestIndex, this.#indexOf(contact.key)!)
    bucket.contacts.push(contact)
    this.#byPeer.set(contact.peer, contact)
    this.#countGroup(contact.ipGroup, 1)
  }

  #detach(bucket: Bucket, contact: Contact): void {
    bucket.contacts.splice(bucket.contacts.indexOf(contact), 1)
  }

  #queueReplacement(bucket: Bucket, contact: Contact): void {
    const { replacements } = bucket
    const waiting = this.#waiting.get(contact.peer)
    if (waiting !== undefined) replacements.splice(replacements.indexOf(waiting), 1)
    replacements.push(contact)
    this.#waiting.set(contact.peer, contact)
    if (replacements.length > this.#config.replacementCacheSize) this.#waiting.delete(replacements.shift()!.peer)
  }

  #countGroup(group: string | undefined, delta: number): void {
    if (group === undefined) return
    const count = (this.#ipGroupCounts.get(group) ?? 0) + delta
    if (count === 0) this.#ipGroupCounts.delete(group)
    else this.#ipGroupCounts.set(group, count)
  }
}
