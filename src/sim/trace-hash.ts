/**
 * TraceHash: a running 64-bit fingerprint of everything a simulation does, kept as two
 * 32-bit lanes mixed with Math.imul (a murmur3-style finaliser per word). It is not a
 * cryptographic hash: it only has to change when a run diverges, and to cost a few
 * nanoseconds per event so it can stay on in every run. Fed by Simulator.
 */
export class TraceHash {
  #high = 0x6a09e667 | 0
  #low = 0xbb67ae85 | 0

  /** Folds one 32-bit word into both lanes (each lane with its own multipliers). */
  word(value: number): void {
    let low = this.#low ^ value
    low = Math.imul(low ^ (low >>> 16), 0x85ebca6b)
    low = Math.imul(low ^ (low >>> 13), 0xc2b2ae35)
    this.#low = low ^ (low >>> 16)
    let high = this.#high ^ Math.imul(value, 0x9e3779b1) ^ this.#low
    high = Math.imul(high ^ (high >>> 15), 0x2c1b3c6d)
    high = Math.imul(high ^ (high >>> 12), 0x297a2d39)
    this.#high = high ^ (high >>> 15)
  }

  /** A non-negative number below 2^53 (a time in microseconds, a byte count). */
  number(value: number): void {
    this.word(value >>> 0)
    this.word(Math.floor(value / 4294967296) >>> 0)
  }

  /** 16 hex digits. */
  hex(): string {
    return (this.#high >>> 0).toString(16).padStart(8, '0') + (this.#low >>> 0).toString(16).padStart(8, '0')
  }
}
