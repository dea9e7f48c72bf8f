/**
 * The peer cache: peers that answered us recently, with their addresses, so that a
 * restarted node re-dials known-good peers before (or instead of) the bootstrap list.
 * Bounded: at most `max` peers, the least recently seen dropped first; a peer not seen
 * for `ageMaxMs` is forgotten when the cache is loaded.
 */
import type { AbstractSublevel } from 'abstract-level'

export interface CachedPeer {
  peer: string
  addresses: string[]
  lastSeenMs: number
  rttMs: number
}

type PeerLevel = AbstractSublevel<any, string | Uint8Array, string, CachedPeer>

export interface PeerCacheLimits {
  max: number
  ageMaxMs: number
}

export class PeerCache {
  readonly #level: PeerLevel
  readonly #limits: PeerCacheLimits
  /** Seen since the last save; written together by save(). */
  readonly #pending = new Map<string, CachedPeer>()

  constructor(level: PeerLevel, limits: PeerCacheLimits) {
    this.#level = level
    this.#limits = limits
  }

  /** Remembers a live peer in memory; save() persists it. Peers without addresses cannot be re-dialled and are skipped. */
  seen(entry: CachedPeer): void {
    if (entry.addresses.length === 0) return
    this.#pending.set(entry.peer, entry)
  }

  /** Peers to re-dial, most recently seen first; expired entries are deleted. */
  async load(nowMs: number): Promise<CachedPeer[]> {
    return (await this.#fresh(nowMs)).slice(0, this.#limits.max)
  }

  /** Writes what was seen and trims the cache to `max`, dropping the least recently seen. */
  async save(nowMs: number): Promise<void> {
    const pending = [...this.#pending.values()]
    this.#pending.clear()
    if (pending.length > 0) await this.#level.batch(pending.map((entry) => ({ type: 'put' as const, key: entry.peer, value: entry })))
    const surplus = (await this.#fresh(nowMs)).slice(this.#limits.max)
    if (surplus.length > 0) await this.#level.batch(surplus.map((entry) => ({ type: 'del' as const, key: entry.peer })))
  }

  /** Every unexpired entry, most recently seen first; expired ones are deleted on the way. */
  async #fresh(nowMs: number): Promise<CachedPeer[]> {
    const fresh: CachedPeer[] = []
    const expired: string[] = []
    for await (const [key, entry] of this.#level.iterator()) {
      if (nowMs - entry.lastSeenMs > this.#limits.ageMaxMs) expired.push(key)
      else fresh.push(entry)
    }
    if (expired.length > 0) await this.#level.batch(expired.map((key) => ({ type: 'del' as const, key })))
    return fresh.sort((a, b) => b.lastSeenMs - a.lastSeenMs)
  }
}
