/**
 * Prng: the only source of randomness for protocol cores and the simulator. A seed gives
 * one reproducible stream; `fork(label)` derives an independent stream for a peer or a
 * subsystem, so adding a random draw in one place does not shift every other.
 *
 * The generator is xoshiro128** (Blackman and Vigna) with a 128-bit state hashed from the
 * seed. It is fast and statistically sound for simulation; it is not for cryptography.
 */

export class Prng {
  #a: number
  #b: number
  #c: number
  #d: number

  private constructor(a: number, b: number, c: number, d: number) {
    this.#a = a
    this.#b = b
    this.#c = c
    this.#d = d
    if ((a | b | c | d) === 0) this.#a = 1
  }

  /** A seed is a bigint, a number or text (a commit hash works). */
  static fromSeed(seed: bigint | number | string): Prng {
    const [a, b, c, d] = hash128(String(seed))
    return new Prng(a, b, c, d)
  }

  /**
   * An independent generator named by `label`; the parent's stream is not advanced. The
   * child's 128-bit state mixes the parent's with the label's hash, so 10,000 forks of one
   * parent do not collide (a 32-bit state would, about once in a hundred runs).
   */
  fork(label: string): Prng {
    const [a, b, c, d] = hash128(label)
    return new Prng(finalMix(this.#a ^ a), finalMix(this.#b ^ b), finalMix(this.#c ^ c), finalMix(this.#d ^ d))
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotateLeft(Math.imul(this.#b, 5), 7), 9) >>> 0
    const t = this.#b << 9
    this.#c ^= this.#a
    this.#d ^= this.#b
    this.#b ^= this.#c
    this.#a ^= this.#d
    this.#c ^= t
    this.#d = rotateLeft(this.#d, 11)
    return result
  }

  /** Uniform in [0, 1), with 53 bits of precision. */
  next(): number {
    const high = this.nextUint32() >>> 5
    const low = this.nextUint32() >>> 6
    return (high * 67108864 + low) / 9007199254740992
  }

  /** Uniform integer in [0, bound). */
  int(bound: number): number {
    return Math.floor(this.next() * bound)
  }

  /** Uniform in [min, max). */
  uniform(min: number, max: number): number {
    return min + (max - min) * this.next()
  }

  /** Exponentially distributed with the given mean. */
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.next())
  }

  /** Standard normal, by Box-Muller. */
  normal(): number {
    const u = 1 - this.next()
    const v = this.next()
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
  }

  bernoulli(probability: number): boolean {
    return this.next() < probability
  }

  pick<T>(items: readonly T[]): T | undefined {
    return items.length === 0 ? undefined : items[this.int(items.length)]
  }

  /** Up to `count` distinct items, in random order (a partial Fisher-Yates). */
  sample<T>(items: readonly T[], count: number): T[] {
    const copy = items.slice()
    const taken = Math.min(count, copy.length)
    for (let index = 0; index < taken; index++) {
      const other = index + this.int(copy.length - index)
      const swap = copy[index]!
      copy[index] = copy[other]!
      copy[other] = swap
    }
    copy.length = taken
    return copy
  }
}

function rotateLeft(value: number, bits: number): number {
  return (value << bits) | (value >>> (32 - bits))
}

/**
 * 128 bits from text: four multiplicative hashes over the UTF-16 code units, each lane
 * also stirred by its neighbour, finished with MurmurHash3's 32-bit finaliser.
 */
function hash128(text: string): [number, number, number, number] {
  let h1 = 0x243f6a88
  let h2 = 0x85a308d3
  let h3 = 0x13198a2e
  let h4 = 0x03707344
  for (let index = 0; index < text.length; index++) {
    const unit = text.charCodeAt(index)
    h1 = h2 ^ Math.imul(h1 ^ unit, 0x01000193)
    h2 = h3 ^ Math.imul(h2 ^ unit, 0x5bd1e995)
    h3 = h4 ^ Math.imul(h3 ^ unit, 0xcc9e2d51)
    h4 = h1 ^ Math.imul(h4 ^ unit, 0x1b873593)
  }
  return [finalMix(h1 ^ text.length), finalMix(h2 + h1), finalMix(h3 + h1), finalMix(h4 + h1)]
}

function finalMix(value: number): number {
  let z = value
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  return (z ^ (z >>> 16)) >>> 0
}
