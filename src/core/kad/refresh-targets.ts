/**
 * Preimages for bucket refreshes. A refresh looks up a random key in a bucket, but the
 * wire carries the key's preimage (the receiver hashes it), and SHA-256 cannot be run
 * backwards. So, as go-libp2p-kbucket does, we keep one preimage per 16-bit key prefix:
 * then a preimage whose key shares exactly c < 16 bits with ours is one table read.
 *
 * The table takes about 830,000 hashes (0.7 s) to build, once per process, on the first
 * refresh; the simulator's 10,000 cores share it.
 */
import { keyFromBytes, type Key } from './key.ts'

const PREFIX_BITS = 16
const PREFIX_COUNT = 1 << PREFIX_BITS
/** Preimages are this tag followed by a big-endian counter, 8 bytes in all. */
const TAG = [0x73, 0x68, 0x72, 0x66] // "shrf"

/** Buckets deeper than this are not refreshed (they fill from lookups, as in go-libp2p-kbucket). */
export const REFRESH_PREFIX_LENGTH_MAX = PREFIX_BITS - 1

let table: Uint32Array | undefined

function preimage(counter: number): Uint8Array {
  const bytes = new Uint8Array(8)
  bytes.set(TAG)
  new DataView(bytes.buffer).setUint32(4, counter)
  return bytes
}

function prefixOf(key: Key): number {
  return (key[0]! << 8) | key[1]!
}

function buildTable(): Uint32Array {
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

/**
 * A preimage whose key shares exactly `prefixLength` leading bits with `self`; the bits
 * after the differing one come from `random` (any integer), where the prefix leaves room.
 */
export function refreshPreimage(self: Key, prefixLength: number, random: number): { preimage: Uint8Array; key: Key } {
  if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > REFRESH_PREFIX_LENGTH_MAX) throw new RangeError(`refresh prefix length out of range: ${prefixLength}`)
  table ??= buildTable()
  // Keep self's first prefixLength bits, flip the next, draw the rest of the 16.
  const freeBits = PREFIX_BITS - prefixLength - 1
  const flipped = (prefixOf(self) >> freeBits) ^ 1
  const prefix = (flipped << freeBits) | (random & ((1 << freeBits) - 1))
  const bytes = preimage(table[prefix]!)
  return { preimage: bytes, key: keyFromBytes(bytes) }
}
