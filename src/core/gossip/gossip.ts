/**
 * GossipCore: GossipSub v1.1 with v1.2's IDONTWANT (libp2p/specs pubsub/gossipsub): a mesh
 * of D peers per subscribed topic that carries full messages, gossip (IHAVE/IWANT) to
 * peers outside it, fanout for topics we publish to without subscribing, peer exchange
 * on PRUNE, and peer scoring (score.ts) that keeps misbehaving peers out.
 *
 * Driven by net/ (ProtocolDriver over /meshsub/1.2.0, 1.1.0 and 1.0.0, long-lived streams)
 * and by sim/: drain poll() after every handle(); tick at nextDeadline() (the heartbeat).
 * The host validates each new message (signature and application rules) when the core
 * asks with a `validate` action and answers with a `validation` input; the core forwards
 * only what was accepted. Owns the mesh, fanout, the message and seen caches, IWANT
 * promises, backoffs and the scores; the host owns signing, signed peer records and
 * delivery to applications (`emit` events).
 */
import type { Prng } from '../prng.ts'
import { ipOf } from '../ip-address.ts'
import type { Core, Millis, NetworkAction, NetworkInput, PeerId } from '../sans-io.ts'
import { checkGossipParams, type GossipConfig } from './config.ts'
import { MessageCache } from './message-cache.ts'
import {
  type ExchangedPeer, type GossipControl, type GossipMessage, type GossipRpc, type MessageId,
  MESHSUB_PROTOCOL_V10, MESHSUB_PROTOCOL_V11, SEQNO_BYTES,
} from './messages.ts'
import { PeerScore } from './score.ts'
import { SeenCache } from './seen-cache.ts'

export type ValidationId = number
export type ValidationResult = 'accept' | 'reject' | 'ignore'

export type GossipEvent =
  /** A message for a topic we subscribe to, accepted (or published by us). */
  | { type: 'message'; topic: string; messageId: MessageId; message: GossipMessage; receivedFrom: PeerId }
  /** Our publish went out to `recipients` peers; `duplicate`: the same message id was seen before, and nothing was sent. */
  | { type: 'published'; messageId: MessageId; recipients: number; duplicate: boolean }
  /** A PRUNE offered peers (v1.1 peer exchange): verify their records and feed back `peer-discovered`. */
  | { type: 'peer-exchange'; from: PeerId; peers: ExchangedPeer[] }

export type GossipInput =
  | NetworkInput<GossipRpc>
  | { type: 'subscribe'; topic: string }
  | { type: 'unsubscribe'; topic: string }
  /** Our own message, signed by the host as the signature policy requires. */
  | { type: 'publish'; message: GossipMessage }
  | { type: 'validation'; id: ValidationId; result: ValidationResult }

export type GossipAction =
  | NetworkAction<GossipRpc>
  /** Check the message's signature and the application's rules; answer with a `validation` input of the same id. */
  | { type: 'validate'; id: ValidationId; from: PeerId; messageId: MessageId; message: GossipMessage }
  | { type: 'emit'; event: GossipEvent }

/** Protocol versions, as the features they bring: PRUNE backoff and PX from 1.1, IDONTWANT from 1.2. */
const enum Version { V10 = 10, V11 = 11, V12 = 12 }

interface PeerState {
  version: Version
  outbound: boolean
  topics: Set<string>
  /** IHAVE messages read and message ids asked for, this heartbeat. */
  ihaveCount: number
  iasked: number
  iwantServed: number
  /** IDONTWANT ids and the heartbeat after which each is forgotten. */
  dontWant: Map<MessageId, number>
  /** Control messages for this peer, sent at the end of the current handle(). */
  control: GossipControl | undefined
  /** Subscriptions announced to it together with the control. */
  subscriptions: GossipRpc['subscriptions'] | undefined
}

interface TopicState {
  /** Connected peers subscribed to the topic. */
  peers: Set<PeerId>
  /** Ours while we subscribe. */
  mesh: Set<PeerId> | undefined
  /** Ours while we publish without subscribing. */
  fanout: Set<PeerId> | undefined
  fanoutPublishedMs: Millis
  /** Peers we will not GRAFT, nor accept a GRAFT from, until the time given. */
  backoff: Map<PeerId, Millis>
}

interface PendingValidation {
  from: PeerId
  messageId: MessageId
  message: GossipMessage
  /** Peers that sent a copy meanwhile: they have it, so it is not forwarded to them. */
  copiesFrom: Set<PeerId> | undefined
}

export interface GossipCounters {
  rpcsReceived: number
  rpcsGraylisted: number
  messagesReceived: number
  messagesDuplicate: number
  messagesAccepted: number
  messagesRejected: number
  messagesIgnored: number
  /** Refused before validation: malformed, missing what the signature policy requires, oversize. */
  messagesInvalid: number
  messagesNotSubscribed: number
  validationsThrottled: number
  messagesForwarded: number
  messagesPublished: number
  /** Copies not sent because the peer said IDONTWANT. */
  forwardsSuppressed: number
  ihaveSent: number
  ihaveReceived: number
  ihaveIgnored: number
  iwantSent: number
  iwantReceived: number
  iwantServed: number
  iwantRefused: number
  idontwantSent: number
  idontwantReceived: number
  idontwantIgnored: number
  graftSent: number
  graftReceived: number
  graftRefused: number
  graftIgnored: number
  pruneSent: number
  pruneReceived: number
  brokenPromises: number
  exchangePeersReceived: number
  subscriptionsRefused: number
  penalties: number
}

/** A PRUNE's backoff is honoured up to this: a remote must not bar us for years. */
const BACKOFF_MS_MAX = 24 * 3_600_000

export class GossipCore implements Core<GossipInput, GossipAction> {
  readonly counters: GossipCounters = {
    rpcsReceived: 0, rpcsGraylisted: 0, messagesReceived: 0, messagesDuplicate: 0, messagesAccepted: 0,
    messagesRejected: 0, messagesIgnored: 0, messagesInvalid: 0, messagesNotSubscribed: 0, validationsThrottled: 0,
    messagesForwarded: 0, messagesPublished: 0, forwardsSuppressed: 0, ihaveSent: 0, ihaveReceived: 0, ihaveIgnored: 0,
    iwantSent: 0, iwantReceived: 0, iwantServed: 0, iwantRefused: 0, idontwantSent: 0, idontwantReceived: 0,
    idontwantIgnored: 0, graftSent: 0, graftReceived: 0, graftRefused: 0, graftIgnored: 0, pruneSent: 0,
    pruneReceived: 0, brokenPromises: 0, exchangePeersReceived: 0, subscriptionsRefused: 0, penalties: 0,
  }

  readonly #config: GossipConfig
  readonly #prng: Prng
  readonly #score: PeerScore | undefined
  readonly #peers = new Map<PeerId, PeerState>()
  readonly #topics = new Map<string, TopicState>()
  readonly #subscriptions = new Set<string>()
  readonly #direct: ReadonlySet<PeerId>
  readonly #mcache: MessageCache
  readonly #seen: SeenCache
  /** IWANT promises: for each id asked, who promised it and until when. */
  readonly #promises = new Map<MessageId, Map<PeerId, Millis>>()
  readonly #validations = new Map<ValidationId, PendingValidation>()
  readonly #validating = new Map<MessageId, PendingValidation>()
  readonly #exchangeDials = new Set<PeerId>()
  /** Peers with control or subscriptions waiting for the end of handle(). */
  readonly #outgoing = new Set<PeerId>()
  readonly #actions: GossipAction[] = []
  #actionHead = 0
  #nextValidationId: ValidationId = 1
  #heartbeatCount = 0
  #nextHeartbeatMs: Millis | undefined

  constructor(config: GossipConfig, prng: Prng) {
    checkGossipParams(config)
    this.#config = config
    this.#prng = prng
    this.#direct = new Set(config.directPeers)
    this.#mcache = new MessageCache(config.mcacheLength, config.mcacheGossip)
    this.#seen = new SeenCache(config.seenTtlMs)
    this.#score = config.scoring === undefined
      ? undefined
      : new PeerScore(config.scoring.params, {
        appSpecificScore: config.appSpecificScore?.bind(config),
        clock: config.scoreClock?.bind(config),
        deliveryRecordTtlMs: config.seenTtlMs,
      })
  }

  // --- what the host reads -----------------------------------------------------------

  get subscriptions(): string[] {
    return [...this.#subscriptions]
  }

  /** Connected peers subscribed to `topic`. */
  peersOf(topic: string): PeerId[] {
    return [...(this.#topics.get(topic)?.peers ?? [])]
  }

  meshOf(topic: string): PeerId[] {
    return [...(this.#topics.get(topic)?.mesh ?? [])]
  }

  get connectedCount(): number {
    return this.#peers.size
  }

  scoreOf(peer: PeerId): number {
    return this.#score?.score(peer) ?? 0
  }

  /** Milliseconds spent computing scores, as measured by config.scoreClock. */
  get scoreComputeMs(): number {
    return this.#score?.computeMs ?? 0
  }

  get pendingValidationCount(): number {
    return this.#validations.size
  }

  get cachedMessageCount(): number {
    return this.#mcache.size
  }

  // --- the loop ----------------------------------------------------------------------

  handle(now: Millis, input: GossipInput): void {
    this.#nextHeartbeatMs ??= now + this.#config.heartbeatInitialDelayMs
    switch (input.type) {
      case 'peer-connected': this.#onPeerConnected(input.peer, input.direction === 'outbound', input.addresses, input.protocol); break
      case 'peer-disconnected': this.#onPeerDisconnected(now, input.peer); break
      case 'dial-failed': this.#exchangeDials.delete(input.peer); break
      case 'peer-discovered': this.#onPeerDiscovered(input.peer, input.addresses); break
      case 'message': this.#onRpc(now, input.from, input.message); break
      case 'tick': if (now >= this.#nextHeartbeatMs) this.#heartbeat(now); break
      case 'subscribe': this.#subscribe(now, input.topic); break
      case 'unsubscribe': this.#unsubscribe(now, input.topic); break
      case 'publish': this.#publish(now, input.message); break
      case 'validation': this.#onValidation(now, input.id, input.result); break
    }
    this.#flushControl()
  }

  poll(): GossipAction | undefined {
    if (this.#actionHead === this.#actions.length) {
      if (this.#actionHead > 0) {
        this.#actions.length = 0
        this.#actionHead = 0
      }
      return undefined
    }
    const action = this.#actions[this.#actionHead]!
    this.#actions[this.#actionHead++] = undefined as unknown as GossipAction
    return action
  }

  nextDeadline(): Millis | undefined {
    return this.#nextHeartbeatMs
  }

  // --- peers -------------------------------------------------------------------------

  #onPeerConnected(peer: PeerId, outbound: boolean, addresses: readonly string[], protocol: string | undefined): void {
    this.#exchangeDials.delete(peer)
    if (this.#peers.has(peer) || peer === this.#config.self) return
    const version = protocol === MESHSUB_PROTOCOL_V10 ? Version.V10 : protocol === MESHSUB_PROTOCOL_V11 ? Version.V11 : Version.V12
    this.#peers.set(peer, {
      version, outbound, topics: new Set(), ihaveCount: 0, iasked: 0, iwantServed: 0,
      dontWant: new Map(), control: undefined, subscriptions: undefined,
    })
    const ip = this.#config.scoring === undefined ? undefined : ipOf(addresses, this.#config.scoring.params.ipColocationPrivateExempt)
    this.#score?.addPeer(peer, ip)
    if (this.#subscriptions.size > 0) {
      this.#outgoingFor(peer).subscriptions = [...this.#subscriptions].map((topic) => ({ topic, subscribe: true }))
    }
  }

  #onPeerDisconnected(now: Millis, peer: PeerId): void {
    const state = this.#peers.get(peer)
    if (state === undefined) return
    for (const topic of state.topics) {
      const topicState = this.#topics.get(topic)
      if (topicState === undefined) continue
      topicState.peers.delete(peer)
      topicState.mesh?.delete(peer)
      topicState.fanout?.delete(peer)
      this.#forgetTopicIfIdle(topic, topicState)
    }
    this.#peers.delete(peer)
    this.#outgoing.delete(peer)
    this.#score?.removePeer(peer, now)
  }

  #onPeerDiscovered(peer: PeerId, addresses: readonly string[]): void {
    if (this.#peers.has(peer) || peer === this.#config.self || this.#exchangeDials.has(peer)) return
    if (this.#exchangeDials.size >= this.#config.exchangeDialsMax) return
    this.#exchangeDials.add(peer)
    this.#push({ type: 'dial', peer, addresses })
  }

  // --- receiving ---------------------------------------------------------------------

  #onRpc(now: Millis, from: PeerId, rpc: GossipRpc): void {
    const peer = this.#peers.get(from)
    if (peer === undefined) return
    this.counters.rpcsReceived++
    if (this.#score !== undefined && this.#score.score(from) < this.#config.scoring!.thresholds.graylistThreshold) {
      this.counters.rpcsGraylisted++
      return
    }
    if (rpc.subscriptions.length > 0) this.#onSubscriptions(from, peer, rpc.subscriptions)
    for (const message of rpc.messages) this.#onMessage(now, from, message)
    const control = rpc.control
    if (control === undefined) return
    // IDONTWANT first: it may concern messages this very RPC makes us forward later.
    if (control.idontwant.length > 0) this.#onIDontWant(peer, control.idontwant)
    for (const topic of control.graft) this.#onGraft(now, from, peer, topic)
    for (const prune of control.prune) this.#onPrune(now, from, prune)
    if (control.ihave.length > 0) this.#onIHave(now, from, peer, control.ihave)
    if (control.iwant.length > 0) this.#onIWant(from, peer, control.iwant)
  }

  #onSubscriptions(from: PeerId, peer: PeerState, changes: GossipRpc['subscriptions']): void {
    let refused = false
    for (const { topic, subscribe } of changes) {
      if (subscribe) {
        if (peer.topics.has(topic)) continue
        if (peer.topics.size >= this.#config.topicsPerPeerMax || topic.length === 0) {
          this.counters.subscriptionsRefused++
          refused = true
          continue
        }
        peer.topics.add(topic)
        this.#topicState(topic).peers.add(from)
        continue
      }
      if (!peer.topics.delete(topic)) continue
      const topicState = this.#topics.get(topic)!
      topicState.peers.delete(from)
      topicState.fanout?.delete(from)
      if (topicState.mesh?.delete(from) === true) this.#score?.prune(from, topic)
      this.#forgetTopicIfIdle(topic, topicState)
    }
    if (refused) this.#penalise(from, 1)
  }

  #onMessage(now: Millis, from: PeerId, message: GossipMessage): void {
    this.counters.messagesReceived++
    if (!this.#subscriptions.has(message.topic)) {
      this.counters.messagesNotSubscribed++
      return
    }
    const messageId = this.#structureOk(message) ? this.#config.messageIdOf(message) : undefined
    if (messageId === undefined) {
      this.counters.messagesInvalid++
      this.#score?.invalidMessage(from, message.topic)
      return
    }
    this.#promises.delete(messageId)
    if (this.#seen.has(messageId)) {
      this.counters.messagesDuplicate++
      this.#score?.duplicateMessage(messageId, from, now)
      const pending = this.#validating.get(messageId)
      if (pending !== undefined) (pending.copiesFrom ??= new Set()).add(from)
      return
    }
    if (this.#validations.size >= this.#config.validationsPendingMax) {
      this.counters.validationsThrottled++
      return
    }
    this.#seen.add(messageId, now)
    this.#score?.messageReceived(messageId, message.topic, now)
    if (this.#config.idontwant && message.data.byteLength > this.#config.idontwantMessageBytesMin) {
      this.#sendIDontWant(from, message.topic, messageId)
    }
    const id = this.#nextValidationId++
    const pending: PendingValidation = { from, messageId, message, copiesFrom: undefined }
    this.#validations.set(id, pending)
    this.#validating.set(messageId, pending)
    this.#push({ type: 'validate', id, from, messageId, message })
  }

  /** What the core can check of a message without its content: defects, size, the signature policy's fields. */
  #structureOk(message: GossipMessage): boolean {
    if (message.defect !== undefined || message.data.byteLength > this.#config.messageDataBytesMax) return false
    if (this.#config.signaturePolicy === 'strict-sign') {
      return message.from !== undefined && message.seqno?.byteLength === SEQNO_BYTES && message.signature !== undefined
    }
    return message.from === undefined && message.seqno === undefined && message.signature === undefined && message.key === undefined
  }

  #onValidation(now: Millis, id: ValidationId, result: 'accept' | 'reject' | 'ignore'): void {
    const pending = this.#validations.get(id)
    if (pending === undefined) return
    this.#validations.delete(id)
    const { from, messageId, message, copiesFrom } = pending
    this.#validating.delete(messageId)
    if (result === 'reject') {
      this.counters.messagesRejected++
      this.#score?.messageRejected(messageId, from, message.topic)
      return
    }
    if (result === 'ignore') {
      this.counters.messagesIgnored++
      this.#score?.messageIgnored(messageId)
      return
    }
    this.counters.messagesAccepted++
    this.#score?.messageAccepted(messageId, from, now)
    this.#mcache.put(messageId, message)
    if (this.#subscriptions.has(message.topic)) {
      this.#push({ type: 'emit', event: { type: 'message', topic: message.topic, messageId, message, receivedFrom: from } })
    }
    this.#forward(messageId, message, from, copiesFrom)
  }

  /** To the topic's mesh and our direct peers, but not to those that have it (sender, source, copies) or said IDONTWANT. */
  #forward(messageId: MessageId, message: GossipMessage, from: PeerId, copiesFrom: ReadonlySet<PeerId> | undefined): void {
    const topicState = this.#topics.get(message.topic)
    if (topicState?.mesh === undefined) return
    const rpc: GossipRpc = { subscriptions: [], messages: [message] }
    const sendTo = (peer: PeerId): void => {
      if (peer === from || peer === message.from || copiesFrom?.has(peer) === true) return
      const state = this.#peers.get(peer)
      if (state === undefined) return
      if (state.dontWant.has(messageId)) {
        this.counters.forwardsSuppressed++
        return
      }
      this.counters.messagesForwarded++
      this.#push({ type: 'send', to: peer, message: rpc })
    }
    for (const peer of topicState.mesh) sendTo(peer)
    for (const peer of this.#direct) if (!topicState.mesh.has(peer) && topicState.peers.has(peer)) sendTo(peer)
  }

  #sendIDontWant(from: PeerId, topic: string, messageId: MessageId): void {
    const mesh = this.#topics.get(topic)?.mesh
    if (mesh === undefined) return
    for (const peer of mesh) {
      if (peer === from || this.#peers.get(peer)!.version < Version.V12) continue
      this.counters.idontwantSent++
      this.#push({ type: 'send', to: peer, message: { subscriptions: [], messages: [], control: controlWith({ idontwant: [messageId] }) } })
    }
  }

  #onIDontWant(peer: PeerState, ids: readonly MessageId[]): void {
    const expiresAt = this.#heartbeatCount + this.#config.idontwantTtlHeartbeats
    for (const id of ids) {
      this.counters.idontwantReceived++
      if (peer.dontWant.size >= this.#config.idontwantPerPeerMax) {
        this.counters.idontwantIgnored++
        continue
      }
      peer.dontWant.set(id, expiresAt)
    }
  }

  #onGraft(now: Millis, from: PeerId, peer: PeerState, topic: string): void {
    this.counters.graftReceived++
    const topicState = this.#topics.get(topic)
    // Unknown topics are ignored, not answered: answering would let anyone make us send.
    if (topicState?.mesh === undefined) {
      this.counters.graftIgnored++
      return
    }
    if (topicState.mesh.has(from)) return
    if (this.#direct.has(from)) return this.#refuseGraft(now, from, peer, topic, false)
    const backoffUntil = topicState.backoff.get(from)
    if (backoffUntil !== undefined && now < backoffUntil) {
      // A GRAFT in backoff breaks the protocol; one right after the PRUNE is a flood.
      const prunedAt = backoffUntil - this.#config.pruneBackoffMs
      this.#penalise(from, now < prunedAt + this.#config.graftFloodThresholdMs ? 2 : 1)
      return this.#refuseGraft(now, from, peer, topic, false)
    }
    if (this.#scoreOf(from) < 0) return this.#refuseGraft(now, from, peer, topic, false)
    // Past Dhi only outbound peers are taken: an attacker cannot fill the mesh by dialling in.
    if (topicState.mesh.size >= this.#config.Dhi && !peer.outbound) return this.#refuseGraft(now, from, peer, topic, true)
    topicState.mesh.add(from)
    this.#score?.graft(from, topic, now)
  }

  #refuseGraft(now: Millis, from: PeerId, peer: PeerState, topic: string, exchange: boolean): void {
    this.counters.graftRefused++
    this.#sendPrune(now, from, peer, topic, this.#config.pruneBackoffMs, exchange)
  }

  #onPrune(now: Millis, from: PeerId, prune: GossipControl['prune'][number]): void {
    this.counters.pruneReceived++
    const topicState = this.#topics.get(prune.topic)
    if (topicState === undefined) return
    if (topicState.mesh?.delete(from) === true) this.#score?.prune(from, prune.topic)
    const backoffMs = prune.backoffSeconds === undefined ? this.#config.pruneBackoffMs : Math.min(prune.backoffSeconds * 1_000, BACKOFF_MS_MAX)
    this.#setBackoff(topicState, from, now + backoffMs)
    if (prune.peers.length === 0) return
    if (this.#config.scoring !== undefined && this.#scoreOf(from) < this.#config.scoring.thresholds.acceptPXThreshold) return
    const peers = prune.peers
      .filter(({ peer }) => peer !== this.#config.self && !this.#peers.has(peer))
      .slice(0, this.#config.prunePeers)
    if (peers.length === 0) return
    this.counters.exchangePeersReceived += peers.length
    this.#push({ type: 'emit', event: { type: 'peer-exchange', from, peers } })
  }

  #onIHave(now: Millis, from: PeerId, peer: PeerState, ihaves: GossipControl['ihave']): void {
    this.counters.ihaveReceived++
    peer.ihaveCount++
    if (this.#scoreOf(from) < this.#gossipThreshold || peer.ihaveCount > this.#config.ihavePerHeartbeatMax || peer.iasked >= this.#config.ihaveLengthMax) {
      this.counters.ihaveIgnored++
      return
    }
    const wanted = new Set<MessageId>()
    for (const { topic, messageIds } of ihaves) {
      if (!this.#subscriptions.has(topic)) continue
      for (const id of messageIds) if (!this.#seen.has(id)) wanted.add(id)
    }
    if (wanted.size === 0) return
    let ids = [...wanted]
    const room = this.#config.ihaveLengthMax - peer.iasked
    if (ids.length > room) ids = this.#prng.sample(ids, room)
    peer.iasked += ids.length
    // One promise per IWANT, on a random id, as the spec's tracer does: enough to catch a liar.
    const promised = ids[this.#prng.int(ids.length)]!
    let promisers = this.#promises.get(promised)
    if (promisers === undefined) this.#promises.set(promised, promisers = new Map())
    if (!promisers.has(from)) promisers.set(from, now + this.#config.iwantFollowupMs)
    this.counters.iwantSent++
    this.#outgoingControl(from).iwant.push(...ids)
  }

  #onIWant(from: PeerId, peer: PeerState, ids: readonly MessageId[]): void {
    this.counters.iwantReceived++
    if (this.#scoreOf(from) < this.#gossipThreshold) return
    let refused = 0
    for (const id of ids) {
      if (peer.iwantServed >= this.#config.iwantServedPerHeartbeatMax) {
        refused++
        continue
      }
      const message = this.#mcache.getForPeer(id, from, this.#config.gossipRetransmission)
      if (message === 'absent') continue
      if (message === 'too-many') {
        refused++
        continue
      }
      peer.iwantServed++
      this.counters.iwantServed++
      this.#push({ type: 'send', to: from, message: { subscriptions: [], messages: [message] } })
    }
    if (refused > 0) {
      this.counters.iwantRefused += refused
      this.#penalise(from, 1)
    }
  }

  // --- local API ---------------------------------------------------------------------

  #subscribe(now: Millis, topic: string): void {
    if (this.#subscriptions.has(topic)) return
    this.#subscriptions.add(topic)
    const topicState = this.#topicState(topic)
    const mesh = new Set<PeerId>()
    // Fanout peers we already send to are the first choice, as the spec's JOIN says.
    for (const peer of topicState.fanout ?? []) if (mesh.size < this.#config.D && this.#scoreOf(peer) >= 0) mesh.add(peer)
    topicState.fanout = undefined
    topicState.mesh = mesh
    this.#graftNew(now, topic, topicState, this.#config.D - mesh.size, () => true)
    for (const peer of mesh) this.#sendGraft(peer, topic)
    this.#announce({ topic, subscribe: true })
  }

  #unsubscribe(now: Millis, topic: string): void {
    if (!this.#subscriptions.delete(topic)) return
    const topicState = this.#topics.get(topic)!
    for (const peer of topicState.mesh!) {
      this.#score?.prune(peer, topic)
      this.#sendPrune(now, peer, this.#peers.get(peer)!, topic, this.#config.unsubscribeBackoffMs, true)
    }
    topicState.mesh = undefined
    this.#announce({ topic, subscribe: false })
    this.#forgetTopicIfIdle(topic, topicState)
  }

  #announce(change: { topic: string; subscribe: boolean }): void {
    for (const peer of this.#peers.keys()) (this.#outgoingFor(peer).subscriptions ??= []).push(change)
  }

  #publish(now: Millis, message: GossipMessage): void {
    const messageId = this.#config.messageIdOf(message)
    if (messageId === undefined) throw new Error('publish: the host built a message without what its id is computed from')
    if (!this.#seen.add(messageId, now)) {
      this.#push({ type: 'emit', event: { type: 'published', messageId, recipients: 0, duplicate: true } })
      return
    }
    this.counters.messagesPublished++
    this.#mcache.put(messageId, message)
    const topicState = this.#topicState(message.topic)
    const recipients = new Set<PeerId>()
    if (this.#config.floodPublish) {
      for (const peer of topicState.peers) if (this.#scoreOf(peer) >= this.#publishThreshold) recipients.add(peer)
    } else if (topicState.mesh !== undefined) {
      for (const peer of topicState.mesh) recipients.add(peer)
    } else {
      if (topicState.fanout === undefined) {
        topicState.fanout = new Set()
        this.#topUpFanout(topicState)
      }
      topicState.fanoutPublishedMs = now
      for (const peer of topicState.fanout) recipients.add(peer)
    }
    for (const peer of this.#direct) if (topicState.peers.has(peer)) recipients.add(peer)
    const rpc: GossipRpc = { subscriptions: [], messages: [message] }
    for (const peer of recipients) this.#push({ type: 'send', to: peer, message: rpc })
    if (this.#subscriptions.has(message.topic)) {
      this.#push({ type: 'emit', event: { type: 'message', topic: message.topic, messageId, message, receivedFrom: this.#config.self } })
    }
    this.#push({ type: 'emit', event: { type: 'published', messageId, recipients: recipients.size, duplicate: false } })
  }

  // --- the heartbeat -----------------------------------------------------------------

  #heartbeat(now: Millis): void {
    this.#heartbeatCount++
    this.#nextHeartbeatMs = now + this.#config.heartbeatIntervalMs
    this.#score?.refresh(now)
    this.#applyBrokenPromises(now)
    for (const peer of this.#peers.values()) {
      peer.ihaveCount = 0
      peer.iasked = 0
      peer.iwantServed = 0
      if (peer.dontWant.size > 0) for (const [id, expiresAt] of peer.dontWant) if (expiresAt < this.#heartbeatCount) peer.dontWant.delete(id)
    }
    for (const topic of this.#subscriptions) this.#maintainMesh(now, topic, this.#topics.get(topic)!)
    for (const [topic, topicState] of this.#topics) {
      if (topicState.fanout !== undefined) this.#maintainFanout(now, topic, topicState)
      if (topicState.backoff.size > 0) this.#expireBackoffs(now, topicState)
      this.#forgetTopicIfIdle(topic, topicState)
    }
    if (this.#direct.size > 0 && this.#heartbeatCount % this.#config.directConnectTicks === 0) {
      for (const peer of this.#direct) if (!this.#peers.has(peer)) this.#push({ type: 'dial', peer, addresses: [] })
    }
    this.#seen.sweep(now)
    this.#mcache.shift()
  }

  #maintainMesh(now: Millis, topic: string, topicState: TopicState): void {
    const mesh = topicState.mesh!
    const { D, Dlo, Dhi, Dscore, Dout } = this.#config
    for (const peer of mesh) {
      if (this.#scoreOf(peer) >= 0) continue
      mesh.delete(peer)
      this.#score?.prune(peer, topic)
      this.#sendPrune(now, peer, this.#peers.get(peer)!, topic, this.#config.pruneBackoffMs, false)
    }
    if (mesh.size < Dlo) this.#graftNew(now, topic, topicState, D - mesh.size, () => true)
    if (mesh.size > Dhi) {
      // Keep the Dscore best, then random peers up to D, with at least Dout outbound among them.
      const ranked = this.#prng.sample([...mesh], mesh.size).sort((a, b) => this.#scoreOf(b) - this.#scoreOf(a))
      const kept = [...ranked.slice(0, Dscore), ...this.#prng.sample(ranked.slice(Dscore), D - Dscore)]
      const outboundKept = kept.filter((peer) => this.#peers.get(peer)!.outbound).length
      if (outboundKept < Dout) {
        const spareOutbound = ranked.filter((peer) => !kept.includes(peer) && this.#peers.get(peer)!.outbound)
        for (let index = kept.length - 1, needed = Dout - outboundKept; index >= 0 && needed > 0 && spareOutbound.length > 0; index--) {
          if (this.#peers.get(kept[index]!)!.outbound) continue
          kept[index] = spareOutbound.shift()!
          needed--
        }
      }
      const keep = new Set(kept)
      for (const peer of ranked) {
        if (keep.has(peer)) continue
        mesh.delete(peer)
        this.#score?.prune(peer, topic)
        this.#sendPrune(now, peer, this.#peers.get(peer)!, topic, this.#config.pruneBackoffMs, true)
      }
    }
    if (mesh.size >= Dlo) {
      let outbound = 0
      for (const peer of mesh) if (this.#peers.get(peer)!.outbound) outbound++
      if (outbound < Dout) this.#graftNew(now, topic, topicState, Dout - outbound, (peer) => this.#peers.get(peer)!.outbound)
    }
    if (this.#score !== undefined && this.#heartbeatCount % this.#config.opportunisticGraftTicks === 0 && mesh.size > 1) {
      const scores = [...mesh].map((peer) => this.#scoreOf(peer)).sort((a, b) => a - b)
      const median = scores[Math.floor(scores.length / 2)]!
      if (median < this.#config.scoring!.thresholds.opportunisticGraftThreshold) {
        this.#graftNew(now, topic, topicState, this.#config.opportunisticGraftPeers, (peer) => this.#scoreOf(peer) > median)
      }
    }
    this.#emitGossip(topic, mesh)
  }

  /** Grafts up to `count` random eligible peers of the topic (subscribed, not in mesh or backoff, not direct, score ≥ 0). */
  #graftNew(now: Millis, topic: string, topicState: TopicState, count: number, eligible: (peer: PeerId) => boolean): void {
    if (count <= 0) return
    const mesh = topicState.mesh!
    const candidates: PeerId[] = []
    for (const peer of topicState.peers) {
      if (mesh.has(peer) || this.#direct.has(peer) || topicState.backoff.has(peer)) continue
      if (this.#scoreOf(peer) < 0 || !eligible(peer)) continue
      candidates.push(peer)
    }
    for (const peer of this.#prng.sample(candidates, count)) {
      mesh.add(peer)
      this.#score?.graft(peer, topic, now)
      this.#sendGraft(peer, topic)
    }
  }

  #maintainFanout(now: Millis, topic: string, topicState: TopicState): void {
    if (topicState.fanoutPublishedMs + this.#config.fanoutTtlMs < now) {
      topicState.fanout = undefined
      return
    }
    const fanout = topicState.fanout!
    for (const peer of fanout) if (!topicState.peers.has(peer) || this.#scoreOf(peer) < this.#publishThreshold) fanout.delete(peer)
    this.#topUpFanout(topicState)
    this.#emitGossip(topic, fanout)
  }

  #topUpFanout(topicState: TopicState): void {
    const fanout = topicState.fanout!
    const needed = this.#config.D - fanout.size
    if (needed <= 0) return
    const candidates: PeerId[] = []
    for (const peer of topicState.peers) {
      if (!fanout.has(peer) && !this.#direct.has(peer) && this.#scoreOf(peer) >= this.#publishThreshold) candidates.push(peer)
    }
    for (const peer of this.#prng.sample(candidates, needed)) fanout.add(peer)
  }

  /** IHAVE of the topic's recent messages to max(Dlazy, gossipFactor × eligible) peers outside `exclude`. */
  #emitGossip(topic: string, exclude: ReadonlySet<PeerId>): void {
    if (!this.#mcache.hasGossip()) return
    let ids = this.#mcache.gossipIds(topic)
    if (ids.length === 0) return
    const topicState = this.#topics.get(topic)!
    const candidates: PeerId[] = []
    for (const peer of topicState.peers) {
      if (exclude.has(peer) || this.#direct.has(peer) || this.#scoreOf(peer) < this.#gossipThreshold) continue
      candidates.push(peer)
    }
    if (candidates.length === 0) return
    const count = Math.max(this.#config.Dlazy, Math.floor(this.#config.gossipFactor * candidates.length))
    if (ids.length > this.#config.ihaveLengthMax) ids = this.#prng.sample(ids, this.#config.ihaveLengthMax)
    for (const peer of this.#prng.sample(candidates, count)) {
      this.counters.ihaveSent++
      this.#outgoingControl(peer).ihave.push({ topic, messageIds: ids })
    }
  }

  #applyBrokenPromises(now: Millis): void {
    for (const [id, promisers] of this.#promises) {
      for (const [peer, deadline] of promisers) {
        if (deadline > now) continue
        promisers.delete(peer)
        this.counters.brokenPromises++
        this.#penalise(peer, 1)
      }
      if (promisers.size === 0) this.#promises.delete(id)
    }
  }

  #expireBackoffs(now: Millis, topicState: TopicState): void {
    const slackMs = this.#config.backoffSlackHeartbeats * this.#config.heartbeatIntervalMs
    for (const [peer, until] of topicState.backoff) if (until + slackMs < now) topicState.backoff.delete(peer)
  }

  // --- sending control ---------------------------------------------------------------

  #sendGraft(peer: PeerId, topic: string): void {
    this.counters.graftSent++
    this.#outgoingControl(peer).graft.push(topic)
  }

  /** PRUNE, with a backoff for v1.1 peers and, when `exchange`, peers they may connect to instead. */
  #sendPrune(now: Millis, to: PeerId, peer: PeerState, topic: string, backoffMs: number, exchange: boolean): void {
    this.counters.pruneSent++
    const topicState = this.#topicState(topic)
    this.#setBackoff(topicState, to, now + backoffMs)
    if (peer.version === Version.V10) {
      this.#outgoingControl(to).prune.push({ topic, peers: [] })
      return
    }
    let peers: ExchangedPeer[] = []
    if (exchange && this.#config.prunePeers > 0) {
      const candidates: PeerId[] = []
      for (const candidate of topicState.peers) if (candidate !== to && this.#scoreOf(candidate) >= 0) candidates.push(candidate)
      peers = this.#prng.sample(candidates, this.#config.prunePeers).map((candidate) => {
        const signedPeerRecord = this.#config.signedPeerRecordOf?.(candidate)
        return signedPeerRecord === undefined ? { peer: candidate } : { peer: candidate, signedPeerRecord }
      })
    }
    this.#outgoingControl(to).prune.push({ topic, peers, backoffSeconds: Math.ceil(backoffMs / 1_000) })
  }

  #setBackoff(topicState: TopicState, peer: PeerId, until: Millis): void {
    const current = topicState.backoff.get(peer)
    if (current === undefined || current < until) topicState.backoff.set(peer, until)
  }

  #outgoingFor(peer: PeerId): PeerState {
    const state = this.#peers.get(peer)!
    this.#outgoing.add(peer)
    return state
  }

  #outgoingControl(peer: PeerId): GossipControl {
    const state = this.#outgoingFor(peer)
    return state.control ??= controlWith({})
  }

  /** One RPC per peer with everything queued for it during this handle(). */
  #flushControl(): void {
    for (const peer of this.#outgoing) {
      const state = this.#peers.get(peer)
      if (state === undefined) continue
      const rpc: GossipRpc = { subscriptions: state.subscriptions ?? [], messages: [] }
      if (state.control !== undefined) rpc.control = state.control
      state.subscriptions = undefined
      state.control = undefined
      this.#push({ type: 'send', to: peer, message: rpc })
    }
    this.#outgoing.clear()
  }

  // --- helpers -----------------------------------------------------------------------

  #topicState(topic: string): TopicState {
    let topicState = this.#topics.get(topic)
    if (topicState === undefined) {
      topicState = { peers: new Set(), mesh: undefined, fanout: undefined, fanoutPublishedMs: 0, backoff: new Map() }
      this.#topics.set(topic, topicState)
    }
    return topicState
  }

  #forgetTopicIfIdle(topic: string, topicState: TopicState): void {
    if (topicState.peers.size === 0 && topicState.mesh === undefined && topicState.fanout === undefined && topicState.backoff.size === 0) {
      this.#topics.delete(topic)
    }
  }

  #scoreOf(peer: PeerId): number {
    return this.#score === undefined ? 0 : this.#score.score(peer)
  }

  get #gossipThreshold(): number {
    return this.#config.scoring?.thresholds.gossipThreshold ?? -Infinity
  }

  get #publishThreshold(): number {
    return this.#config.scoring?.thresholds.publishThreshold ?? -Infinity
  }

  #penalise(peer: PeerId, count: number): void {
    this.counters.penalties += count
    this.#score?.addPenalty(peer, count)
  }

  #push(action: GossipAction): void {
    this.#actions.push(action)
  }
}

function controlWith(parts: Partial<GossipControl>): GossipControl {
  return { ihave: [], iwant: [], graft: [], prune: [], idontwant: [], ...parts }
}
