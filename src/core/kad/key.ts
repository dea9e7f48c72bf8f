/**
 * Kademlia keys: 32-byte SHA-256 digests of PeerId or CID bytes (libp2p kad-dht spec,
 * "Distance"), compared by XOR distance. Pure functions, used by the routing table, the
 * lookups and the simulator alike.
 */
import { sha256 } from '@noble/hashes/sha2.js'

export const KEY_BYTES = 32
export const KEY_BITS = KEY_BYTES * 8

/** A SHA-256 digest; branded so that raw bytes are never mistaken for a key. */
export type Key = Uint8Array & { readonly __brand: 'KadKey' }

export function keyFromBytes(bytes: Uint8Array): Key {
  return sha256(bytes) as Key
}

/** For keys that are already digests (random refresh targets). */
export function asKey(bytes: Uint8Array): Key {
  if (bytes.byteLength !== KEY_BYTES) throw new RangeError(`a key has ${KEY_BYTES} bytes, not ${bytes.byteLength}`)
  return bytes as Key
}

/** The number of leading bits two keys share: 0 (far apart) to 256 (equal). */
export function commonPrefixLength(a: Key, b: Key): number {
  for (let index = 0; index < KEY_BYTES; index++) {
    const difference = a[index]! ^ b[index]!
    if (difference !== 0) return index * 8 + Math.clz32(difference) - 24
  }
  return KEY_BITS
}

/** Negative when `a` is closer to `target` than `b`, positive when farther, 0 when equal. */
export function compareDistance(target: Key, a: Key, b: Key): number {
  for (let index = 0; index < KEY_BYTES; index++) {
    const difference = (a[index]! ^ target[index]!) - (b[index]! ^ target[index]!)
    if (difference !== 0) return difference
  }
  return 0
}

/**
 * The distance's first 48 bits as a number: orders keys by distance except in ties (then
 * compareDistance). Built from two 24-bit halves, which the routing table keeps per contact.
 */
export function distancePrefix(target: Key, key: Key): number {
  return (keyBits0To23(key) ^ keyBits0To23(target)) * 0x1000000 + (keyBits24To47(key) ^ keyBits24To47(target))
}

export function keyBits0To23(key: Key): number {
  return (key[0]! << 16) | (key[1]! << 8) | key[2]!
}

export function keyBits24To47(key: Key): number {
  return (key[3]! << 16) | (key[4]! << 8) | key[5]!
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let index = 0; index < a.byteLength; index++) if (a[index] !== b[index]) return false
  return true
}

/**
 * A key whose common prefix with `self` is exactly `prefixLength` bits, the rest drawn
 * from `randomByte`: the target of a bucket refresh.
 */
export function randomKeyAtPrefixLength(self: Key, prefixLength: number, randomByte: () => number): Key {
  const key = new Uint8Array(KEY_BYTES)
  for (let index = 0; index < KEY_BYTES; index++) key[index] = randomByte() & 0xff
  for (let bit = 0; bit <= Math.min(prefixLength, KEY_BITS - 1); bit++) {
    const byte = bit >> 3
    const mask = 0x80 >> (bit & 7)
    const selfBit = self[byte]! & mask
    // Bits before the prefix length copy self; the bit at it differs.
    const wanted = bit < prefixLength ? selfBit : selfBit ^ mask
    key[byte] = (key[byte]! & ~mask) | wanted
  }
  return key as Key
}
