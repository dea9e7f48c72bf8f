import type { Millis } from '../sans-io.ts'

/**
 * A rate limit: tokens (bytes) refill at `bytesPerSecond` up to one second's worth (at
 * least `burstBytesMin`, so that one whole block always fits). Spending may overdraw the
 * bucket: a block is sent or requested whole once the bucket is positive, and the debt
 * delays the next one. An unlimited bucket (Infinity) never waits.
 */
export class TokenBucket {
  readonly bytesPerSecond: number
  readonly #capacity: number
  #tokens: number
  #updatedAt: Millis

  constructor(now: Millis, bytesPerSecond: number, burstBytesMin: number) {
    if (!(bytesPerSecond > 0)) throw new RangeError(`a rate limit must be > 0 bytes per second, not ${bytesPerSecond}`)
    this.bytesPerSecond = bytesPerSecond
    this.#capacity = Math.max(bytesPerSecond, burstBytesMin)
    this.#tokens = this.#capacity
    this.#updatedAt = now
  }

  get unlimited(): boolean {
    return this.bytesPerSecond === Infinity
  }

  ready(now: Millis): boolean {
    if (this.unlimited) return true
    this.#refill(now)
    return this.#tokens > 0
  }

  spend(now: Millis, bytes: number): void {
    if (this.unlimited) return
    this.#refill(now)
    this.#tokens -= bytes
  }

  /** When the bucket will be positive again: now when it is. */
  readyAt(now: Millis): Millis {
    if (this.ready(now)) return now
    return now + Math.ceil(((-this.#tokens + 1) * 1000) / this.bytesPerSecond)
  }

  #refill(now: Millis): void {
    const elapsedMs = now - this.#updatedAt
    if (elapsedMs <= 0) return
    this.#tokens = Math.min(this.#capacity, this.#tokens + (elapsedMs * this.bytesPerSecond) / 1000)
    this.#updatedAt = now
  }
}
