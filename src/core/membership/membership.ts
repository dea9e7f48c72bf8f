/**
 * Membership: keeps a node connected to a healthy set of peers. It pings every
 * connected peer to measure latency and to find dead connections (a silent peer is
 * dropped after `pingFailuresMax` timeouts in a row), and it runs peer exchange: it asks
 * a random neighbour for peers now and then, keeps what it learns in a bounded address
 * book, and dials from it until it has `degreeTarget` connections.
 *
 * Driven by net/ (over /shoal/membership/1.0.0) and by sim/. Owns the address book and
 * per-connection liveness; the node persists what `peer-alive` events report.
 */
import type { Prng } from '../prng.ts'
import type { Core, DiscoverySource, Direction, Millis, NetworkAction, NetworkInput, PeerId } from '../sans-io.ts'

export const MEMBERSHIP_PROTOCOL = '/shoal/membership/1.0.0'

export interface PeerRecord {
  peer: PeerId
  addresses: readonly string[]
}

export type MembershipMessage =
  | { type: 'ping'; nonce: number }
  | { type: 'pong'; nonce: number }
  | { type: 'exchange-request'; count: number }
  | { type: 'exchange-response'; peers: PeerRecord[] }

export type MembershipEvent =
  /** A peer answered a ping: worth remembering in the peer cache. */
  | { type: 'peer-alive'; peer: PeerId; addresses: readonly string[]; rttMs: number }
  /** A peer stopped answering and its connection is being closed. */
  | { type: 'peer-dead'; peer: PeerId }

export type MembershipInput = NetworkInput<MembershipMessage>
export type MembershipAction = NetworkAction<MembershipMessage> | { type: 'emit'; event: MembershipEvent }

export interface MembershipConfig {
  self: PeerId
  /** Dial known peers while fewer than this many are connected. */
  degreeTarget: number
  /** Close inbound connections beyond this many (outbound ones are our own choice). */
  degreeMax: number
  pingIntervalMs: number
  pingTimeoutMs: number
  /** Consecutive unanswered pings before a connection is declared dead. */
  pingFailuresMax: number
  exchangeIntervalMs: number
  /** Peers asked for and given in one exchange. */
  exchangePeersMax: number
  /** A peer's exchange requests are answered at most this often. */
  exchangeAnswerIntervalMs: number
  knownPeersMax: number
  dialsInFlightMax: number
  /**
   * How long a peer is not dialled again after a failed dial (doubling per failure, up to
   * dialBackoffMsMax) or after its connection closed.
   */
  dialBackoffMs: number
  dialBackoffMsMax: number
  /** Failed dials in a row after which a peer is forgotten; bootstrap peers never are. */
  dialFailuresMax: number
  /** How long a pruned peer keeps its connection to receive the peers we hand it. */
  pruneGraceMs: number
  /** Pruned connections held open at once; beyond it, pruned peers are closed at once. */
  pruningCountMax: number
}

export const DEFAULT_MEMBERSHIP_CONFIG: Omit<MembershipConfig, 'self'> = {
  degreeTarget: 8,
  degreeMax: 32,
  pingIntervalMs: 15_000,
  pingTimeoutMs: 10_000,
  pingFailuresMax: 2,
  exchangeIntervalMs: 60_000,
  exchangePeersMax: 16,
  exchangeAnswerIntervalMs: 10_000,
  knownPeersMax: 1_000,
  dialsInFlightMax: 4,
  dialBackoffMs: 30_000,
  dialBackoffMsMax: 10 * 60_000,
  dialFailuresMax: 3,
  pruneGraceMs: 2_000,
  pruningCountMax: 16,
}

const FIRST_PING_DELAY_MS_MAX = 1_000

/**
 * Addresses kept and shared per peer. With the codec's address length bound this keeps an
 * exchange response of exchangePeersMax peers well inside one frame.
 */
export const ADDRESSES_PER_PEER_MAX = 4

interface Neighbour {
  direction: Direction
  addresses: readonly string[]
  nextPingAt: Millis
  /** The nonce and send time of the unanswered ping, if any. */
  awaitingNonce: number | undefined
  pingSentAt: Millis
  pingFailures: number
  rttMs: number | undefined
  lastExchangeAnsweredAt: Millis
  /** Set when the neighbour is pruned: it is closed at this time. */
  closeAt: Millis | undefined
}

interface KnownPeer {
  addresses: readonly string[]
  source: DiscoverySource
  dialFailures: number
  dialableAt: Millis
}

export interface MembershipCounters {
  pingsSent: number
  pongsReceived: number
  pingTimeouts: number
  deadPeers: number
  exchangesSent: number
  exchangesAnswered: number
  exchangesRefused: number
  peersLearnt: number
  knownPeersEvicted: number
  dials: number
  dialFailures: number
  prunedConnections: number
  unexpectedPongs: number
}

export class Membership implements Core<MembershipInput, MembershipAction> {
  readonly #config: MembershipConfig
  readonly #prng: Prng
  readonly #neighbours = new Map<PeerId, Neighbour>()
  readonly #known = new Map<PeerId, KnownPeer>()
  readonly #dialing = new Set<PeerId>()
  readonly #actions: MembershipAction[] = []
  #nextExchangeAt: Millis | undefined
  #lastExchangeSentAt: Millis = -Infinity
  #nextMaintainAt: Millis | undefined
  #deadline: Millis | undefined
  readonly counters: MembershipCounters = {
    pingsSent: 0, pongsReceived: 0, pingTimeouts: 0, deadPeers: 0,
    exchangesSent: 0, exchangesAnswered: 0, exchangesRefused: 0,
    peersLearnt: 0, knownPeersEvicted: 0, dials: 0, dialFailures: 0,
    prunedConnections: 0, unexpectedPongs: 0,
  }

  constructor(config: MembershipConfig, prng: Prng) {
    this.#config = config
    this.#prng = prng
  }

  get connectedCount(): number {
    return this.#neighbours.size
  }

  get knownCount(): number {
    return this.#known.size
  }

  connectedPeers(): PeerId[] {
    return [...this.#neighbours.keys()]
  }

  rttMs(peer: PeerId): number | undefined {
    return this.#neighbours.get(peer)?.rttMs
  }

  handle(now: Millis, input: MembershipInput): void {
    switch (input.type) {
      case 'peer-connected': this.#onConnected(now, input.peer, input.direction, input.addresses); break
      case 'peer-disconnected': this.#onDisconnected(now, input.peer); break
      case 'message': this.#onMessage(now, input.from, input.message); break
      case 'dial-failed': this.#onDialFailed(now, input.peer); break
      case 'peer-discovered': this.#learn(now, input.peer, input.addresses, input.source); break
      case 'tick': break
    }
    this.#onTick(now)
  }

  poll(): MembershipAction | undefined {
    return this.#actions.shift()
  }

  nextDeadline(): Millis | undefined {
    return this.#deadline
  }

  #onConnected(now: Millis, peer: PeerId, direction: Direction, addresses: readonly string[]): void {
    this.#dialing.delete(peer)
    if (peer === this.#config.self || this.#neighbours.has(peer)) return
    addresses = addresses.slice(0, ADDRESSES_PER_PEER_MAX)
    const known = this.#known.get(peer)
    if (known !== undefined) {
      known.dialFailures = 0
      if (addresses.length === 0) addresses = known.addresses
    }
    this.#neighbours.set(peer, {
      direction,
      addresses,
      // The first ping goes soon, to learn the latency and that the peer is good to cache,
      // staggered so that peers joining together do not ping in lockstep.
      nextPingAt: now + this.#prng.uniform(0, Math.min(FIRST_PING_DELAY_MS_MAX, this.#config.pingIntervalMs)),
      awaitingNonce: undefined,
      pingSentAt: 0,
      pingFailures: 0,
      rttMs: undefined,
      lastExchangeAnsweredAt: -Infinity,
      closeAt: undefined,
    })
    // A newcomer with a thin address book asks its first neighbour for more at once.
    if (this.#known.size < this.#config.degreeTarget) this.#sendExchange(now, peer)
    if (this.#neighbours.size > this.#config.degreeMax) this.#nextMaintainAt = now
    this.#nextExchangeAt ??= now + this.#jittered(this.#config.exchangeIntervalMs)
  }

  #onDisconnected(now: Millis, peer: PeerId): void {
    this.#dialing.delete(peer)
    if (!this.#neighbours.delete(peer)) return
    this.#backOff(now, peer)
    this.#nextMaintainAt = now
  }

  /**
   * A peer whose connection just closed is not dialled straight back: it may have pruned
   * us, and at once is what turns pruning into a redial loop.
   */
  #backOff(now: Millis, peer: PeerId): void {
    const known = this.#known.get(peer)
    if (known !== undefined) known.dialableAt = Math.max(known.dialableAt, now + this.#config.dialBackoffMs)
  }

  #onDialFailed(now: Millis, peer: PeerId): void {
    if (!this.#dialing.delete(peer)) return
    this.counters.dialFailures++
    this.#nextMaintainAt = now
    const known = this.#known.get(peer)
    if (known === undefined) return
    known.dialFailures++
    // Forgetting a bootstrap peer could leave a node with nobody to ask, forever.
    if (known.dialFailures >= this.#config.dialFailuresMax && known.source !== 'bootstrap') {
      this.#known.delete(peer)
      return
    }
    known.dialableAt = now + Math.min(this.#config.dialBackoffMsMax, this.#config.dialBackoffMs * 2 ** (known.dialFailures - 1))
  }

  #onMessage(now: Millis, from: PeerId, message: MembershipMessage): void {
    const neighbour = this.#neighbours.get(from)
    if (neighbour === undefined) return
    switch (message.type) {
      case 'ping':
        this.#actions.push({ type: 'send', to: from, message: { type: 'pong', nonce: message.nonce } })
        break
      case 'pong':
        if (neighbour.awaitingNonce !== message.nonce) {
          this.counters.unexpectedPongs++
          break
        }
        this.counters.pongsReceived++
        neighbour.awaitingNonce = undefined
        neighbour.pingFailures = 0
        neighbour.rttMs = now - neighbour.pingSentAt
        this.#actions.push({ type: 'emit', event: { type: 'peer-alive', peer: from, addresses: neighbour.addresses, rttMs: neighbour.rttMs } })
        break
      case 'exchange-request':
        if (now - neighbour.lastExchangeAnsweredAt < this.#config.exchangeAnswerIntervalMs) {
          this.counters.exchangesRefused++
          break
        }
        neighbour.lastExchangeAnsweredAt = now
        this.counters.exchangesAnswered++
        this.#actions.push({ type: 'send', to: from, message: { type: 'exchange-response', peers: this.#peersToShare(from, Math.min(message.count, this.#config.exchangePeersMax)) } })
        break
      case 'exchange-response':
        for (const record of message.peers.slice(0, this.#config.exchangePeersMax)) this.#learn(now, record.peer, record.addresses, 'exchange')
        break
    }
  }

  /**
   * Peers we dialled ourselves come first: we know they accept connections, whereas a
   * peer that dialled us may be behind a NAT.
   */
  #peersToShare(requester: PeerId, count: number): PeerRecord[] {
    const outbound: PeerRecord[] = []
    const inbound: PeerRecord[] = []
    for (const [peer, neighbour] of this.#neighbours) {
      if (peer === requester || neighbour.closeAt !== undefined) continue
      ;(neighbour.direction === 'outbound' ? outbound : inbound).push({ peer, addresses: neighbour.addresses })
    }
    const shared = this.#prng.sample(outbound, count)
    if (shared.length < count) shared.push(...this.#prng.sample(inbound, count - shared.length))
    return shared
  }

  #learn(now: Millis, peer: PeerId, addresses: readonly string[], source: DiscoverySource): void {
    if (peer === this.#config.self) return
    addresses = addresses.slice(0, ADDRESSES_PER_PEER_MAX)
    const known = this.#known.get(peer)
    if (known !== undefined) {
      if (addresses.length > 0) known.addresses = addresses
      return
    }
    if (this.#known.size >= this.#config.knownPeersMax) this.#evictKnown()
    this.#known.set(peer, { addresses, source, dialFailures: 0, dialableAt: now })
    this.counters.peersLearnt++
    this.#nextMaintainAt = now
  }

  /** Makes room in a full address book: a random peer that is not connected goes. */
  #evictKnown(): void {
    const keys = [...this.#known.keys()]
    for (let attempt = 0; attempt < 8; attempt++) {
      const victim = this.#prng.pick(keys)!
      if (this.#neighbours.has(victim) || this.#dialing.has(victim)) continue
      this.#known.delete(victim)
      this.counters.knownPeersEvicted++
      return
    }
    this.#known.delete(keys[0]!)
    this.counters.knownPeersEvicted++
  }

  #onTick(now: Millis): void {
    for (const [peer, neighbour] of this.#neighbours) {
      if (neighbour.closeAt !== undefined) {
        if (now >= neighbour.closeAt) {
          this.#neighbours.delete(peer)
          this.#backOff(now, peer)
          this.#actions.push({ type: 'disconnect', peer, reason: 'too-many-connections' })
        }
        continue
      }
      if (neighbour.awaitingNonce !== undefined && now >= neighbour.pingSentAt + this.#config.pingTimeoutMs) {
        this.counters.pingTimeouts++
        neighbour.awaitingNonce = undefined
        neighbour.pingFailures++
        // The next ping goes at once: a dead peer is found within
        // pingIntervalMs + pingFailuresMax × pingTimeoutMs.
        neighbour.nextPingAt = now
        if (neighbour.pingFailures >= this.#config.pingFailuresMax) {
          this.counters.deadPeers++
          this.#neighbours.delete(peer)
          this.#backOff(now, peer)
          this.#actions.push({ type: 'disconnect', peer, reason: 'ping-timeout' })
          this.#actions.push({ type: 'emit', event: { type: 'peer-dead', peer } })
          this.#nextMaintainAt = now
          continue
        }
      }
      if (neighbour.awaitingNonce === undefined && now >= neighbour.nextPingAt) {
        neighbour.awaitingNonce = this.#prng.nextUint32()
        neighbour.pingSentAt = now
        neighbour.nextPingAt = now + this.#config.pingIntervalMs
        this.counters.pingsSent++
        this.#actions.push({ type: 'send', to: peer, message: { type: 'ping', nonce: neighbour.awaitingNonce } })
      }
    }
    if (this.#nextExchangeAt !== undefined && now >= this.#nextExchangeAt) {
      const peer = this.#prng.pick([...this.#neighbours.keys()])
      if (peer !== undefined) this.#sendExchange(now, peer)
      this.#nextExchangeAt = this.#neighbours.size > 0 ? now + this.#jittered(this.#config.exchangeIntervalMs) : undefined
    }
    if (this.#nextMaintainAt !== undefined && now >= this.#nextMaintainAt) this.#maintainDegree(now)
    this.#deadline = this.#computeDeadline()
  }

  #maintainDegree(now: Millis): void {
    this.#nextMaintainAt = undefined
    const { degreeTarget, degreeMax, dialsInFlightMax } = this.#config
    const excess = this.#neighbours.size - this.#pruningCount() - degreeMax
    if (excess > 0) this.#pruneInbound(now, excess)
    const wanted = Math.min(degreeTarget - this.#neighbours.size - this.#dialing.size, dialsInFlightMax - this.#dialing.size)
    if (wanted <= 0) return
    const candidates: PeerId[] = []
    let soonest = Infinity
    for (const [peer, known] of this.#known) {
      if (this.#neighbours.has(peer) || this.#dialing.has(peer)) continue
      if (known.dialableAt <= now) candidates.push(peer)
      else soonest = Math.min(soonest, known.dialableAt)
    }
    for (const peer of this.#prng.sample(candidates, wanted)) {
      this.#dialing.add(peer)
      this.counters.dials++
      this.#actions.push({ type: 'dial', peer, addresses: this.#known.get(peer)!.addresses })
    }
    if (candidates.length >= wanted) return
    // Short of the target with nobody left to dial: ask a neighbour for more peers now
    // rather than at the next exchange, and look again when a backoff ends.
    const neighbour = this.#prng.pick([...this.#neighbours.keys()])
    if (neighbour !== undefined && now - this.#lastExchangeSentAt >= this.#config.exchangeAnswerIntervalMs) this.#sendExchange(now, neighbour)
    if (soonest < Infinity) this.#nextMaintainAt = soonest
  }

  /**
   * Sheds random inbound connections, handing each pruned peer a sample of our neighbours
   * first (peer exchange on prune, as GossipSub v1.1 does) so that a newcomer turned away
   * by a busy bootstrap peer still learns where to go. Its connection stays open for
   * pruneGraceMs so the list arrives. Random, not newest first: pruning the newest lets
   * the first peers form a club closed to later ones (in simulation the overlay then
   * splits), and an attacker who connects early could keep its slots.
   */
  #pruneInbound(now: Millis, excess: number): void {
    const candidates = [...this.#neighbours].filter(([, neighbour]) => neighbour.direction === 'inbound' && neighbour.closeAt === undefined)
    const inbound = this.#prng.sample(candidates, excess)
    let pruningCount = this.#pruningCount()
    for (const [peer, neighbour] of inbound) {
      this.counters.prunedConnections++
      this.#actions.push({ type: 'send', to: peer, message: { type: 'exchange-response', peers: this.#peersToShare(peer, this.#config.exchangePeersMax) } })
      if (pruningCount < this.#config.pruningCountMax) {
        neighbour.closeAt = now + this.#config.pruneGraceMs
        pruningCount++
        continue
      }
      // Too many held open already (a crowd, or someone cycling connections): the list
      // may not arrive before the close.
      this.#neighbours.delete(peer)
      this.#backOff(now, peer)
      this.#actions.push({ type: 'disconnect', peer, reason: 'too-many-connections' })
    }
  }

  #pruningCount(): number {
    let count = 0
    for (const neighbour of this.#neighbours.values()) if (neighbour.closeAt !== undefined) count++
    return count
  }

  #sendExchange(now: Millis, peer: PeerId): void {
    this.#lastExchangeSentAt = now
    this.counters.exchangesSent++
    this.#actions.push({ type: 'send', to: peer, message: { type: 'exchange-request', count: this.#config.exchangePeersMax } })
  }

  #computeDeadline(): Millis | undefined {
    let deadline = this.#nextExchangeAt ?? Infinity
    if (this.#nextMaintainAt !== undefined) deadline = Math.min(deadline, this.#nextMaintainAt)
    for (const neighbour of this.#neighbours.values()) {
      if (neighbour.closeAt !== undefined) deadline = Math.min(deadline, neighbour.closeAt)
      else deadline = Math.min(deadline, neighbour.awaitingNonce === undefined ? neighbour.nextPingAt : neighbour.pingSentAt + this.#config.pingTimeoutMs)
    }
    return deadline === Infinity ? undefined : deadline
  }

  #jittered(intervalMs: number): Millis {
    return intervalMs * this.#prng.uniform(0.75, 1.25)
  }
}
