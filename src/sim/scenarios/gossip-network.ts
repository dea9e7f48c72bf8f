/**
 * A simulated GossipSub network for the gossip scenarios and tests: N peers running the
 * real GossipCore on one topic over a wide-area latency model, each dialling a few random
 * peers as it joins (as membership would give it), with validation answered by the
 * scenario after a configurable delay, and every delivery recorded.
 *
 * Peer ids are p<index>. Messages are "signed" with a stand-in: the simulator has no keys,
 * and verifying 10 million Ed25519 signatures would cost more than the rest of the run; a
 * message whose signature starts with INVALID_SIGNATURE_MARK is what a bad signature is,
 * and the validator rejects it.
 */
import { DEFAULT_GOSSIP_PARAMS, type GossipConfig, type GossipParams } from '../../core/gossip/config.ts'
import { GossipCore, type GossipAction, type GossipEvent, type GossipInput } from '../../core/gossip/gossip.ts'
import type { GossipMessage, GossipRpc, MessageId } from '../../core/gossip/messages.ts'
import { Prng } from '../../core/prng.ts'
import type { Millis } from '../../core/sans-io.ts'
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
  /** Random peers each newcomer dials (the rest of its connections are dialled to it). */
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
  gossip: {},
}

/** Where a message reached, and when. */
export interface Delivery {
  publisher: number
  publishedAtMs: Millis
  /** Virtual time of first delivery to each peer's application; NaN where it never arrived. */
  deliveredAtMs: Float64Array
}

export interface GossipRun {
  t: Scenario<GossipRpc>
  knobs: GossipKnobs
  deliveries: Map<MessageId, Delivery>
  /** Each honest peer's core, by index (undefined for adversaries and peers offline). */
  core(index: number): GossipCore | undefined
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
  /** Which peers subscribe when they join (default: all). */
  subscribes?(index: number): boolean
}

/** Sim message ids: the publisher's name and its seqno, as the spec's default id is. */
function simMessageId(message: GossipMessage): MessageId | undefined {
  if (message.from === undefined || message.seqno === undefined) return undefined
  let id: string = message.from
  for (const byte of message.seqno) id += String.fromCharCode(byte)
  return id as MessageId
}

export function gossipNetwork(options: GossipNetworkOptions): GossipRun {
  const knobs: GossipKnobs = { ...GOSSIP_KNOBS, ...options.knobs }
  const gossipParams: GossipParams = { ...DEFAULT_GOSSIP_PARAMS, ...knobs.gossip }
  const deliveries = new Map<MessageId, Delivery>()
  const cores: Array<GossipCore | undefined> = new Array(knobs.peers)
  const seqnos = new Float64Array(knobs.peers)
  const sharedData = new Map<number, Uint8Array>()
  const validSignature = new Uint8Array(SIGNATURE_BYTES)
  const invalidSignature = new Uint8Array(SIGNATURE_BYTES).fill(INVALID_SIGNATURE_MARK)
  let t: Scenario<GossipRpc> | undefined
  const dialPrng = Prng.fromSeed(options.seed).fork('gossip:dials')

  const onEvent = (index: number, event: GossipEvent, now: Millis): void => {
    if (event.type !== 'message') return
    const delivery = deliveries.get(event.messageId)
    if (delivery !== undefined && Number.isNaN(delivery.deliveredAtMs[index]!)) delivery.deliveredAtMs[index] = now
  }

  t = scenario<GossipRpc>({
    name: options.name,
    peerCount: knobs.peers,
    seed: options.seed,
    sizeOf: gossipRpcSize,
    network: {
      latency: knobs.latency,
      handshakeRoundTripCount: knobs.handshakeRoundTripCount,
      uploadBytesPerSecond: knobs.uploadBytesPerSecond,
      downloadBytesPerSecond: knobs.downloadBytesPerSecond,
    },
    churn: { arrival: { kind: 'poisson', windowMs: (knobs.peers / knobs.arrivalsPerSecond) * 1000 }, crashFraction: 0 },
    knobs: { ...knobs, gossip: undefined, ...knobs.gossip },
    createCore: (context: PeerContext): SimCore<GossipRpc> => {
      const config: GossipConfig = { ...gossipParams, self: context.id, messageIdOf: simMessageId }
      const honest = new GossipCore(config, context.prng)
      const adversary = options.adversary?.(context, honest)
      cores[context.index] = adversary === undefined ? honest : undefined
      return adversary ?? (honest as unknown as SimCore<GossipRpc>)
    },
    onJoin: (index) => {
      const sim = t!.sim
      if (options.subscribes?.(index) ?? true) sim.input(index, { type: 'subscribe', topic: GOSSIP_TOPIC } as unknown as SimInput<GossipRpc>)
      // Dial random peers already online, as membership's bootstrap and exchange would find them.
      for (let attempt = 0, dialled = 0; attempt < knobs.dialsPerPeer * 4 && dialled < knobs.dialsPerPeer; attempt++) {
        const other = dialPrng.int(knobs.peers)
        if (other === index || !sim.isOnline(other)) continue
        sim.input(index, { type: 'peer-discovered', peer: sim.idOf(other), addresses: [], source: 'bootstrap' })
        dialled++
      }
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
    core: (index) => (scenarioRef.sim.isOnline(index) ? cores[index] : undefined),
    publish(index, bytes, publishOptions = {}) {
      let data = sharedData.get(bytes)
      if (data === undefined) sharedData.set(bytes, data = new Uint8Array(bytes))
      const seqno = new Uint8Array(8)
      new DataView(seqno.buffer).setFloat64(0, ++seqnos[index]!)
      const message: GossipMessage = {
        topic: GOSSIP_TOPIC,
        data,
        from: scenarioRef.sim.idOf(index),
        seqno,
        signature: publishOptions.invalid === true ? invalidSignature : validSignature,
      }
      const messageId = simMessageId(message)!
      deliveries.set(messageId, { publisher: index, publishedAtMs: scenarioRef.now, deliveredAtMs: new Float64Array(knobs.peers).fill(Number.NaN) })
      scenarioRef.sim.input(index, { type: 'publish', message } as unknown as SimInput<GossipRpc>)
      return messageId
    },
    input: (index, input) => scenarioRef.sim.input(index, input as unknown as SimInput<GossipRpc>),
  }
}
