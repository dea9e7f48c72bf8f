/**
 * A set of leaf indices in the wire's layout: leaf i is bit (7 - i % 8) of byte i / 8, as in
 * BitTorrent's bitfield message, so a peer's bitfield is kept as it arrived and sent as it is.
 */
export class Bitfield {
  readonly size: number
  readonly bytes: Uint8Array
  #count = 0

  constructor(size: number, bytes?: Uint8Array) {
    this.size = size
    this.bytes = bytes ?? new Uint8Array(Bitfield.byteLengthFor(size))
    if (this.bytes.length !== Bitfield.byteLengthFor(size)) throw new RangeError(`a bitfield of ${size} bits takes ${Bitfield.byteLengthFor(size)} bytes, not ${this.bytes.length}`)
    if (bytes !== undefined) for (const byte of bytes) this.#count += POPCOUNT[byte]!
  }

  static byteLengthFor(size: number): number {
    return (size + 7) >>> 3
  }

  static full(size: number): Bitfield {
    const bitfield = new Bitfield(size)
    for (let index = 0; index < size; index++) bitfield.add(index)
    return bitfield
  }

  get count(): number {
    return this.#count
  }

  get complete(): boolean {
    return this.#count === this.size
  }

  has(index: number): boolean {
    return (this.bytes[index >>> 3]! & (0x80 >>> (index & 7))) !== 0
  }

  /** Returns false when the index was already set. */
  add(index: number): boolean {
    const mask = 0x80 >>> (index & 7)
    const byte = this.bytes[index >>> 3]!
    if ((byte & mask) !== 0) return false
    this.bytes[index >>> 3] = byte | mask
    this.#count++
    return true
  }

  /** Calls `visit` for every index that is set here and not in `except` (when given). */
  forEach(visit: (index: number) => void, except?: Bitfield): void {
    const bytes = this.bytes
    const exceptBytes = except?.bytes
    for (let byteIndex = 0; byteIndex < bytes.length; byteIndex++) {
      let byte = bytes[byteIndex]!
      if (exceptBytes !== undefined) byte &= ~exceptBytes[byteIndex]!
      while (byte !== 0) {
        const bit = Math.clz32(byte) - 24
        visit((byteIndex << 3) + bit)
        byte &= ~(0x80 >>> bit)
      }
    }
  }

  /** How many indices are set here and not in `other`. */
  countExcept(other: Bitfield): number {
    let count = 0
    for (let byteIndex = 0; byteIndex < this.bytes.length; byteIndex++) count += POPCOUNT[this.bytes[byteIndex]! & ~other.bytes[byteIndex]!]!
    return count
  }

  /** Whether the spare bits past `size` in the last byte are all zero, as the wire requires. */
  static sparesClear(size: number, bytes: Uint8Array): boolean {
    if ((size & 7) === 0 || bytes.length === 0) return true
    return (bytes[bytes.length - 1]! & (0xff >>> (size & 7))) === 0
  }
}

const POPCOUNT = new Uint8Array(256)
for (let byte = 1; byte < 256; byte++) POPCOUNT[byte] = (byte & 1) + POPCOUNT[byte >>> 1]!
