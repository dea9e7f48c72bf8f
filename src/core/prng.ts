/**
 * Prng: the only source of randomness for protocol cores and the simulator. A seed gives
 * one reproducible stream; `fork(label)` derives an independent stream for a peer or a
 * subsystem, so adding a random draw in one place does not shift every other.
 *
 * The generator is xoshiro128** (Blackman and Vigna), seeded through SplitMix32. It is
 * fast and statistically sound for simulation; it is not for cryptography.
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
    let state = hashText(String(seed))
    const next = () => {
      state = (state + 0x9e3779b9) | 0
      let z = state
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
      return (z ^ (z >>> 16)) >>> 0
    }
    return new Prng(next(), next(), next(), next())
  }

  /** An independent generator named by `label`; the parent's stream is not advanced. */
  fork(label: string): Prng {
    const mix = hashText(label)
    return Prng.fromSeed(`${this.#a ^ mix}:${this.#b}:${this.#c ^ Math.imul(mix, 31)}:${this.#d}`)
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

/** FNV-1a over UTF-16 code units: turns a seed or label into 32 bits. */
function hashText(text: string): number {
  let hash = 0x811c9dc5
  for (let index = 0; index < text.length; index++) {
    hash = Math.imul(hash ^ text.charCodeAt(index), 0x01000193)
  }
  return hash >>> 0
}
