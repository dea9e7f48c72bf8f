/**
 * The message cache of GossipSub (gossipsub-v1.0.md, "Message Cache"): the messages of
 * the last `historyLength` heartbeats, to answer IWANT, and the ids of the last
 * `gossipLength` heartbeats, to advertise in IHAVE. Driven by GossipCore: put() on every
 * accepted message, shift() once per heartbeat.
 */
import type { PeerId } from '../sans-io.ts'
import type { GossipMessage, MessageId } from './messages.ts'

interface Entry {
  message: GossipMessage
  /** How many times each peer got it from us by IWANT (gossip_retransmission). */
  retransmissions: Map<PeerId, number> | undefined
}

export class MessageCache {
  readonly #gossipLength: number
  readonly #entries = new Map<MessageId, Entry>()
  /** Newest first: the ids put in each of the last historyLength heartbeats. */
  readonly #windows: Array<Array<{ id: MessageId; topic: string }>>

  constructor(historyLength: number, gossipLength: number) {
    if (gossipLength > historyLength) throw new RangeError('gossipLength must not exceed historyLength')
    this.#gossipLength = gossipLength
    this.#windows = Array.from({ length: historyLength }, () => [])
  }

  get size(): number {
    return this.#entries.size
  }

  put(id: MessageId, message: GossipMessage): void {
    if (this.#entries.has(id)) return
    this.#entries.set(id, { message, retransmissions: undefined })
    this.#windows[0]!.push({ id, topic: message.topic })
  }

  get(id: MessageId): GossipMessage | undefined {
    return this.#entries.get(id)?.message
  }

  /**
   * The message for an IWANT from `peer`, unless it already got it `retransmissionsMax`
   * times this way: a peer asking again and again is not served.
   */
  getForPeer(id: MessageId, peer: PeerId, retransmissionsMax: number): GossipMessage | 'absent' | 'too-many' {
    const entry = this.#entries.get(id)
    if (entry === undefined) return 'absent'
    entry.retransmissions ??= new Map()
    const count = entry.retransmissions.get(peer) ?? 0
    if (count >= retransmissionsMax) return 'too-many'
    entry.retransmissions.set(peer, count + 1)
    return entry.message
  }

  /** Ids of `topic` put within the last gossipLength heartbeats, newest first. */
  gossipIds(topic: string): MessageId[] {
    const ids: MessageId[] = []
    for (let index = 0; index < this.#gossipLength; index++) {
      for (const entry of this.#windows[index]!) if (entry.topic === topic) ids.push(entry.id)
    }
    return ids
  }

  /** Whether any message could be gossiped: lets a heartbeat skip gossip when nothing was published lately. */
  hasGossip(): boolean {
    for (let index = 0; index < this.#gossipLength; index++) if (this.#windows[index]!.length > 0) return true
    return false
  }

  /** The heartbeat: the oldest window's messages are dropped and a new window begins. */
  shift(): void {
    const oldest = this.#windows.pop()!
    for (const entry of oldest) this.#entries.delete(entry.id)
    oldest.length = 0
    this.#windows.unshift(oldest)
  }
}
