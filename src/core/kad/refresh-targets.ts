/**
 * Preimages for bucket refreshes. A refresh looks up a random key in a bucket, but the
 * wire carries the key's preimage (the receiver hashes it), and SHA-256 cannot be run
 * backwards. So, as go-libp2p-kbucket does, we keep one preimage per 16-bit key prefix:
 * then a preimage whose key shares exactly c < 16 bits with ours is one table read.
 *
 * Building the table takes about 830,000 hashes: 2.5 s of a loaded 2-core machine, all of it
 * in one event-loop turn, which stalled every node at its first refresh (the relay of the
 * NAT testbed, for one, answered nothing for that long). So the table is built once, by
 * `npm run generate:refresh-preimages`, and shipped in refresh-preimages.ts, as
 * go-libp2p-kbucket ships its own.
 */
import { fromString } from 'uint8arrays/from-string'
import { keyFromBytes, type Key } from './key.ts'
import { REFRESH_PREIMAGE_COUNTERS } from './refresh-preimages.ts'

const PREFIX_BITS = 16
export const PREFIX_COUNT = 1 << PREFIX_BITS
/** Preimages are this tag followed by a big-endian counter, 8 bytes in all. */
const TAG = [0x73, 0x68, 0x72, 0x66] // "shrf"

/** Buckets deeper than this are not refreshed (they fill from lookups, as in go-libp2p-kbucket). */
export const REFRESH_PREFIX_LENGTH_MAX = PREFIX_BITS - 1

let table: Uint32Array | undefined

export function preimage(counter: number): Uint8Array {
  const bytes = new Uint8Array(8)
  bytes.set(TAG)
  new DataView(bytes.buffer).setUint32(4, counter)
  return bytes
}

export function prefixOf(key: Key): number {
  return (key[0]! << 8) | key[1]!
}

/** For each 16-bit prefix, the smallest counter whose preimage's key has it (what refresh-preimages.ts holds). */
export function buildPreimageCounters(): Uint32Array {
  const built = new Uint32Array(PREFIX_COUNT)
  let missing = PREFIX_COUNT
  // Counter 0 is never used, so 0 in the table means "not found yet".
  for (let counter = 1; missing > 0; counter++) {
    const prefix = prefixOf(keyFromBytes(preimage(counter)))
    if (built[prefix] !== 0) continue
    built[prefix] = counter
    missing--
  }
  return built
}

/** What refresh-preimages.ts holds: the counters as little-endian uint32, in base64. */
export function shippedPreimageCounters(): Uint32Array {
  const bytes = fromString(REFRESH_PREIMAGE_COUNTERS, 'base64')
  if (bytes.byteLength !== PREFIX_COUNT * 4) throw new Error(`refresh-preimages.ts holds ${bytes.byteLength} bytes, not ${PREFIX_COUNT * 4}: run npm run generate:refresh-preimages`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return Uint32Array.from({ length: PREFIX_COUNT }, (_, index) => view.getUint32(index * 4, true))
}

/**
 * A preimage whose key shares exactly `prefixLength` leading bits with `self`; the bits
 * after the differing one come from `random` (any integer), where the prefix leaves room.
 */
export function refreshPreimage(self: Key, prefixLength: number, random: number): { preimage: Uint8Array; key: Key } {
  if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > REFRESH_PREFIX_LENGTH_MAX) throw new RangeError(`refresh prefix length out of range: ${prefixLength}`)
  table ??= shippedPreimageCounters()
  // Keep self's first prefixLength bits, flip the next, draw the rest of the 16.
  const freeBits = PREFIX_BITS - prefixLength - 1
  const flipped = (prefixOf(self) >> freeBits) ^ 1
  const prefix = (flipped << freeBits) | (random & ((1 << freeBits) - 1))
  const bytes = preimage(table[prefix]!)
  return { preimage: bytes, key: keyFromBytes(bytes) }
}
