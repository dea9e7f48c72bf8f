/**
 * A simulated GossipSub network for the gossip scenarios and tests: N peers running the
 * real GossipCore on one topic over a wide-area latency model, each dialling a few random
 * peers as it starts (as membership would give it), with validation answered by the
 * scenario after a configurable delay, and every delivery recorded.
 *
 * Peer ids are p<index>. There is no bootstrap peer: a newcomer dials random peers that
 * have started, so no peer is a hub every other is connected to. A peer starts (subscribes
 * and dials) when it joins, or later when the scenario says (a Sybil that arrives at a
 * chosen instant): until then it is online but nobody knows of it. Peer exchange offered
 * in PRUNEs is not followed (the scenario's dials are the only ones).
 *
 * Messages are "signed" with a stand-in: the simulator has no keys, and verifying 10
 * million Ed25519 signatures would cost more than the rest of the run; a message whose
 * signature starts with INVALID_SIGNATURE_MARK is what a bad signature is, and the
 * validator rejects it.
 *
 * Traffic is metered where the simulator sizes each RPC it puts on a connection: RPCs
 * with messages and the control parts (subscriptions, IHAVE, IWANT, GRAFT, PRUNE,
 * IDONTWANT) are tallied apart, for all peers, adversaries included.
 */
import { DEFAULT_GOSSIP_PARAMS, type GossipConfig, type GossipParams } from '../../core/gossip/config.ts'
import { GossipCore, type GossipAction, type GossipEvent, type GossipInput } from '../../core/gossip/gossip.ts'
import type { GossipMessage, GossipRpc, MessageId } from '../../core/gossip/messages.ts'
import { Prng } from '../../core/prng.ts'
import type { Millis, PeerId } from '../../core/sans-io.ts'
import { gossipRpcSize } from '../../wire/gossip.ts'
import type { DurationDistribution } from '../distributions.ts'
import { scenario, type Scenario } from '../scenario.ts'
import type { PeerContext, SimCore, SimInput } from '../simulator.ts'
import type { ScenarioRunOptions } from './types.ts'
import { WIDE_AREA_LATENCY } from './dht.ts'

export const GOSSIP_TOPIC = 'shoal/sim'
export const INVALID_SIGNATURE_MARK = 0xba
const SIGNATURE_BYTES = 64

export interface GossipKnobs {
  peers: number
  /** Random started peers each peer dials as it starts (the rest of its connections are dialled to it). */
  dialsPerPeer: number
  /** Newcomers per second while the network forms. */
  arrivalsPerSecond: number
  /** Quiet time after the last arrival, for meshes to settle, before anything is published. */
  settleMs: number
  latency: DurationDistribution
  handshakeRoundTripCount: number
  /** Per-peer capacity; Infinity leaves only latency. */
  uploadBytesPerSecond: number
  downloadBytesPerSecond: number
  /** Time from a message's arrival to the validator's verdict (signature check and rules). */
  validationDelayMs: number
  /**
   * Measure the time spent computing scores (GossipCore.scoreComputeMs) with the wall
   * clock. Only a measurement: nothing the simulation does depends on it.
   */
  measureScoreTime: boolean
  /** GossipSub parameters over the defaults (scoring: undefined turns scoring off). */
  gossip: Partial<GossipParams>
}

/** The network: 10,000 peers; each dials 8, so about 16 connections each. */
export const GOSSIP_KNOBS: GossipKnobs = {
  peers: 10_000,
  dialsPerPeer: 8,
  arrivalsPerSecond: 200,
  settleMs: 30_000,
  latency: WIDE_AREA_LATENCY,
  handshakeRoundTripCount: 2,
  uploadBytesPerSecond: Infinity,
  downloadBytesPerSecond: Infinity,
  validationDelayMs: 1,
  measureScoreTime: false,
  gossip: {},
}

/** Where a message reached, and when. */
export interface Delivery {
  publisher: number
  publishedAtMs: Millis
  /** Virtual time of first delivery to each peer's application; NaN where it never arrived. */
  deliveredAtMs: Float64Array
}

/** RPCs put on connections by every peer, and their encoded bytes (frame overhead not included). */
export interface GossipTraffic {
  /** RPCs carrying messages, and the bytes of those RPCs. */
  messageRpcs: number
  messageBytes: number
  /** RPCs and RPC parts that are not messages: subscriptions and control. */
  controlRpcs: number
  controlBytes: number
  /** Copies of messages with a bad signature, whoever sent them. */
  invalidMessageCopies: number
}

export interface GossipRun {
  t: Scenario<GossipRpc>
  knobs: GossipKnobs
  deliveries: Map<MessageId, Delivery>
  /** Running totals since the start; subtract a copy to meter a window. */
  traffic: GossipTraffic
  /** Each honest peer's core, by index (undefined for adversaries and peers offline). */
  core(index: number): GossipCore | undefined
  /** Whether the peer has started (subscribed and dialled); only started peers are dialled. */
  started(index: number): boolean
  /** Publishes `bytes` of data from `index` now; returns the message id. */
  publish(index: number, bytes: number, options?: { invalid?: boolean }): MessageId
  /** Gives a peer's core an input now (subscribe, unsubscribe, publish a crafted message). */
  input(index: number, input: GossipInput): void
}

export interface GossipNetworkOptions {
  seed: ScenarioRunOptions['seed']
  knobs: Partial<GossipKnobs>
  name: string
  /** Builds a non-honest core for some peers; undefined keeps the honest one. */
  adversary?(context: PeerContext, honest: GossipCore): SimCore<GossipRpc> | undefined
  /** Which peers subscribe when they start (default: all). */
  subscribes?(index: number): boolean
  /** When a peer starts, if later than its join (default: at its join). */
  startAtMs?(index: number): number | undefined
  /** How many random started peers it dials as it starts (default: knobs.dialsPerPeer). */
  dialsOf?(index: number): number
  /** Which started peers it may pick at random (default: any). */
  mayDial?(index: number, other: number): boolean
  /** Peers it dials as it starts, besides the random ones (an eclipse's target). */
  targetsOf?(index: number): readonly number[]
}

/**
 * Ids already computed, by message object. Every copy of a message in the simulator is the
 * same object, and handing every core the same id string, whose hash V8 keeps, saves
 * building and hashing a fresh string for every copy received (a sixth of a run's time).
 */
const simMessageIds = new WeakMap<GossipMessage, MessageId>()

/** Sim message ids: the publisher's name and its seqno, as the spec's default id is. */
export function simMessageId(message: GossipMessage): MessageId | undefined {
  const known = simMessageIds.get(message)
  if (known !== undefined) return known
  if (message.from === undefined || message.seqno === undefined) return undefined
  let id: string = message.from
  for (const byte of message.seqno) id += String.fromCharCode(byte)
  simMessageIds.set(message, id as MessageId)
  return id as MessageId
}

/** A message of the sim's topic from `from`, signed with the stand-in (or a bad one). */
export function simMessage(from: PeerId, seqno: number, data: Uint8Array, invalid: boolean): GossipMessage {
  const seqnoBytes = new Uint8Array(8)
  new DataView(seqnoBytes.buffer).setFloat64(0, seqno)
  return { topic: GOSSIP_TOPIC, data, from, seqno: seqnoBytes, signature: invalid ? INVALID_SIGNATURE : VALID_SIGNATURE }
}

const VALID_SIGNATURE = new Uint8Array(SIGNATURE_BYTES)
const INVALID_SIGNATURE = new Uint8Array(SIGNATURE_BYTES).fill(INVALID_SIGNATURE_MARK)

/** Random picks per dial wanted before giving up on finding peers `mayDial` allows. */
const DIAL_PICKS_PER_DIAL_MAX = 32

export function gossipNetwork(options: GossipNetworkOptions): GossipRun {
  const knobs: GossipKnobs = { ...GOSSIP_KNOBS, ...options.knobs }
  const gossipParams: GossipParams = { ...DEFAULT_GOSSIP_PARAMS, ...knobs.gossip }
  const deliveries = new Map<MessageId, Delivery>()
  const cores: Array<GossipCore | undefined> = new Array(knobs.peers)
  const seqnos = new Float64Array(knobs.peers)
  const sharedData = new Map<number, Uint8Array>()
  const traffic: GossipTraffic = { messageRpcs: 0, messageBytes: 0, controlRpcs: 0, controlBytes: 0, invalidMessageCopies: 0 }
  const startedFlags = new Uint8Array(knobs.peers)
  const startedPeers: number[] = []
  let t: Scenario<GossipRpc> | undefined
  const dialPrng = Prng.fromSeed(options.seed).fork('gossip:dials')
  const scoreClock = knobs.measureScoreTime ? () => performance.now() : undefined

  const onEvent = (index: number, event: GossipEvent, now: Millis): void => {
    if (event.type !== 'message') return
    const delivery = deliveries.get(event.messageId)
    if (delivery !== undefined && Number.isNaN(delivery.deliveredAtMs[index]!)) delivery.deliveredAtMs[index] = now
  }

  // Called for every RPC put on a connection: the cheapest place to meter all of them.
  const sizeOf = (rpc: GossipRpc): number => {
    const size = gossipRpcSize(rpc)
    if (rpc.messages.length === 0) {
      traffic.controlRpcs++
      traffic.controlBytes += size
      return size
    }
    traffic.messageRpcs++
    for (const message of rpc.messages) if (message.signature?.[0] === INVALID_SIGNATURE_MARK) traffic.invalidMessageCopies++
    if (rpc.subscriptions.length === 0 && rpc.control === undefined) {
      traffic.messageBytes += size
      return size
    }
    const controlSize = gossipRpcSize({ subscriptions: rpc.subscriptions, messages: [], control: rpc.control })
    traffic.controlRpcs++
    traffic.controlBytes += controlSize
    traffic.messageBytes += size - controlSize
    return size
  }

  const start = (index: number): void => {
    const sim = t!.sim
    if (startedFlags[index] === 1 || !sim.isOnline(index)) return
    if (options.subscribes?.(index) ?? true) sim.input(index, { type: 'subscribe', topic: GOSSIP_TOPIC } as unknown as SimInput<GossipRpc>)
    const chosen = new Set<number>(options.targetsOf?.(index) ?? [])
    chosen.delete(index)
    // Random peers that have started, as membership's bootstrap and exchange would find them.
    const wanted = chosen.size + Math.min(options.dialsOf?.(index) ?? knobs.dialsPerPeer, startedPeers.length)
    for (let picks = 0; chosen.size < wanted && picks < wanted * DIAL_PICKS_PER_DIAL_MAX; picks++) {
      const other = startedPeers[dialPrng.int(startedPeers.length)]!
      if (other === index || !sim.isOnline(other) || (options.mayDial !== undefined && !options.mayDial(index, other))) continue
      chosen.add(other)
    }
    for (const other of chosen) sim.input(index, { type: 'peer-discovered', peer: sim.idOf(other), addresses: [], source: 'bootstrap' })
    startedFlags[index] = 1
    startedPeers.push(index)
  }

  t = scenario<GossipRpc>({
    name: options.name,
    peerCount: knobs.peers,
    seed: options.seed,
    sizeOf,
    network: {
      latency: knobs.latency,
      handshakeRoundTripCount: knobs.handshakeRoundTripCount,
      uploadBytesPerSecond: knobs.uploadBytesPerSecond,
      downloadBytesPerSecond: knobs.downloadBytesPerSecond,
    },
    bootstrapPeers: [],
    churn: { arrival: { kind: 'poisson', windowMs: (knobs.peers / knobs.arrivalsPerSecond) * 1000 }, crashFraction: 0 },
    knobs: { ...knobs, gossip: undefined, ...knobs.gossip },
    createCore: (context: PeerContext): SimCore<GossipRpc> => {
      const config: GossipConfig = { ...gossipParams, self: context.id, messageIdOf: simMessageId, scoreClock }
      const honest = new GossipCore(config, context.prng)
      const adversary = options.adversary?.(context, honest)
      cores[context.index] = adversary === undefined ? honest : undefined
      return adversary ?? (honest as unknown as SimCore<GossipRpc>)
    },
    onJoin: (index, now) => {
      const startAt = options.startAtMs?.(index)
      if (startAt === undefined || startAt <= now) start(index)
      else t!.sim.at(startAt, () => start(index))
    },
    onAction: (index, action, now) => {
      const gossipAction = action as GossipAction
      if (gossipAction.type === 'emit') return onEvent(index, gossipAction.event, now)
      if (gossipAction.type !== 'validate') return
      const verdict = gossipAction.message.signature?.[0] === INVALID_SIGNATURE_MARK ? 'reject' : 'accept'
      const id = gossipAction.id
      t!.sim.at(now + knobs.validationDelayMs, () => t!.sim.input(index, { type: 'validation', id, result: verdict } as unknown as SimInput<GossipRpc>))
    },
  })

  const scenarioRef = t
  return {
    t: scenarioRef,
    knobs,
    deliveries,
    traffic,
    core: (index) => (scenarioRef.sim.isOnline(index) ? cores[index] : undefined),
    started: (index) => startedFlags[index] === 1,
    publish(index, bytes, publishOptions = {}) {
      let data = sharedData.get(bytes)
      if (data === undefined) sharedData.set(bytes, data = new Uint8Array(bytes))
      const message = simMessage(scenarioRef.sim.idOf(index), ++seqnos[index]!, data, publishOptions.invalid === true)
      const messageId = simMessageId(message)!
      deliveries.set(messageId, { publisher: index, publishedAtMs: scenarioRef.now, deliveredAtMs: new Float64Array(knobs.peers).fill(Number.NaN) })
      scenarioRef.sim.input(index, { type: 'publish', message } as unknown as SimInput<GossipRpc>)
      return messageId
    },
    input: (index, input) => scenarioRef.sim.input(index, input as unknown as SimInput<GossipRpc>),
  }
}
