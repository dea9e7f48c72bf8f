/**
 * Which leaf to ask a peer for next. Keeps the candidates (leaves neither held nor
 * requested) sorted by availability, the number of session peers that hold each, in
 * buckets of equal availability, as libtorrent's piece picker does: a `have` moves a leaf
 * to the next bucket with one swap, and taking a leaf out of the candidates (requested,
 * stored) or putting it back costs one swap per bucket above it. Picking the rarest leaf a
 * peer holds then walks the buckets from the rarest, or, for a peer that holds few leaves,
 * walks that peer's leaves instead; either way a pick rarely touches more than a handful of
 * leaves, which keeps 10,000-peer simulations of 1,024-leaf content affordable.
 *
 * Within a bucket the order is a seeded shuffle, kept while leaves move between buckets,
 * so two downloaders rarely chase the same rare leaf.
 */
import type { Prng } from '../prng.ts'
import { Bitfield } from './bitfield.ts'

export type PickOrder = 'random' | 'rarest' | 'in-order'

export class PiecePicker {
  readonly leafCount: number
  readonly #availability: Uint16Array
  /** Candidates sorted by availability: order[0, candidateCount). */
  readonly #order: Int32Array
  /** A leaf's position in #order, or -1 when it is not a candidate. */
  readonly #position: Int32Array
  /** Bucket a holds order[bucketStart[a], bucketStart[a + 1]); the last entry is candidateCount. */
  #bucketStart: Int32Array
  #candidateCount = 0
  readonly #prng: Prng

  /** `notCandidates`: leaves already held, which never become candidates. */
  constructor(leafCount: number, notCandidates: Bitfield, prng: Prng) {
    this.leafCount = leafCount
    this.#prng = prng
    this.#availability = new Uint16Array(leafCount)
    this.#order = new Int32Array(leafCount)
    this.#position = new Int32Array(leafCount).fill(-1)
    this.#bucketStart = new Int32Array(2)
    for (let leaf = 0; leaf < leafCount; leaf++) {
      if (notCandidates.has(leaf)) continue
      // An inside-out Fisher–Yates shuffle while filling bucket 0.
      const slot = prng.int(this.#candidateCount + 1)
      if (slot < this.#candidateCount) {
        const moved = this.#order[slot]!
        this.#order[this.#candidateCount] = moved
        this.#position[moved] = this.#candidateCount
      }
      this.#order[slot] = leaf
      this.#position[leaf] = slot
      this.#candidateCount++
    }
    this.#bucketStart[1] = this.#candidateCount
  }

  get candidateCount(): number {
    return this.#candidateCount
  }

  availabilityOf(leaf: number): number {
    return this.#availability[leaf]!
  }

  isCandidate(leaf: number): boolean {
    return this.#position[leaf]! >= 0
  }

  /** A session peer holds `leaf` now (a bitfield or a have). */
  increment(leaf: number): void {
    const availability = this.#availability[leaf]!
    if (availability === 0xffff) return
    this.#availability[leaf] = availability + 1
    const position = this.#position[leaf]!
    if (position < 0) return
    if (availability + 2 >= this.#bucketStart.length) this.#growBuckets(availability + 3)
    // Swap to the end of its bucket, then move the boundary: it is now first of the next.
    const last = this.#bucketStart[availability + 1]! - 1
    this.#swap(position, last)
    this.#bucketStart[availability + 1] = last
  }

  /** A session peer that held `leaf` left the session. */
  decrement(leaf: number): void {
    const availability = this.#availability[leaf]!
    if (availability === 0) return
    this.#availability[leaf] = availability - 1
    const position = this.#position[leaf]!
    if (position < 0) return
    const first = this.#bucketStart[availability]!
    this.#swap(position, first)
    this.#bucketStart[availability] = first + 1
  }

  addPeer(bits: Bitfield): void {
    bits.forEach((leaf) => this.increment(leaf))
  }

  removePeer(bits: Bitfield): void {
    bits.forEach((leaf) => this.decrement(leaf))
  }

  /** A session peer's leaves went from `before` to `after` (a second bitfield): only the difference is counted. */
  replacePeer(before: Bitfield, after: Bitfield): void {
    if (before.size !== after.size) {
      this.removePeer(before)
      this.addPeer(after)
      return
    }
    after.forEach((leaf) => this.increment(leaf), before)
    before.forEach((leaf) => this.decrement(leaf), after)
  }

  /** Takes a leaf out of the candidates (requested or held). */
  remove(leaf: number): void {
    let position = this.#position[leaf]!
    if (position < 0) return
    const top = this.#bucketStart.length - 2
    // Bubble it to the end through every bucket above its own, one swap per bucket.
    for (let bucket = this.#availability[leaf]!; bucket <= top; bucket++) {
      const last = this.#bucketStart[bucket + 1]! - 1
      this.#swap(position, last)
      position = last
      if (bucket < top) this.#bucketStart[bucket + 1] = last
    }
    this.#candidateCount--
    this.#bucketStart[top + 1] = this.#candidateCount
    this.#position[leaf] = -1
  }

  /** Puts a leaf back among the candidates (its request failed or was cancelled). */
  restore(leaf: number): void {
    if (this.#position[leaf]! >= 0) return
    const availability = this.#availability[leaf]!
    // Its availability may have grown past every bucket while it was out.
    if (availability + 2 >= this.#bucketStart.length) this.#growBuckets(availability + 3)
    const top = this.#bucketStart.length - 2
    let position = this.#candidateCount++
    this.#order[position] = leaf
    this.#position[leaf] = position
    this.#bucketStart[top + 1] = this.#candidateCount
    // It sits last in the top bucket; step it down, one swap per bucket above its own.
    for (let bucket = top; bucket > availability; bucket--) {
      const first = this.#bucketStart[bucket]!
      this.#swap(position, first)
      position = first
      this.#bucketStart[bucket] = first + 1
    }
  }

  /** The next candidate `peer` holds, or -1 when it holds none. */
  pick(peer: Bitfield, order: PickOrder): number {
    if (this.#candidateCount === 0) return -1
    switch (order) {
      case 'in-order':
        for (let leaf = 0; leaf < this.leafCount; leaf++) if (this.#position[leaf]! >= 0 && peer.has(leaf)) return leaf
        return -1
      case 'random':
        return this.#pickAmongPeerLeaves(peer, false)
      case 'rarest':
        // Walking the order finds a hit after about candidateCount / peer.count steps.
        if (peer.count * 16 < this.#candidateCount) return this.#pickAmongPeerLeaves(peer, true)
        for (let position = this.#bucketStart[1]!; position < this.#candidateCount; position++) {
          const leaf = this.#order[position]!
          if (peer.has(leaf)) return leaf
        }
        return -1
    }
  }

  /** Uniformly among the peer's candidates, or among its rarest ones. */
  #pickAmongPeerLeaves(peer: Bitfield, rarestOnly: boolean): number {
    let chosen = -1
    let chosenAvailability = Infinity
    let ties = 0
    peer.forEach((leaf) => {
      if (this.#position[leaf]! < 0) return
      const availability = rarestOnly ? this.#availability[leaf]! : 0
      if (availability < chosenAvailability) {
        chosen = leaf
        chosenAvailability = availability
        ties = 1
      } else if (availability === chosenAvailability && this.#prng.int(++ties) === 0) {
        chosen = leaf
      }
    })
    return chosen
  }

  #swap(a: number, b: number): void {
    if (a === b) return
    const leafA = this.#order[a]!
    const leafB = this.#order[b]!
    this.#order[a] = leafB
    this.#position[leafB] = a
    this.#order[b] = leafA
    this.#position[leafA] = b
  }

  /** Adds empty buckets above the top one (availability grew past every bucket so far). */
  #growBuckets(length: number): void {
    if (length <= this.#bucketStart.length) return
    const grown = new Int32Array(Math.max(length, this.#bucketStart.length * 2))
    grown.set(this.#bucketStart)
    grown.fill(this.#candidateCount, this.#bucketStart.length)
    this.#bucketStart = grown
  }
}
