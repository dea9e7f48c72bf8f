/**
 * The seen cache of GossipSub: ids of messages received in the last `ttlMs`, so that a
 * message is processed once however many copies arrive. Every id lives equally long, so
 * insertion order is expiry order and a sweep stops at the first live one.
 */
import type { Millis } from '../sans-io.ts'
import type { MessageId } from './messages.ts'

export class SeenCache {
  readonly #ttlMs: number
  readonly #firstSeenMs = new Map<MessageId, Millis>()

  constructor(ttlMs: number) {
    this.#ttlMs = ttlMs
  }

  get size(): number {
    return this.#firstSeenMs.size
  }

  has(id: MessageId): boolean {
    return this.#firstSeenMs.has(id)
  }

  /** Records the id; false if it was already there. */
  add(id: MessageId, now: Millis): boolean {
    if (this.#firstSeenMs.has(id)) return false
    this.#firstSeenMs.set(id, now)
    return true
  }

  sweep(now: Millis): void {
    for (const [id, firstSeenMs] of this.#firstSeenMs) {
      if (now - firstSeenMs < this.#ttlMs) return
      this.#firstSeenMs.delete(id)
    }
  }
}
