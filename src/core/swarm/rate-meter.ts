import type { Millis } from '../sans-io.ts'

/**
 * Bytes per second over a sliding window, kept as an exponentially decaying sum so that
 * it costs two numbers per meter (thousands of meters in a simulation). With the decay
 * constant equal to the window, a steady rate r reads as r once the meter has run for a
 * few windows; a meter younger than its window divides by its age instead, so a new
 * peer's first blocks are not read as a trickle.
 */
export class RateMeter {
  readonly #windowMs: number
  #sum = 0
  #updatedAt: Millis
  readonly #startedAt: Millis

  constructor(now: Millis, windowMs: number) {
    this.#windowMs = windowMs
    this.#updatedAt = now
    this.#startedAt = now
  }

  add(now: Millis, bytes: number): void {
    this.#decay(now)
    this.#sum += bytes
  }

  bytesPerSecond(now: Millis): number {
    this.#decay(now)
    const ageMs = now - this.#startedAt
    // The decayed sum of a steady rate r converges to r * window; before that, to r * age.
    const spanMs = Math.max(Math.min(ageMs, this.#windowMs), 1)
    return (this.#sum * 1000) / spanMs
  }

  #decay(now: Millis): void {
    const elapsedMs = now - this.#updatedAt
    if (elapsedMs <= 0) return
    this.#sum *= Math.exp(-elapsedMs / this.#windowMs)
    this.#updatedAt = now
  }
}
