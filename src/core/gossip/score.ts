/**
 * Peer scoring of GossipSub v1.1 (gossipsub-v1.1.md, "Peer Scoring"): the counters behind
 * P1–P7, their decay, and each peer's score, cached.
 *
 *   score = min(topicScoreCap, Σ_topic topicWeight · (w1·P1 + w2·P2 + w3·P3 + w3b·P3b + w4·P4))
 *           + w5·P5 + w6·P6 + w7·P7
 *
 * Driven by GossipCore, which reports what peers do (graft, prune, deliveries, invalid
 * messages, broken promises) and calls refresh() once per heartbeat: counters decay every
 * decayIntervalMs and every connected peer's score is recomputed and cached. Between
 * heartbeats score() returns the cached value, recomputed at once only for a peer whose
 * penalties grew (P4, P7, P3b), so that a misbehaving peer is graylisted without waiting
 * and the cost stays one computation per peer per heartbeat. The time spent computing is
 * kept in computeMs, for the simulator's CPU figure.
 *
 * Owns per-peer and per-topic counters and the message delivery records that decide who
 * delivered a message first and who delivered it "near-first" (P3). A disconnected peer's
 * counters are kept for retainScoreMs, so that leaving and rejoining does not wash a
 * penalty away.
 */
import type { Millis, PeerId } from '../sans-io.ts'
import type { MessageId } from './messages.ts'

export interface TopicScoreParams {
  /** How much the topic's part of the score counts; 0 leaves the topic out. */
  topicWeight: number
  /** P1, time in mesh, in quanta, capped. */
  timeInMeshWeight: number
  timeInMeshQuantumMs: number
  timeInMeshCap: number
  /** P2, first deliveries of valid messages, decaying, capped. */
  firstMessageDeliveriesWeight: number
  firstMessageDeliveriesDecay: number
  firstMessageDeliveriesCap: number
  /**
   * P3, the squared deficit of a mesh peer's (near-)first deliveries below the threshold,
   * once the peer has been in the mesh for the activation time. Negative weight; 0 turns it
   * off. The threshold must sit below the topic's expected message rate times the decay's
   * horizon, or honest mesh peers of a quiet topic are penalised.
   */
  meshMessageDeliveriesWeight: number
  meshMessageDeliveriesDecay: number
  meshMessageDeliveriesThreshold: number
  meshMessageDeliveriesCap: number
  /** A duplicate from a mesh peer this soon after the first copy still counts as delivered. */
  meshMessageDeliveriesWindowMs: number
  meshMessageDeliveriesActivationMs: number
  /** P3b, sticky: the deficit² a peer had when it left the mesh. Negative weight. */
  meshFailurePenaltyWeight: number
  meshFailurePenaltyDecay: number
  /** P4, invalid messages, squared. Negative weight. */
  invalidMessageDeliveriesWeight: number
  invalidMessageDeliveriesDecay: number
}

export interface ScoreParams {
  /** Parameters of named topics; other topics use defaultTopic, or count for nothing without it. */
  topics: Readonly<Record<string, TopicScoreParams>>
  defaultTopic: TopicScoreParams | undefined
  /** Caps the sum of the topic parts (not the rest); Infinity for no cap. */
  topicScoreCap: number
  /** P5: what the application says of a peer, times this weight. */
  appSpecificWeight: number
  /** P6: (peers sharing the IP − threshold)², above the threshold. Negative weight. */
  ipColocationFactorWeight: number
  ipColocationFactorThreshold: number
  /** Loopback and private addresses do not count toward P6 (a local network is one IP). */
  ipColocationPrivateExempt: boolean
  /** P7: (penalty − threshold)², above the threshold. Negative weight. */
  behaviourPenaltyWeight: number
  behaviourPenaltyThreshold: number
  behaviourPenaltyDecay: number
  decayIntervalMs: number
  /** A decayed counter below this is zero. */
  decayToZero: number
  /** How long a disconnected peer's counters are kept. */
  retainScoreMs: number
}

export interface ScoreThresholds {
  /** Below it, a peer gets no gossip from us and its gossip is ignored. Negative. */
  gossipThreshold: number
  /** Below it, a peer is not sent our own messages. At most gossipThreshold. */
  publishThreshold: number
  /** Below it, everything a peer sends is ignored. At most publishThreshold. */
  graylistThreshold: number
  /** A PRUNE's peer exchange is followed only from a peer scoring at least this. Non-negative. */
  acceptPXThreshold: number
  /** Below this median mesh score, better peers are grafted opportunistically. */
  opportunisticGraftThreshold: number
}

/**
 * A topic's parameters for a network whose rates are unknown: P1, P2 and P4 only. P3 needs
 * a known message rate (see meshMessageDeliveriesThreshold), so it is off until set for a
 * topic.
 */
export const DEFAULT_TOPIC_SCORE_PARAMS: TopicScoreParams = {
  topicWeight: 1,
  timeInMeshWeight: 0.01,
  timeInMeshQuantumMs: 1_000,
  timeInMeshCap: 300,
  firstMessageDeliveriesWeight: 1,
  firstMessageDeliveriesDecay: 0.9,
  firstMessageDeliveriesCap: 50,
  meshMessageDeliveriesWeight: 0,
  meshMessageDeliveriesDecay: 0.9,
  meshMessageDeliveriesThreshold: 1,
  meshMessageDeliveriesCap: 50,
  meshMessageDeliveriesWindowMs: 1_000,
  meshMessageDeliveriesActivationMs: 10_000,
  meshFailurePenaltyWeight: 0,
  meshFailurePenaltyDecay: 0.9,
  // Squared: one invalid message (validators differ between nodes, so an honest peer may
  // relay one) costs 1, nine in a row graylist the sender (-81).
  invalidMessageDeliveriesWeight: -1,
  invalidMessageDeliveriesDecay: 0.99,
}

export const DEFAULT_SCORE_PARAMS: ScoreParams = {
  topics: {},
  defaultTopic: DEFAULT_TOPIC_SCORE_PARAMS,
  topicScoreCap: 100,
  appSpecificWeight: 1,
  ipColocationFactorWeight: -5,
  ipColocationFactorThreshold: 10,
  ipColocationPrivateExempt: true,
  behaviourPenaltyWeight: -10,
  behaviourPenaltyThreshold: 6,
  behaviourPenaltyDecay: 0.99,
  decayIntervalMs: 1_000,
  decayToZero: 0.01,
  retainScoreMs: 3_600_000,
}

export const DEFAULT_SCORE_THRESHOLDS: ScoreThresholds = {
  gossipThreshold: -10,
  publishThreshold: -50,
  graylistThreshold: -80,
  acceptPXThreshold: 10,
  opportunisticGraftThreshold: 3,
}

interface TopicStats {
  inMesh: boolean
  graftedAtMs: Millis
  /** Time in mesh, as of the last refresh. */
  meshTimeMs: number
  meshDeliveriesActive: boolean
  firstMessageDeliveries: number
  meshMessageDeliveries: number
  meshFailurePenalty: number
  invalidMessageDeliveries: number
}

interface PeerStats {
  peer: PeerId
  connected: boolean
  /** When a disconnected peer's counters are forgotten. */
  expiresAtMs: Millis
  ip: string | undefined
  topics: Map<string, TopicStats>
  behaviourPenalty: number
  score: number
  /** The cached score is stale: a penalty grew since it was computed. */
  stale: boolean
}

const enum DeliveryStatus { Pending, Valid, Invalid, Ignored }

/** Who delivered one message, and when, while it matters to P2–P4. */
interface DeliveryRecord {
  status: DeliveryStatus
  topic: string
  firstSeenMs: Millis
  /** When validation ended; until then, duplicates are only noted. */
  validatedMs: Millis
  /** Peers that sent a copy other than the first, each once: a few at most, so an array is cheaper than a Set. */
  peers: PeerId[] | undefined
}

export class PeerScore {
  readonly #params: ScoreParams
  readonly #appSpecificScore: (peer: PeerId) => number
  readonly #peers = new Map<PeerId, PeerStats>()
  readonly #peersByIp = new Map<string, Set<PeerId>>()
  /** In insertion order, which is first-seen order: the oldest are swept from the front. */
  readonly #deliveries = new Map<MessageId, DeliveryRecord>()
  readonly #deliveryRecordTtlMs: number
  #lastDecayMs: Millis | undefined
  /** Milliseconds spent computing scores, as measured by `clock` (none by default). */
  computeMs = 0
  readonly #clock: (() => number) | undefined

  constructor(params: ScoreParams, options: { appSpecificScore?: (peer: PeerId) => number; clock?: () => number; deliveryRecordTtlMs?: number } = {}) {
    this.#params = params
    this.#appSpecificScore = options.appSpecificScore ?? (() => 0)
    this.#clock = options.clock
    // Long enough for validation to end and for the near-first window to pass.
    this.#deliveryRecordTtlMs = options.deliveryRecordTtlMs ?? 120_000
  }

  get deliveryRecordCount(): number {
    return this.#deliveries.size
  }

  /** The peer's score: cached at the last refresh, recomputed if a penalty grew since. */
  score(peer: PeerId): number {
    const stats = this.#peers.get(peer)
    if (stats === undefined) return 0
    if (stats.stale) this.#recompute(stats)
    return stats.score
  }

  // --- peers -----------------------------------------------------------------------

  addPeer(peer: PeerId, ip: string | undefined): void {
    let stats = this.#peers.get(peer)
    if (stats === undefined) {
      stats = { peer, connected: true, expiresAtMs: 0, ip: undefined, topics: new Map(), behaviourPenalty: 0, score: 0, stale: true }
      this.#peers.set(peer, stats)
    }
    stats.connected = true
    this.#setIp(peer, stats, ip)
  }

  removePeer(peer: PeerId, now: Millis): void {
    const stats = this.#peers.get(peer)
    if (stats === undefined) return
    this.#setIp(peer, stats, undefined)
    // A peer whose score is not negative has nothing worth remembering against it.
    if (this.score(peer) >= 0) {
      this.#peers.delete(peer)
      return
    }
    stats.connected = false
    stats.expiresAtMs = now + this.#params.retainScoreMs
    for (const [topic, topicStats] of stats.topics) {
      if (!topicStats.inMesh) continue
      this.#leaveMesh(stats, topic, topicStats)
    }
  }

  #setIp(peer: PeerId, stats: PeerStats, ip: string | undefined): void {
    if (stats.ip === ip) return
    if (stats.ip !== undefined) {
      const sharing = this.#peersByIp.get(stats.ip)
      sharing?.delete(peer)
      if (sharing?.size === 0) this.#peersByIp.delete(stats.ip)
      this.#markIpStale(stats.ip)
    }
    stats.ip = ip
    if (ip === undefined) return
    let sharing = this.#peersByIp.get(ip)
    if (sharing === undefined) this.#peersByIp.set(ip, sharing = new Set())
    sharing.add(peer)
    this.#markIpStale(ip)
  }

  #markIpStale(ip: string): void {
    const sharing = this.#peersByIp.get(ip)
    if (sharing === undefined || sharing.size <= this.#params.ipColocationFactorThreshold) return
    for (const peer of sharing) this.#peers.get(peer)!.stale = true
  }

  // --- mesh --------------------------------------------------------------------------

  graft(peer: PeerId, topic: string, now: Millis): void {
    const topicStats = this.#topicStats(peer, topic)
    if (topicStats === undefined) return
    topicStats.inMesh = true
    topicStats.graftedAtMs = now
    topicStats.meshTimeMs = 0
    topicStats.meshDeliveriesActive = false
  }

  prune(peer: PeerId, topic: string): void {
    const stats = this.#peers.get(peer)
    const topicStats = stats?.topics.get(topic)
    if (stats === undefined || topicStats === undefined || !topicStats.inMesh) return
    this.#leaveMesh(stats, topic, topicStats)
  }

  /** P3b: a peer that leaves the mesh with a delivery deficit keeps it as a penalty. */
  #leaveMesh(stats: PeerStats, topic: string, topicStats: TopicStats): void {
    const params = this.#topicParams(topic)
    if (params !== undefined && topicStats.meshDeliveriesActive && topicStats.meshMessageDeliveries < params.meshMessageDeliveriesThreshold) {
      const deficit = params.meshMessageDeliveriesThreshold - topicStats.meshMessageDeliveries
      topicStats.meshFailurePenalty += deficit * deficit
      stats.stale = true
    }
    topicStats.inMesh = false
  }

  // --- messages ----------------------------------------------------------------------

  /** The first copy of a message arrived from `from` and goes to validation. */
  messageReceived(id: MessageId, topic: string, now: Millis): void {
    this.#deliveries.set(id, { status: DeliveryStatus.Pending, topic, firstSeenMs: now, validatedMs: 0, peers: undefined })
  }

  /** Validation accepted the message first received from `from`. */
  messageAccepted(id: MessageId, from: PeerId, now: Millis): void {
    const record = this.#deliveries.get(id)
    if (record === undefined || record.status !== DeliveryStatus.Pending) return
    record.status = DeliveryStatus.Valid
    record.validatedMs = now
    this.#firstDelivery(from, record.topic)
    // Copies that arrived during validation count as near-first for mesh peers.
    if (record.peers !== undefined) for (const peer of record.peers) this.#meshDelivery(peer, record.topic)
  }

  /** Validation rejected it: the first sender and everyone who sent a copy meanwhile are penalised (P4). */
  messageRejected(id: MessageId, from: PeerId, topic: string): void {
    const record = this.#deliveries.get(id)
    if (record !== undefined && record.status !== DeliveryStatus.Pending) return
    this.#invalidDelivery(from, topic)
    if (record === undefined) return
    record.status = DeliveryStatus.Invalid
    if (record.peers !== undefined) for (const peer of record.peers) this.#invalidDelivery(peer, topic)
  }

  /** A message refused before validation (malformed, unsigned, oversize): P4 for its sender. */
  invalidMessage(from: PeerId, topic: string): void {
    this.#invalidDelivery(from, topic)
  }

  messageIgnored(id: MessageId): void {
    const record = this.#deliveries.get(id)
    if (record !== undefined && record.status === DeliveryStatus.Pending) record.status = DeliveryStatus.Ignored
  }

  /** A copy of a message already seen. */
  duplicateMessage(id: MessageId, from: PeerId, now: Millis): void {
    const record = this.#deliveries.get(id)
    if (record === undefined) return
    switch (record.status) {
      case DeliveryStatus.Pending:
        record.peers ??= []
        if (!record.peers.includes(from)) record.peers.push(from)
        return
      case DeliveryStatus.Valid:
        if (now - record.validatedMs <= this.#windowOf(record.topic) && record.peers?.includes(from) !== true) {
          (record.peers ??= []).push(from)
          this.#meshDelivery(from, record.topic)
        }
        return
      case DeliveryStatus.Invalid:
        this.#invalidDelivery(from, record.topic)
        return
      case DeliveryStatus.Ignored:
        return
    }
  }

  /** P7: a behaviour the spec penalises (a GRAFT in backoff, a broken IWANT promise, ...). */
  addPenalty(peer: PeerId, count: number): void {
    const stats = this.#peers.get(peer)
    if (stats === undefined) return
    stats.behaviourPenalty += count
    stats.stale = true
  }

  #firstDelivery(peer: PeerId, topic: string): void {
    const params = this.#topicParams(topic)
    const topicStats = this.#topicStats(peer, topic)
    if (params === undefined || topicStats === undefined) return
    topicStats.firstMessageDeliveries = Math.min(topicStats.firstMessageDeliveries + 1, params.firstMessageDeliveriesCap)
    if (topicStats.inMesh) topicStats.meshMessageDeliveries = Math.min(topicStats.meshMessageDeliveries + 1, params.meshMessageDeliveriesCap)
  }

  #meshDelivery(peer: PeerId, topic: string): void {
    const params = this.#topicParams(topic)
    const topicStats = this.#peers.get(peer)?.topics.get(topic)
    if (params === undefined || topicStats === undefined || !topicStats.inMesh) return
    topicStats.meshMessageDeliveries = Math.min(topicStats.meshMessageDeliveries + 1, params.meshMessageDeliveriesCap)
  }

  #invalidDelivery(peer: PeerId, topic: string): void {
    const topicStats = this.#topicStats(peer, topic)
    if (topicStats === undefined) return
    topicStats.invalidMessageDeliveries += 1
    this.#peers.get(peer)!.stale = true
  }

  #windowOf(topic: string): number {
    return this.#topicParams(topic)?.meshMessageDeliveriesWindowMs ?? 0
  }

  #topicParams(topic: string): TopicScoreParams | undefined {
    return this.#params.topics[topic] ?? this.#params.defaultTopic
  }

  /** Counters are kept only for topics that are scored, of peers we know. */
  #topicStats(peer: PeerId, topic: string): TopicStats | undefined {
    const stats = this.#peers.get(peer)
    if (stats === undefined || this.#topicParams(topic) === undefined) return undefined
    let topicStats = stats.topics.get(topic)
    if (topicStats === undefined) {
      topicStats = {
        inMesh: false, graftedAtMs: 0, meshTimeMs: 0, meshDeliveriesActive: false,
        firstMessageDeliveries: 0, meshMessageDeliveries: 0, meshFailurePenalty: 0, invalidMessageDeliveries: 0,
      }
      stats.topics.set(topic, topicStats)
    }
    return topicStats
  }

  // --- the heartbeat -----------------------------------------------------------------

  /** Once per heartbeat: decays counters when an interval has passed, forgets what expired, recomputes every score. */
  refresh(now: Millis): void {
    this.#lastDecayMs ??= now
    const decays = Math.floor((now - this.#lastDecayMs) / this.#params.decayIntervalMs)
    if (decays > 0) this.#lastDecayMs += decays * this.#params.decayIntervalMs
    for (const [peer, stats] of this.#peers) {
      if (!stats.connected && stats.expiresAtMs <= now) {
        this.#peers.delete(peer)
        continue
      }
      if (decays > 0) this.#decay(stats, decays)
      this.#updateMeshTime(stats, now)
      this.#recompute(stats)
    }
    this.#sweepDeliveries(now)
  }

  #decay(stats: PeerStats, decays: number): void {
    const toZero = this.#params.decayToZero
    const decayed = (value: number, factor: number): number => {
      const next = value * (decays === 1 ? factor : factor ** decays)
      return next < toZero ? 0 : next
    }
    for (const [topic, topicStats] of stats.topics) {
      const params = this.#topicParams(topic)!
      topicStats.firstMessageDeliveries = decayed(topicStats.firstMessageDeliveries, params.firstMessageDeliveriesDecay)
      topicStats.meshMessageDeliveries = decayed(topicStats.meshMessageDeliveries, params.meshMessageDeliveriesDecay)
      topicStats.meshFailurePenalty = decayed(topicStats.meshFailurePenalty, params.meshFailurePenaltyDecay)
      topicStats.invalidMessageDeliveries = decayed(topicStats.invalidMessageDeliveries, params.invalidMessageDeliveriesDecay)
    }
    stats.behaviourPenalty = decayed(stats.behaviourPenalty, this.#params.behaviourPenaltyDecay)
  }

  #updateMeshTime(stats: PeerStats, now: Millis): void {
    for (const [topic, topicStats] of stats.topics) {
      if (!topicStats.inMesh) continue
      topicStats.meshTimeMs = now - topicStats.graftedAtMs
      if (!topicStats.meshDeliveriesActive && topicStats.meshTimeMs >= this.#topicParams(topic)!.meshMessageDeliveriesActivationMs) {
        topicStats.meshDeliveriesActive = true
      }
    }
  }

  #sweepDeliveries(now: Millis): void {
    for (const [id, record] of this.#deliveries) {
      if (now - record.firstSeenMs < this.#deliveryRecordTtlMs) break
      this.#deliveries.delete(id)
    }
  }

  #recompute(stats: PeerStats): void {
    const startMs = this.#clock?.()
    const params = this.#params
    let topicsScore = 0
    for (const [topic, topicStats] of stats.topics) {
      const topicParams = this.#topicParams(topic)!
      let topicScore = 0
      if (topicStats.inMesh) {
        const quanta = topicStats.meshTimeMs / topicParams.timeInMeshQuantumMs
        topicScore += topicParams.timeInMeshWeight * Math.min(quanta, topicParams.timeInMeshCap)
      }
      topicScore += topicParams.firstMessageDeliveriesWeight * topicStats.firstMessageDeliveries
      if (topicStats.inMesh && topicStats.meshDeliveriesActive && topicStats.meshMessageDeliveries < topicParams.meshMessageDeliveriesThreshold) {
        const deficit = topicParams.meshMessageDeliveriesThreshold - topicStats.meshMessageDeliveries
        topicScore += topicParams.meshMessageDeliveriesWeight * deficit * deficit
      }
      topicScore += topicParams.meshFailurePenaltyWeight * topicStats.meshFailurePenalty
      topicScore += topicParams.invalidMessageDeliveriesWeight * topicStats.invalidMessageDeliveries * topicStats.invalidMessageDeliveries
      topicsScore += topicParams.topicWeight * topicScore
    }
    let score = Math.min(topicsScore, params.topicScoreCap)
    score += params.appSpecificWeight * this.#appSpecificScore(stats.peer)
    if (stats.ip !== undefined) {
      const surplus = (this.#peersByIp.get(stats.ip)?.size ?? 0) - params.ipColocationFactorThreshold
      if (surplus > 0) score += params.ipColocationFactorWeight * surplus * surplus
    }
    if (stats.behaviourPenalty > params.behaviourPenaltyThreshold) {
      const excess = stats.behaviourPenalty - params.behaviourPenaltyThreshold
      score += params.behaviourPenaltyWeight * excess * excess
    }
    stats.score = score
    stats.stale = false
    if (startMs !== undefined) this.computeMs += this.#clock!() - startMs
  }
}
