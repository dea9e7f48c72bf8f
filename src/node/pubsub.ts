/**
 * PubSub: GossipSub in the daemon. Runs the gossip core (core/gossip) over the host with
 * the protocol driver on long-lived streams (/meshsub/1.2.0, falling back to 1.1.0 and
 * 1.0.0), and does for it what needs keys or the application:
 *   - signs our messages (StrictSign: from, a seqno, an Ed25519 signature over the spec's
 *     "libp2p-pubsub:" bytes) and verifies everyone else's;
 *   - runs the application's topic validators, which may be async, and answers the core;
 *   - checks the signed peer records that a PRUNE's peer exchange carries before dialling;
 *   - delivers messages to local subscribers (each topic's subscription is held while at
 *     least one listener wants it), as callbacks or as bounded queues that a slow reader
 *     cannot make grow (pubsub-subscription.ts).
 * Reads the clock for the driver.
 */
import { publicKeyFromProtobuf } from '@libp2p/crypto/keys'
import { sha256 } from '@noble/hashes/sha2.js'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { PeerRecord, RecordEnvelope } from '@libp2p/peer-record'
import { ShoalError } from '../core/errors.ts'
import { DEFAULT_GOSSIP_PARAMS } from '../core/gossip/config.ts'
import { GossipCore, type GossipAction, type GossipEvent, type GossipInput, type ValidationResult } from '../core/gossip/gossip.ts'
import { GOSSIP_LIMITS, type GossipMessage, type GossipRpc, type MessageId, messageIdFromBytes, messageIdToBytes, SEQNO_BYTES } from '../core/gossip/messages.ts'
import { Prng } from '../core/prng.ts'
import { asPeerId, type PeerId } from '../core/sans-io.ts'
import type { ShoalHost } from '../net/host.ts'
import type { DriverMetrics } from '../net/metrics.ts'
import { type HostAction, ProtocolDriver } from '../net/protocol-driver.ts'
import { defaultMessageId, gossipCodec, gossipSigningBytes, publicKeyMessageId } from '../wire/gossip.ts'
import type { PubSubMessage, PubSubPublished, PubSubSubscription } from './api.ts'
import type { Config } from './config.ts'
import { DEFAULT_SUBSCRIPTION_LIMITS, type SubscriberCounters, type SubscriptionLimits, SubscriptionQueue } from './pubsub-subscription.ts'

export type { PubSubMessage }

/** The application's verdict on a message of its topic: accept (deliver and forward), reject (penalise the sender), ignore. */
export type TopicValidator = (message: PubSubMessage) => ValidationResult | Promise<ValidationResult>

/** Why the host refused a message, counted in shoal_pubsub_validation_total. */
interface ValidationCounters {
  accepted: number
  invalidSignature: number
  missingKey: number
  validatorRejected: number
  validatorIgnored: number
  validatorFailed: number
  exchangedRecordsInvalid: number
}

type GossipDriver = ProtocolDriver<GossipRpc, GossipInput, GossipAction>
type PublishOutcome = PubSubPublished

/** Signed peer records kept for peer exchange; the map is dropped whole when full. */
const PEER_RECORDS_CACHED_MAX = 1_024

export class PubSub {
  readonly core: GossipCore
  readonly validation: ValidationCounters = {
    accepted: 0, invalidSignature: 0, missingKey: 0, validatorRejected: 0,
    validatorIgnored: 0, validatorFailed: 0, exchangedRecordsInvalid: 0,
  }
  readonly subscribers: SubscriberCounters = { messagesQueued: 0, messagesDropped: 0 }

  readonly #host: ShoalHost
  readonly #privateKey: PrivateKey
  readonly #self: PeerId
  readonly #settings: Config['pubsub']
  readonly #messageIdOf: (message: GossipMessage) => MessageId | undefined
  #driver: GossipDriver | undefined
  readonly #listeners = new Map<string, Set<(message: PubSubMessage) => void>>()
  readonly #validators = new Map<string, TopicValidator>()
  /** Publishes awaiting their `published` event, oldest first (StrictNoSign ids repeat when the data does). */
  readonly #publishes = new Map<MessageId, Array<(outcome: PublishOutcome) => void>>()
  readonly #peerRecords = new Map<PeerId, Uint8Array>()
  readonly #queues = new Set<SubscriptionQueue>()
  /** Seqnos start from the clock so that a restarted node does not repeat message ids. */
  #seqno = BigInt(Date.now()) * 1_000_000n
  #stopped = false

  private constructor(host: ShoalHost, privateKey: PrivateKey, settings: Config['pubsub']) {
    this.#host = host
    this.#privateKey = privateKey
    this.#self = asPeerId(host.peerId.toString())
    this.#settings = settings
    this.#messageIdOf = settings.signaturePolicy === 'strict-no-sign'
      ? contentMessageId
      : settings.messageIdFormat === 'public-key' ? publicKeyMessageId : defaultMessageId
    this.core = new GossipCore({
      ...DEFAULT_GOSSIP_PARAMS,
      D: settings.D,
      Dlo: settings.Dlo,
      Dhi: settings.Dhi,
      Dlazy: settings.Dlazy,
      // The spec's bounds: Dout < Dlo, Dout <= D/2, Dscore <= D.
      Dout: Math.min(DEFAULT_GOSSIP_PARAMS.Dout, settings.Dlo - 1, Math.floor(settings.D / 2)),
      Dscore: Math.min(DEFAULT_GOSSIP_PARAMS.Dscore, settings.D),
      heartbeatIntervalMs: settings.heartbeatIntervalMs,
      floodPublish: settings.floodPublish,
      idontwant: settings.idontwant,
      messageDataBytesMax: settings.messageBytesMax,
      directPeers: settings.directPeers.map(asPeerId),
      signaturePolicy: settings.signaturePolicy,
      scoring: settings.scoring ? DEFAULT_GOSSIP_PARAMS.scoring : undefined,
      self: this.#self,
      messageIdOf: this.#messageIdOf,
      signedPeerRecordOf: (peer) => this.#peerRecords.get(peer),
    }, Prng.fromSeed(`${this.#self}:${Date.now()}`).fork('gossip'))
  }

  static async start(host: ShoalHost, privateKey: PrivateKey, settings: Config['pubsub'], metrics: DriverMetrics): Promise<PubSub> {
    const pubsub = new PubSub(host, privateKey, settings)
    metrics.registerCoreCounters('gossip', 'GossipSub events', pubsub.core.counters)
    metrics.registerCoreCounters('pubsub_validation', 'Messages judged by signature and topic validators', pubsub.validation)
    metrics.registerCoreCounters('pubsub_subscribers', 'Messages queued for local subscribers, and dropped because one read too slowly', pubsub.subscribers)
    pubsub.#driver = new ProtocolDriver({
      libp2p: host,
      codec: gossipCodec,
      core: pubsub.core,
      now: Date.now,
      metrics,
      onAction: (action) => pubsub.#onAction(action),
    })
    host.addEventListener('peer:identify', pubsub.#onIdentify)
    host.addEventListener('peer:disconnect', pubsub.#onDisconnect)
    await pubsub.#driver.start()
    return pubsub
  }

  /** Topics we subscribe to. */
  topics(): string[] {
    return this.core.subscriptions.sort()
  }

  /** Connected peers subscribed to `topic`. */
  peers(topic: string): string[] {
    checkTopic(topic)
    return this.core.peersOf(topic).sort()
  }

  /**
   * Calls `onMessage` for every message of `topic` until the returned function is called.
   * The node subscribes on the first listener of a topic and unsubscribes after the last.
   */
  subscribe(topic: string, onMessage: (message: PubSubMessage) => void): () => void {
    checkTopic(topic)
    if (this.#stopped) throw offline()
    let listeners = this.#listeners.get(topic)
    if (listeners === undefined) {
      if (this.#listeners.size >= this.#settings.subscriptionsMax) {
        throw new ShoalError('QUOTA_EXCEEDED', `already subscribed to ${this.#listeners.size} topics (pubsub.subscriptionsMax)`)
      }
      this.#listeners.set(topic, listeners = new Set())
      this.#input({ type: 'subscribe', topic })
    }
    const listener = (message: PubSubMessage): void => onMessage(message)
    listeners.add(listener)
    return () => {
      if (!listeners.delete(listener) || listeners.size > 0 || this.#listeners.get(topic) !== listeners) return
      this.#listeners.delete(topic)
      // After stop() there is no core to tell: a subscriber that leaves late is not an error.
      if (!this.#stopped) this.#input({ type: 'unsubscribe', topic })
    }
  }

  /**
   * The messages of `topic` as an async iterable with a bounded buffer (see
   * SubscriptionQueue), until it is closed or `signal` aborts; it fails with OFFLINE when
   * pub/sub stops.
   */
  subscription(topic: string, options: { signal?: AbortSignal; limits?: SubscriptionLimits } = {}): PubSubSubscription {
    const queue: SubscriptionQueue = new SubscriptionQueue(topic, options.limits ?? DEFAULT_SUBSCRIPTION_LIMITS, this.subscribers, () => {
      this.#queues.delete(queue)
      unsubscribe()
    })
    const unsubscribe = this.subscribe(topic, (message) => queue.push(message))
    this.#queues.add(queue)
    queue.endWith(options.signal)
    return queue
  }

  /** Publishes `data` on `topic`; resolves with the message id and the peers it was sent to (0 when nobody listens yet). */
  async publish(topic: string, data: Uint8Array): Promise<PublishOutcome> {
    checkTopic(topic)
    if (data.byteLength > this.#settings.messageBytesMax) {
      throw new ShoalError('INVALID_ARGUMENT', `message of ${data.byteLength} bytes is over pubsub.messageBytesMax (${this.#settings.messageBytesMax})`)
    }
    if (this.#stopped) throw offline()
    const message = await this.#sign(topic, data)
    // Checked again: stop() may have come while signing, and it settles only the publishes it saw.
    if (this.#stopped) throw offline()
    const messageId = this.#messageIdOf(message)!
    const outcome = new Promise<PublishOutcome>((resolve) => {
      const waiting = this.#publishes.get(messageId)
      if (waiting === undefined) this.#publishes.set(messageId, [resolve])
      else waiting.push(resolve)
    })
    this.#input({ type: 'publish', message })
    return outcome
  }

  /** Sets (or, with undefined, removes) the application's validator of `topic`. */
  setValidator(topic: string, validator: TopicValidator | undefined): void {
    if (validator === undefined) this.#validators.delete(topic)
    else this.#validators.set(topic, validator)
  }

  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    this.#host.removeEventListener('peer:identify', this.#onIdentify)
    this.#host.removeEventListener('peer:disconnect', this.#onDisconnect)
    for (const waiting of this.#publishes.values()) for (const resolve of waiting) resolve({ messageId: '', recipients: 0 })
    this.#publishes.clear()
    for (const queue of this.#queues) queue.fail(offline())
    await this.#driver?.stop()
  }

  #input(input: Exclude<GossipInput, { type: 'message' | 'peer-connected' | 'peer-disconnected' | 'dial-failed' | 'tick' }>): void {
    if (this.#stopped) throw offline()
    this.#driver!.input(input)
  }

  async #sign(topic: string, data: Uint8Array): Promise<GossipMessage> {
    if (this.#settings.signaturePolicy === 'strict-no-sign') return { topic, data }
    const seqno = new Uint8Array(SEQNO_BYTES)
    new DataView(seqno.buffer).setBigUint64(0, ++this.#seqno)
    const unsigned: GossipMessage = { topic, data, from: this.#self, seqno }
    const signature = await this.#privateKey.sign(gossipSigningBytes(unsigned))
    return { ...unsigned, signature }
  }

  #onAction(action: HostAction<GossipRpc, GossipAction>): void {
    if (action.type === 'validate') {
      void this.#validate(action.message, action.from, action.messageId).then((result) => {
        if (!this.#stopped) this.#driver!.input({ type: 'validation', id: action.id, result })
      })
      return
    }
    this.#onEvent(action.event)
  }

  #onEvent(event: GossipEvent): void {
    switch (event.type) {
      case 'message': {
        const listeners = this.#listeners.get(event.topic)
        if (listeners === undefined) return
        const message = toPubSubMessage(event.message, event.messageId, event.receivedFrom)
        for (const listener of listeners) listener(message)
        return
      }
      case 'published': {
        const waiting = this.#publishes.get(event.messageId)
        const resolve = waiting?.shift()
        if (waiting?.length === 0) this.#publishes.delete(event.messageId)
        resolve?.({ messageId: hex(messageIdToBytes(event.messageId)), recipients: event.recipients })
        return
      }
      case 'peer-exchange':
        for (const { peer, signedPeerRecord } of event.peers) void this.#exchanged(peer, signedPeerRecord)
        return
    }
  }

  /** The signature (StrictSign), then the topic's validator. */
  async #validate(message: GossipMessage, receivedFrom: PeerId, messageId: MessageId): Promise<ValidationResult> {
    if (this.#settings.signaturePolicy === 'strict-sign') {
      const refusal = await this.#checkSignature(message)
      if (refusal !== undefined) {
        this.validation[refusal]++
        return 'reject'
      }
    }
    const validator = this.#validators.get(message.topic)
    if (validator === undefined) {
      this.validation.accepted++
      return 'accept'
    }
    let result: ValidationResult
    try {
      result = await validator(toPubSubMessage(message, messageId, receivedFrom))
    } catch {
      // A validator that throws has no verdict: the message is dropped, its sender not blamed.
      this.validation.validatorFailed++
      return 'ignore'
    }
    if (result === 'reject') this.validation.validatorRejected++
    else if (result === 'ignore') this.validation.validatorIgnored++
    else this.validation.accepted++
    return result
  }

  async #checkSignature(message: GossipMessage): Promise<'invalidSignature' | 'missingKey' | undefined> {
    let publicKey: PublicKey | undefined
    try {
      const source = peerIdFromString(message.from!)
      if (message.key === undefined) {
        publicKey = source.publicKey
      } else {
        publicKey = publicKeyFromProtobuf(message.key)
        if (!peerIdFromPublicKey(publicKey).equals(source)) return 'missingKey'
      }
    } catch {
      return 'missingKey'
    }
    if (publicKey === undefined) return 'missingKey'
    try {
      return (await publicKey.verify(gossipSigningBytes(message), message.signature!)) ? undefined : 'invalidSignature'
    } catch {
      return 'invalidSignature'
    }
  }

  /** A peer offered by peer exchange: dialled with the addresses of its signed record, if the record is genuine. */
  async #exchanged(peer: PeerId, signedPeerRecord: Uint8Array | undefined): Promise<void> {
    let addresses: string[] = []
    if (signedPeerRecord !== undefined) {
      try {
        const envelope = await RecordEnvelope.openAndCertify(signedPeerRecord, PeerRecord.DOMAIN)
        const record = PeerRecord.createFromProtobuf(envelope.payload)
        if (!peerIdFromPublicKey(envelope.publicKey).equals(peerIdFromString(peer)) || !record.peerId.equals(peerIdFromString(peer))) throw new Error('record of another peer')
        addresses = record.multiaddrs.map(String)
      } catch {
        this.validation.exchangedRecordsInvalid++
        return
      }
    }
    if (!this.#stopped) this.#driver!.input({ type: 'peer-discovered', peer, addresses, source: 'exchange' })
  }

  readonly #onIdentify = (event: CustomEvent<{ peerId: { toString(): string } }>): void => {
    const peer = asPeerId(event.detail.peerId.toString())
    void this.#host.peerStore.get(peerIdFromString(peer)).then((record) => {
      if (record.peerRecordEnvelope === undefined || this.#stopped) return
      if (this.#peerRecords.size >= PEER_RECORDS_CACHED_MAX) this.#peerRecords.clear()
      this.#peerRecords.set(peer, record.peerRecordEnvelope)
    }, () => {
      // Not in the peer store any more: it left.
    })
  }

  readonly #onDisconnect = (event: CustomEvent<{ toString(): string }>): void => {
    this.#peerRecords.delete(asPeerId(event.detail.toString()))
  }
}

function checkTopic(topic: string): void {
  const bytes = new TextEncoder().encode(topic).byteLength
  if (bytes === 0 || bytes > GOSSIP_LIMITS.topicBytesMax) throw new ShoalError('INVALID_ARGUMENT', `a topic is 1 to ${GOSSIP_LIMITS.topicBytesMax} bytes of UTF-8 (got ${bytes})`)
}

function offline(): ShoalError {
  return new ShoalError('OFFLINE', 'pub/sub has stopped')
}

/**
 * The message id under StrictNoSign, where there is no source and seqno to build the
 * spec's default from: the SHA-256 of the data, as @libp2p/gossipsub computes it.
 */
function contentMessageId(message: GossipMessage): MessageId {
  return messageIdFromBytes(sha256(message.data))
}

function toPubSubMessage(message: GossipMessage, messageId: MessageId, receivedFrom: PeerId): PubSubMessage {
  return { topic: message.topic, data: message.data, from: message.from, messageId: hex(messageIdToBytes(messageId)), receivedFrom }
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex')
}
