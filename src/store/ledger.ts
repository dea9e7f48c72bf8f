/**
 * The ledger: what this node and each peer have given each other in swarm transfers (bytes
 * of verified blocks received, bytes sent) and how each misbehaved (bad blocks, floods,
 * silence). It is the node's local reputation of its peers, kept across restarts: updated
 * in memory on every block, written to the datastore by save() (the swarm saves it every
 * 30 s and at stop, so a crash loses at most that much accounting, never content).
 */
import type { AbstractSublevel } from 'abstract-level'
import type { LedgerEntry } from '../node/api.ts'

type LedgerLevel = AbstractSublevel<any, string | Uint8Array, string, LedgerEntry>

/** Peers remembered; past it, the least recently seen are forgotten at the next save. */
export const LEDGER_PEERS_MAX = 10_000

export class Ledger {
  readonly #level: LedgerLevel
  readonly #entries = new Map<string, LedgerEntry>()
  readonly #dirty = new Set<string>()
  #loaded: Promise<void> | undefined

  constructor(level: LedgerLevel) {
    this.#level = level
  }

  async load(): Promise<void> {
    this.#loaded ??= (async () => {
      for await (const [peer, entry] of this.#level.iterator()) if (!this.#entries.has(peer)) this.#entries.set(peer, entry)
    })()
    await this.#loaded
  }

  transferred(peer: string, direction: 'sent' | 'received', bytes: number): void {
    const entry = this.#entry(peer)
    if (direction === 'sent') entry.bytesSent += bytes
    else entry.bytesReceived += bytes
  }

  misbehaved(peer: string, reason: string): void {
    const entry = this.#entry(peer)
    entry.misbehaviours[reason] = (entry.misbehaviours[reason] ?? 0) + 1
  }

  entry(peer: string): LedgerEntry | undefined {
    return this.#entries.get(peer)
  }

  /** Every peer, the most received from first. */
  entries(): LedgerEntry[] {
    return [...this.#entries.values()].sort((a, b) => b.bytesReceived - a.bytesReceived || a.peer.localeCompare(b.peer))
  }

  async save(): Promise<void> {
    const batch = this.#level.batch()
    for (const peer of this.#dirty) {
      const entry = this.#entries.get(peer)
      if (entry !== undefined) batch.put(peer, entry)
    }
    this.#dirty.clear()
    if (this.#entries.size > LEDGER_PEERS_MAX) {
      const oldest = [...this.#entries.values()].sort((a, b) => a.lastSeenMs - b.lastSeenMs).slice(0, this.#entries.size - LEDGER_PEERS_MAX)
      for (const entry of oldest) {
        this.#entries.delete(entry.peer)
        batch.del(entry.peer)
      }
    }
    await batch.write()
  }

  #entry(peer: string): LedgerEntry {
    let entry = this.#entries.get(peer)
    if (entry === undefined) {
      entry = { peer, bytesSent: 0, bytesReceived: 0, misbehaviours: {}, lastSeenMs: Date.now() }
      this.#entries.set(peer, entry)
    }
    entry.lastSeenMs = Date.now()
    this.#dirty.add(peer)
    return entry
  }
}
