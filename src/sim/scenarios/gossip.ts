/**
 * The GossipSub scenarios, over gossipNetwork (N peers of the real GossipCore on one topic,
 * wide-area latency):
 *
 *   gossip-spread     10,000 peers; 1,000 small messages from random peers, 5 a second,
 *                     once meshes have settled: delivery, latency against the shortest-path
 *                     bound of the same graph, copies per peer, control bytes, score CPU
 *   gossip-idontwant  the same network twice, v1.2 (IDONTWANT) and v1.1, with 64 KiB
 *                     messages over 50 Mbit/s links: duplicate bytes per message, and the cut
 *   gossip-attack     the attacks of the GossipSub v1.1 evaluation (Vyzovitis et al., 2020):
 *                     covert flash, eclipse of one target, spam of invalid messages, cold
 *                     boot; each with scoring on (P3 calibrated to the message rate) and off
 *
 * Each run is one seeded simulation; `shoal sim <name> --seed <n>` replays it.
 */
import type { TopicScoreParams } from '../../core/gossip/score.ts'
import { DEFAULT_SCORE_PARAMS, DEFAULT_SCORE_THRESHOLDS } from '../../core/gossip/score.ts'
import type { GossipParams } from '../../core/gossip/config.ts'
import { DEFAULT_GOSSIP_PARAMS } from '../../core/gossip/config.ts'
import type { GossipCore } from '../../core/gossip/gossip.ts'
import type { GossipRpc, MessageId } from '../../core/gossip/messages.ts'
import { Prng } from '../../core/prng.ts'
import type { PeerId } from '../../core/sans-io.ts'
import { EclipseSybil, SilentSybil, Spammer } from '../adversaries/gossip-adversaries.ts'
import { liveLinkGraph, shortestDelaysMs, type LinkGraph } from '../metrics.ts'
import type { SimCore, Simulator } from '../simulator.ts'
import { GOSSIP_KNOBS, GOSSIP_TOPIC, gossipNetwork, type GossipKnobs, type GossipRun, type GossipTraffic } from './gossip-network.ts'
import { combinedRuns, type Figure, type NamedScenario, type ScenarioReport, type ScenarioRunOptions } from './types.ts'

// ---- measuring ----------------------------------------------------------------------------

function round(value: number | undefined, digits = 0): number | null {
  return value === undefined || !Number.isFinite(value) ? null : Number(value.toFixed(digits))
}

/** The q-quantile by nearest rank of values sorted ascending; undefined for none. */
function quantileOfSorted(sorted: Float32Array | Float64Array, q: number): number | undefined {
  if (sorted.length === 0) return undefined
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

/** Counters of every honest core, summed. */
interface CounterTotals {
  messagesReceived: number
  messagesDuplicate: number
  messagesRejected: number
  rpcsGraylisted: number
  iwantServed: number
  idontwantSent: number
  forwardsSuppressed: number
  scoreComputeMs: number
}

function counterTotals(run: GossipRun, include: (index: number) => boolean = () => true): CounterTotals {
  const totals: CounterTotals = {
    messagesReceived: 0, messagesDuplicate: 0, messagesRejected: 0, rpcsGraylisted: 0, iwantServed: 0,
    idontwantSent: 0, forwardsSuppressed: 0, scoreComputeMs: 0,
  }
  for (let index = 0; index < run.knobs.peers; index++) {
    const core = run.core(index)
    if (core === undefined || !include(index)) continue
    const counters = core.counters
    totals.messagesReceived += counters.messagesReceived
    totals.messagesDuplicate += counters.messagesDuplicate
    totals.messagesRejected += counters.messagesRejected
    totals.rpcsGraylisted += counters.rpcsGraylisted
    totals.iwantServed += counters.iwantServed
    totals.idontwantSent += counters.idontwantSent
    totals.forwardsSuppressed += counters.forwardsSuppressed
    totals.scoreComputeMs += core.scoreComputeMs
  }
  return totals
}

function difference<T extends object>(after: T, before: T): T {
  const result = { ...after } as Record<string, number>
  for (const [key, value] of Object.entries(before)) result[key] = (result[key] ?? 0) - (value as number)
  return result as T
}

/** Mesh sizes of the honest cores online, and how many of their mesh peers are adversaries. */
function meshCensus(run: GossipRun, isAdversary: (index: number) => boolean = () => false): { min: number; mean: number; max: number; adversaryShare: number } {
  let min = Infinity
  let max = 0
  let total = 0
  let counted = 0
  let adversarial = 0
  for (let index = 0; index < run.knobs.peers; index++) {
    const core = run.core(index)
    if (core === undefined || !run.started(index)) continue
    const mesh = core.meshOf(GOSSIP_TOPIC)
    min = Math.min(min, mesh.length)
    max = Math.max(max, mesh.length)
    total += mesh.length
    counted++
    for (const peer of mesh) if (isAdversary(run.t.sim.indexOf(peer)!)) adversarial++
  }
  return { min: counted === 0 ? 0 : min, mean: counted === 0 ? 0 : total / counted, max, adversaryShare: total === 0 ? 0 : adversarial / total }
}

/**
 * Publishes `count` messages of `bytes` from random publishers, `perSecond` on average, from `startMs`,
 * and computes each message's shortest-path bound at its publication when `bound` is set.
 * Returns the ids in order, the bounds, and the time of the last publication.
 */
function schedulePublications(run: GossipRun, options: {
  count: number
  /** No publication at or after this (default: none). */
  untilMs?: number
  bytes: number
  perSecond: number
  startMs: number
  /** A publisher, or undefined when there is none yet (the publication is skipped). */
  publisher: (prng: Prng) => number | undefined
  bound: boolean
  /** Peers the bound's paths may pass through (default: all). */
  through?: (index: number) => boolean
}): { ids: MessageId[]; bounds: Map<MessageId, Float32Array>; lastMs: number } {
  const { t } = run
  const prng = t.sim.prng('gossip:publishers')
  const ids: MessageId[] = []
  const bounds = new Map<MessageId, Float32Array>()
  // Poisson arrivals: publications at a fixed period would keep one phase against every
  // peer's heartbeat, and each message would wait the same time for gossip.
  const timesPrng = t.sim.prng('gossip:publication-times')
  const gapMeanMs = 1_000 / options.perSecond
  let at = options.startMs
  let graph: LinkGraph | undefined
  let graphKey = ''
  const delays = new Float64Array(run.knobs.peers)
  for (let index = 0; index < options.count; index++) {
    const next = index === 0 ? at : at + timesPrng.exponential(gapMeanMs)
    if (next >= (options.untilMs ?? Infinity)) break
    at = next
    t.at(at, () => {
      const publisher = options.publisher(prng)
      if (publisher === undefined) return
      const id = run.publish(publisher, options.bytes)
      ids.push(id)
      if (!options.bound) return
      // The live graph only changes when a connection opens or closes.
      const counters = t.sim.counters
      const key = `${counters.dialsSucceeded}/${counters.disconnects}/${counters.connectionsEvicted}/${t.sim.onlineCount}`
      if (graph === undefined || key !== graphKey) {
        graph = liveLinkGraph(t.sim as unknown as Simulator<unknown>)
        graphKey = key
      }
      // Every hop validates before it forwards (or delivers), so each costs its latency and the validation delay.
      shortestDelaysMs(graph, publisher, run.knobs.validationDelayMs, delays, options.through)
      bounds.set(id, Float32Array.from(delays))
    })
  }
  return { ids, bounds, lastMs: at }
}

interface DeliveryFigures {
  pairs: number
  delivered: number
  latencies: Float32Array
  /** Shortest-path bounds and latency / bound of the delivered pairs, when bounds were given. */
  bounds: Float32Array | undefined
  stretches: Float32Array | undefined
}

/** Deliveries of `ids` to the receivers `receives` counts for each (never the publisher). */
function collectDeliveries(run: GossipRun, ids: readonly MessageId[], receives: (index: number, id: MessageId) => boolean, bounds?: Map<MessageId, Float32Array>): DeliveryFigures {
  let pairs = 0
  for (const id of ids) {
    const { publisher } = run.deliveries.get(id)!
    for (let index = 0; index < run.knobs.peers; index++) if (index !== publisher && receives(index, id)) pairs++
  }
  const latencies = new Float32Array(pairs)
  const boundValues = bounds === undefined ? undefined : new Float32Array(pairs)
  const stretches = bounds === undefined ? undefined : new Float32Array(pairs)
  let delivered = 0
  for (const id of ids) {
    const { publisher, publishedAtMs, deliveredAtMs } = run.deliveries.get(id)!
    const bound = bounds?.get(id)
    for (let index = 0; index < run.knobs.peers; index++) {
      if (index === publisher || !receives(index, id)) continue
      const at = deliveredAtMs[index]!
      if (Number.isNaN(at)) continue
      const latency = at - publishedAtMs
      latencies[delivered] = latency
      if (bound !== undefined) {
        boundValues![delivered] = bound[index]!
        stretches![delivered] = latency / bound[index]!
      }
      delivered++
    }
  }
  const sortedPrefix = (values: Float32Array | undefined) => values?.subarray(0, delivered).sort()
  return { pairs, delivered, latencies: sortedPrefix(latencies)!, bounds: sortedPrefix(boundValues), stretches: sortedPrefix(stretches) }
}

// ---- gossip-spread and gossip-idontwant -------------------------------------------------------

export interface SpreadKnobs {
  messages: number
  messageBytes: number
  messagesPerSecond: number
  /** Time after the last publication for late copies (IWANT after IHAVE) to arrive. */
  drainMs: number
  /** Compute each message's shortest-path bound (Dijkstra over the live graph) at its publication. */
  bound: boolean
  network: Partial<GossipKnobs>
}

export const SPREAD_KNOBS: SpreadKnobs = {
  messages: 1_000,
  messageBytes: 256,
  messagesPerSecond: 5,
  drainMs: 10_000,
  bound: true,
  network: {},
}

/** What one spread run measured, with the run for tests to inspect further. */
export interface SpreadOutcome {
  run: GossipRun
  figures: Record<string, Figure>
}

/** Forms the network, lets it settle, publishes `messages` from random peers and measures. */
export function runSpread(seed: ScenarioRunOptions['seed'], peers: number, overrides: Partial<SpreadKnobs>, name: string): SpreadOutcome {
  const startedMs = performance.now()
  const knobs: SpreadKnobs = { ...SPREAD_KNOBS, ...overrides }
  const run = gossipNetwork({ seed, name, knobs: { measureScoreTime: true, ...knobs.network, peers } })
  const params: GossipParams = { ...DEFAULT_GOSSIP_PARAMS, ...run.knobs.gossip }
  const formedMs = (peers / run.knobs.arrivalsPerSecond) * 1000 + run.knobs.settleMs
  run.t.runTo(formedMs)
  const formationWallMs = performance.now() - startedMs
  const meshSettled = meshCensus(run)
  const countersBefore = counterTotals(run)
  const trafficBefore: GossipTraffic = { ...run.traffic }
  const { ids, bounds, lastMs } = schedulePublications(run, {
    count: knobs.messages,
    bytes: knobs.messageBytes,
    perSecond: knobs.messagesPerSecond,
    startMs: formedMs,
    publisher: (prng) => {
      for (;;) {
        const index = prng.int(peers)
        if (run.core(index) !== undefined) return index
      }
    },
    bound: knobs.bound,
  })
  run.t.runTo(lastMs + knobs.drainMs)
  const counters = difference(counterTotals(run), countersBefore)
  const traffic = difference({ ...run.traffic }, trafficBefore)
  const mesh = meshCensus(run)
  const deliveries = collectDeliveries(run, ids, (index) => run.core(index) !== undefined, knobs.bound ? bounds : undefined)
  const copies = peers * ids.length
  const latencyP50 = quantileOfSorted(deliveries.latencies, 0.5)
  const latencyP99 = quantileOfSorted(deliveries.latencies, 0.99)
  const boundP50 = deliveries.bounds === undefined ? undefined : quantileOfSorted(deliveries.bounds, 0.5)
  const boundP99 = deliveries.bounds === undefined ? undefined : quantileOfSorted(deliveries.bounds, 0.99)
  const deliveryRatio = deliveries.delivered / Math.max(1, deliveries.pairs)
  const copiesPerPeer = counters.messagesReceived / copies
  const messageRpcBytes = traffic.messageBytes / Math.max(1, traffic.messageRpcs)
  const wallMs = performance.now() - startedMs
  const figures: Record<string, Figure> = {
    messages: ids.length,
    messageBytes: knobs.messageBytes,
    messagesPerSecond: knobs.messagesPerSecond,
    deliveryRatio: round(deliveryRatio, 6),
    undeliveredPairs: deliveries.pairs - deliveries.delivered,
    latencyP50Ms: round(latencyP50, 1),
    latencyP99Ms: round(latencyP99, 1),
    latencyMaxMs: round(deliveries.latencies.at(-1), 1),
  }
  if (knobs.bound) {
    Object.assign(figures, {
      boundP50Ms: round(boundP50, 1),
      boundP99Ms: round(boundP99, 1),
      p99OverBoundP99: round(latencyP99! / boundP99!, 3),
      /** Below 1 would mean a message beat the shortest path: the bound would be wrong. */
      stretchMin: round(deliveries.stretches![0], 3),
      stretchP50: round(quantileOfSorted(deliveries.stretches!, 0.5), 3),
      stretchP99: round(quantileOfSorted(deliveries.stretches!, 0.99), 3),
      p99WithinBound: latencyP99 !== undefined && boundP99 !== undefined && latencyP99 <= 1.5 * boundP99 + params.heartbeatIntervalMs,
    })
  }
  Object.assign(figures, {
    deliveryAtLeast999: deliveryRatio >= 0.999,
    copiesPerPeerPerMessage: round(copiesPerPeer, 3),
    copiesAtMostD: copiesPerPeer <= params.D,
    duplicatesPerPeerPerMessage: round(counters.messagesDuplicate / copies, 3),
    duplicateBytesPerMessage: Math.round((counters.messagesDuplicate * messageRpcBytes) / ids.length),
    messageBytesPerMessage: Math.round(traffic.messageBytes / ids.length),
    controlBytesPerMessage: Math.round(traffic.controlBytes / ids.length),
    controlRpcsPerMessage: round(traffic.controlRpcs / ids.length, 1),
    iwantServedPerMessage: round(counters.iwantServed / ids.length, 2),
    idontwantSentPerMessage: round(counters.idontwantSent / ids.length, 1),
    forwardsSuppressedPerMessage: round(counters.forwardsSuppressed / ids.length, 1),
    meshDegreeMinSettled: meshSettled.min,
    meshDegreeMeanSettled: round(meshSettled.mean, 2),
    meshDegreeMaxSettled: meshSettled.max,
    meshDegreeMin: mesh.min,
    meshDegreeMean: round(mesh.mean, 2),
    meshDegreeMax: mesh.max,
    scoreComputeMs: run.knobs.measureScoreTime ? Math.round(counterTotals(run).scoreComputeMs) : null,
    scoreCpuPercent: run.knobs.measureScoreTime ? round((100 * counterTotals(run).scoreComputeMs) / wallMs, 2) : null,
    formationWallMs: Math.round(formationWallMs),
    wallMs: Math.round(wallMs),
  })
  return { run, figures }
}

export function runGossipSpread(options: ScenarioRunOptions, overrides: Partial<SpreadKnobs> = {}): ScenarioReport {
  const { run, figures } = runSpread(options.seed, options.peers, { messages: options.count ?? SPREAD_KNOBS.messages, ...overrides }, 'gossip-spread')
  return { events: run.t.sim.eventCount, simulatedMs: run.t.now, traceHash: run.t.sim.traceHash, figures }
}

/** 50 Mbit/s each way. */
const IDONTWANT_LINK_BYTES_PER_SECOND = 6_250_000

export const IDONTWANT_KNOBS: Partial<SpreadKnobs> = {
  messages: 100,
  messageBytes: 64 * 1024,
  messagesPerSecond: 2,
  bound: false,
  network: { uploadBytesPerSecond: IDONTWANT_LINK_BYTES_PER_SECOND, downloadBytesPerSecond: IDONTWANT_LINK_BYTES_PER_SECOND, measureScoreTime: false },
}

/** The same seeded network with IDONTWANT (v1.2) and without (v1.1); figures prefixed v12. and v11. */
export function runGossipIdontwant(options: ScenarioRunOptions, overrides: Partial<SpreadKnobs> = {}): ScenarioReport {
  const startedMs = performance.now()
  const knobs: Partial<SpreadKnobs> = { ...IDONTWANT_KNOBS, messages: options.count ?? IDONTWANT_KNOBS.messages, ...overrides }
  const figures: Record<string, Figure> = {}
  const reports: ScenarioReport[] = []
  const duplicateBytes: number[] = []
  for (const idontwant of [true, false]) {
    const network = { ...IDONTWANT_KNOBS.network, ...knobs.network, gossip: { ...knobs.network?.gossip, idontwant } }
    const { run, figures: measured } = runSpread(options.seed, options.peers, { ...knobs, network }, 'gossip-idontwant')
    reports.push({ events: run.t.sim.eventCount, simulatedMs: run.t.now, traceHash: run.t.sim.traceHash, figures: measured })
    duplicateBytes.push(measured.duplicateBytesPerMessage as number)
    const label = idontwant ? 'v12' : 'v11'
    for (const name of [
      'deliveryRatio', 'latencyP50Ms', 'latencyP99Ms', 'copiesPerPeerPerMessage', 'duplicatesPerPeerPerMessage', 'duplicateBytesPerMessage',
      'messageBytesPerMessage', 'controlBytesPerMessage', 'idontwantSentPerMessage', 'forwardsSuppressedPerMessage', 'meshDegreeMean', 'wallMs',
    ]) figures[`${label}.${name}`] = measured[name]!
  }
  const cut = 1 - duplicateBytes[0]! / duplicateBytes[1]!
  return {
    ...combinedRuns(reports),
    figures: {
      messages: knobs.messages!,
      messageBytes: knobs.messageBytes!,
      linkBytesPerSecond: IDONTWANT_LINK_BYTES_PER_SECOND,
      duplicateBytesCutPercent: round(100 * cut, 1),
      cutAtLeast30Percent: cut >= 0.3,
      ...figures,
      wallMs: Math.round(performance.now() - startedMs),
    },
  }
}

// ---- gossip-attack --------------------------------------------------------------------------

/**
 * The attacks, after the GossipSub v1.1 evaluation:
 *
 *   covert-flash      Sybils (sybilsPerHonest) join a formed network at once, each dialling
 *                     sybilDials honest peers, behave for flashAfterMs (building score and
 *                     mesh places), then stop forwarding while staying in the meshes
 *   eclipse           a target restarts; eclipseSybils Sybils connect to it, GRAFT it every
 *                     heartbeat whatever it answers, and never send it a message or an IHAVE
 *   eclipse-poisoned  the same, and the target's address book is poisoned: of the peers it
 *                     dials only eclipseTargetHonestDials are honest, the rest Sybils
 *   spam              spammers (spammersPerHonest) join and, after leadMs, publish
 *                     spamPerSecond invalid messages each, straight to all their peers
 *   cold-boot         honest peers and Sybils arrive together, mixed, with no score history;
 *                     the Sybils never forward
 */
export type GossipAttack = 'covert-flash' | 'eclipse' | 'eclipse-poisoned' | 'spam' | 'cold-boot'
export const GOSSIP_ATTACKS: readonly GossipAttack[] = ['covert-flash', 'eclipse', 'eclipse-poisoned', 'spam', 'cold-boot']

export interface AttackKnobs {
  /** The topic's message rate, published by random honest peers from the network's formation on. */
  messagesPerSecond: number
  messageBytes: number
  /** Sybils of the covert flash and the cold boot, per honest peer. */
  sybilsPerHonest: number
  /** Honest peers each Sybil or spammer dials (an honest peer dials network.dialsPerPeer). */
  sybilDials: number
  /** Sybils around the eclipse's target. */
  eclipseSybils: number
  /**
   * eclipse-poisoned: of the network.dialsPerPeer peers the target dials, only this many are
   * honest; the rest are Sybils (the others dial it, as in the plain eclipse).
   */
  eclipseTargetHonestDials: number
  spammersPerHonest: number
  /** Invalid messages each spammer publishes per second, to all its peers. */
  spamPerSecond: number
  /** Covert flash: how long the Sybils behave, building score, before they stop forwarding. */
  flashAfterMs: number
  /** Quiet time between the attack's start and the measured window (connections and grafts). */
  leadMs: number
  /** The measured window: honest delivery of the messages published in it. */
  attackMs: number
  drainMs: number
  network: Partial<GossipKnobs>
}

export const ATTACK_KNOBS: AttackKnobs = {
  messagesPerSecond: 2,
  messageBytes: 256,
  sybilsPerHonest: 1,
  sybilDials: 20,
  eclipseSybils: 200,
  eclipseTargetHonestDials: 2,
  spammersPerHonest: 0.1,
  spamPerSecond: 10,
  flashAfterMs: 60_000,
  leadMs: 5_000,
  attackMs: 60_000,
  drainMs: 5_000,
  network: {},
}

/** When honest peers start publishing in the attack scenarios: the first have arrived. */
const PUBLISH_FROM_MS = 1_000
/** Random honest peers tried for a publisher before a publication is skipped (none started yet). */
const PUBLISHER_PICKS_MAX = 1_000

/**
 * What a full P3 deficit costs: more than a mesh peer earns by time in mesh (P1, at most 3)
 * and a few first deliveries, so that a peer that stopped forwarding is pruned, but less
 * than gossipThreshold (−10). An honest peer that is merely downstream of us (it gets
 * every message from us, so it never delivers one to us first) looks locally just like a
 * silent Sybil; it must lose its mesh slot, not our gossip, or it is cut off.
 */
const MESH_DELIVERY_DEFICIT_PENALTY = 8
/** A mesh peer must deliver (near-)first at least 1 message in 50 (`rate × horizon / 50`). */
const MESH_DELIVERY_SHARE_MIN = 1 / 50

/**
 * Topic score parameters with P3 (mesh message deliveries) calibrated to a topic carrying
 * `messagesPerSecond`, as ETH2 clients calibrate theirs to each topic's expected rate. P3
 * assumes the topic carries that rate all along: on a topic that falls quiet every mesh
 * peer ends up with a full deficit, and honest meshes are pruned bare.
 *
 * - The counter decays by 0.95 a second: its horizon is 1 / (1 − 0.95) = 20 s, and a peer
 *   that delivered every message first or near-first would hold rate × 20.
 * - An honest mesh peer delivers in time (first, or within the 1 s window) roughly every
 *   message it got before us, about half; but one that sits downstream of us, reached
 *   mostly through us, delivers few. The threshold is low, rate × 20 / 50 (at least 1),
 *   so that only a peer that delivers almost nothing falls under it.
 * - The cap is three thresholds: credit banked while a Sybil behaved runs out in
 *   ln(1/3) / ln(0.95) ≈ 21 s of silence, and about 28 s later its score is below zero.
 * - The weight makes a full deficit cost MESH_DELIVERY_DEFICIT_PENALTY.
 * - Activation after one horizon: a newly grafted peer has 20 s to reach the threshold.
 *   This is also what a fresh Sybil gets for free each time it is grafted.
 * - P3b (the deficit a pruned peer leaves with) weighs the same and decays by 0.99 a
 *   second, so a pruned Sybil stays below zero, and out of the mesh, for minutes.
 * - P4 weighs 10 times the daemon's default (see below).
 */
export function calibratedTopicScoreParams(messagesPerSecond: number): TopicScoreParams {
  const decay = 0.95
  const horizonSeconds = Math.round(1 / (1 - decay))
  const threshold = Math.max(1, MESH_DELIVERY_SHARE_MIN * messagesPerSecond * horizonSeconds)
  const weight = -MESH_DELIVERY_DEFICIT_PENALTY / (threshold * threshold)
  return {
    ...DEFAULT_SCORE_PARAMS.defaultTopic!,
    meshMessageDeliveriesWeight: weight,
    meshMessageDeliveriesDecay: decay,
    meshMessageDeliveriesThreshold: threshold,
    meshMessageDeliveriesCap: 3 * threshold,
    meshMessageDeliveriesWindowMs: 1_000,
    meshMessageDeliveriesActivationMs: horizonSeconds * 1_000,
    meshFailurePenaltyWeight: weight,
    meshFailurePenaltyDecay: 0.99,
    // Every node here runs the same validator, so an honest peer never relays an invalid
    // message: three invalid messages (−90) graylist a spammer, as ETH2 weighs P4.
    invalidMessageDeliveriesWeight: -10,
  }
}

/** Scoring for the attack scenarios: the defaults, with the topic's P3 calibrated. */
export function attackScoring(messagesPerSecond: number): GossipParams['scoring'] {
  return {
    params: { ...DEFAULT_SCORE_PARAMS, topics: { [GOSSIP_TOPIC]: calibratedTopicScoreParams(messagesPerSecond) } },
    thresholds: DEFAULT_SCORE_THRESHOLDS,
  }
}

export interface AttackOutcome {
  run: GossipRun
  /** Figures of this attack and scoring setting, unprefixed. */
  figures: Record<string, Figure>
}

/** One attack, with scoring on or off, over `honestPeers` honest peers and the attack's adversaries. */
export function runAttack(attack: GossipAttack, scoring: boolean, seed: ScenarioRunOptions['seed'], honestPeers: number, overrides: Partial<AttackKnobs> = {}): AttackOutcome {
  const startedMs = performance.now()
  const knobs: AttackKnobs = { ...ATTACK_KNOBS, ...overrides }
  const network: GossipKnobs = { ...GOSSIP_KNOBS, ...knobs.network }
  const eclipse = attack === 'eclipse' || attack === 'eclipse-poisoned'
  const adversaryCount = Math.round(
    eclipse ? knobs.eclipseSybils
      : attack === 'spam' ? knobs.spammersPerHonest * honestPeers
        : knobs.sybilsPerHonest * honestPeers,
  )
  const peers = honestPeers + adversaryCount
  const coldBoot = attack === 'cold-boot'
  // Adversaries sit at random indices, so that in a cold boot they arrive mixed with honest peers.
  const rolePrng = Prng.fromSeed(seed).fork('gossip:roles')
  const adversarial = new Uint8Array(peers)
  for (const index of rolePrng.sample(Array.from({ length: peers }, (_, index) => index), adversaryCount)) adversarial[index] = 1
  const isAdversary = (index: number): boolean => adversarial[index] === 1
  const honestIndices: number[] = []
  for (let index = 0; index < peers; index++) if (!isAdversary(index)) honestIndices.push(index)
  const target = eclipse ? honestIndices[rolePrng.int(honestIndices.length)]! : -1
  const adversaryIndices: number[] = []
  for (let index = 0; index < peers; index++) if (isAdversary(index)) adversaryIndices.push(index)
  const targetHonestDials = attack === 'eclipse-poisoned' ? knobs.eclipseTargetHonestDials : network.dialsPerPeer
  const targetSybils = new Set(eclipse ? rolePrng.sample(adversaryIndices, Math.max(0, network.dialsPerPeer - targetHonestDials)) : [])

  // Honest peers arrive at arrivalsPerSecond. Other than in a cold boot, adversaries start
  // at the attack (online but unknown until then), so their arrival slots are not waited for.
  const arrivalsPerSecond = coldBoot ? network.arrivalsPerSecond : (network.arrivalsPerSecond * peers) / honestPeers
  const arrivalMs = (honestPeers / network.arrivalsPerSecond) * 1000 * (coldBoot ? peers / honestPeers : 1)
  const attackAtMs = coldBoot ? arrivalMs : arrivalMs + network.settleMs
  const strikeAtMs = attack === 'covert-flash' ? attackAtMs + knobs.flashAfterMs : attackAtMs + knobs.leadMs
  const measureUntilMs = strikeAtMs + knobs.attackMs
  // The topic carries its rate from the first arrival on: P3 is calibrated to it, and a
  // topic that fell quiet would leave every honest mesh peer with a full deficit.
  const publishFromMs = PUBLISH_FROM_MS

  const adversaries: SimCore<GossipRpc>[] = []
  const run = gossipNetwork({
    seed,
    name: 'gossip-attack',
    knobs: {
      ...knobs.network,
      peers,
      arrivalsPerSecond,
      gossip: { ...knobs.network.gossip, scoring: scoring ? attackScoring(knobs.messagesPerSecond) : undefined },
    },
    adversary: (context, honest) => {
      if (!isAdversary(context.index)) return undefined
      const core = makeAdversary(attack, honest, context.id, `p${target}` as PeerId, {
        strikeAtMs, measureUntilMs, knobs, heartbeatIntervalMs: (network.gossip.heartbeatIntervalMs ?? DEFAULT_GOSSIP_PARAMS.heartbeatIntervalMs),
      })
      adversaries.push(core)
      return core
    },
    startAtMs: (index) => (index === target || (isAdversary(index) && !coldBoot) ? attackAtMs : undefined),
    dialsOf: (index) => (index === target ? targetHonestDials : !isAdversary(index) ? network.dialsPerPeer : eclipse ? 0 : knobs.sybilDials),
    // Adversaries dial honest peers; honest peers dial anyone started (adversaries too, in a cold boot).
    mayDial: (index, other) => !isAdversary(other) || (coldBoot && !isAdversary(index)),
    targetsOf: (index) => {
      if (!eclipse) return []
      if (index === target) return [...targetSybils]
      return isAdversary(index) && !targetSybils.has(index) ? [target] : []
    },
  })

  const samples: number[] = []
  if (eclipse) {
    // The share of the target's mesh held by Sybils, each second of the measured window.
    for (let at = strikeAtMs; at < measureUntilMs; at += 1_000) {
      run.t.at(at, () => {
        const mesh = run.core(target)?.meshOf(GOSSIP_TOPIC) ?? []
        samples.push(mesh.length === 0 ? 0 : mesh.filter((peer) => isAdversary(run.t.sim.indexOf(peer)!)).length / mesh.length)
      })
    }
  }
  let atStrike: ReturnType<typeof meshCensus> | undefined
  // Honest peers' mesh links to adversaries at the strike, as "honest index:adversary id".
  const linksAtStrike = new Set<string>()
  run.t.at(strikeAtMs, () => {
    atStrike = meshCensus(run, isAdversary)
    forEachAdversaryMeshLink(run, isAdversary, (link) => linksAtStrike.add(link))
  })

  const published = schedulePublications(run, {
    count: Infinity,
    untilMs: measureUntilMs,
    bytes: knobs.messageBytes,
    perSecond: knobs.messagesPerSecond,
    startMs: publishFromMs,
    publisher: (prng) => {
      for (let attempt = 0; attempt < PUBLISHER_PICKS_MAX; attempt++) {
        const index = honestIndices[prng.int(honestIndices.length)]!
        if (index !== target && run.started(index) && run.core(index) !== undefined) return index
      }
      return undefined
    },
    // The bound's paths through honest peers only: who can be reached at all without a Sybil.
    bound: true,
    through: (index) => !isAdversary(index),
  })
  run.t.runTo(strikeAtMs)
  const honestAtStrike = counterTotals(run, (index) => !isAdversary(index))
  const trafficAtStrike: GossipTraffic = { ...run.traffic }
  const spamCopiesAtStrike = spamCopiesSent(adversaries)
  run.t.runTo(measureUntilMs + knobs.drainMs)

  const measured = published.ids.filter((id) => {
    const at = run.deliveries.get(id)!.publishedAtMs
    return at >= strikeAtMs && at < measureUntilMs
  })
  const honest = collectDeliveries(run, measured, (index) => !isAdversary(index) && run.core(index) !== undefined)
  // Honest peers joined to the publisher by a path of honest peers: no protocol reaches the others.
  const reachable = collectDeliveries(run, measured, (index, id) => !isAdversary(index) && run.core(index) !== undefined && Number.isFinite(published.bounds.get(id)![index]!))
  const end = meshCensus(run, isAdversary)
  let linksKept = 0
  forEachAdversaryMeshLink(run, isAdversary, (link) => {
    if (linksAtStrike.has(link)) linksKept++
  })
  const figures: Record<string, Figure> = {
    honestPeers,
    adversaries: adversaryCount,
    messages: measured.length,
    honestDeliveryRatio: round(honest.delivered / Math.max(1, honest.pairs), 6),
    honestUnreachablePairs: honest.pairs - reachable.pairs,
    honestReachableDeliveryRatio: round(reachable.delivered / Math.max(1, reachable.pairs), 6),
    honestLatencyP50Ms: round(quantileOfSorted(honest.latencies, 0.5), 1),
    honestLatencyP99Ms: round(quantileOfSorted(honest.latencies, 0.99), 1),
    adversaryMeshShareAtStrike: round(atStrike?.adversaryShare, 3),
    adversaryMeshShareEnd: round(end.adversaryShare, 3),
    /** Of the honest peers' mesh links to adversaries at the strike, the share still there at the end. */
    strikeAdversaryLinksKept: linksAtStrike.size === 0 ? null : round(linksKept / linksAtStrike.size, 3),
    honestMeshDegreeMeanEnd: round(end.mean, 2),
  }
  const honestCounters = difference(counterTotals(run, (index) => !isAdversary(index)), honestAtStrike)
  if (eclipse) {
    const targetDeliveries = collectDeliveries(run, measured, (index) => index === target)
    const targetCore = run.core(target)
    const targetMesh = targetCore?.meshOf(GOSSIP_TOPIC) ?? []
    Object.assign(figures, {
      targetDeliveryRatio: round(targetDeliveries.delivered / Math.max(1, targetDeliveries.pairs), 6),
      targetLatencyP50Ms: round(quantileOfSorted(targetDeliveries.latencies, 0.5), 1),
      targetLatencyP99Ms: round(quantileOfSorted(targetDeliveries.latencies, 0.99), 1),
      targetMeshSybilShareMean: round(samples.reduce((sum, value) => sum + value, 0) / Math.max(1, samples.length), 3),
      targetMeshSybilsEnd: targetMesh.filter((peer) => isAdversary(run.t.sim.indexOf(peer)!)).length,
      targetMeshSizeEnd: targetMesh.length,
      targetGraftsRefused: targetCore?.counters.graftRefused ?? null,
      sybilGraftsSent: adversaries.reduce((sum, core) => sum + ((core as unknown as Partial<EclipseSybil>).graftsSent ?? 0), 0),
    })
  }
  if (attack === 'spam') {
    const spamCopies = spamCopiesSent(adversaries) - spamCopiesAtStrike
    const invalidCopies = run.traffic.invalidMessageCopies - trafficAtStrike.invalidMessageCopies
    const graylisted = scoring ? spammerLinksGraylisted(run, isAdversary) : null
    Object.assign(figures, {
      spamCopiesSent: spamCopies,
      invalidForwardedByHonest: invalidCopies - spamCopies,
      invalidValidatedByHonest: honestCounters.messagesRejected,
      invalidValidatedPerHonestPerSecond: round(honestCounters.messagesRejected / honestPeers / (knobs.attackMs / 1_000), 2),
      rpcsGraylistedByHonest: honestCounters.rpcsGraylisted,
      spammerLinksGraylistedEnd: graylisted === null ? null : round(graylisted, 3),
    })
  }
  figures.wallMs = Math.round(performance.now() - startedMs)
  return { run, figures }
}

function forEachAdversaryMeshLink(run: GossipRun, isAdversary: (index: number) => boolean, visit: (link: string) => void): void {
  for (let index = 0; index < run.knobs.peers; index++) {
    const core = run.core(index)
    if (core === undefined) continue
    for (const peer of core.meshOf(GOSSIP_TOPIC)) if (isAdversary(run.t.sim.indexOf(peer)!)) visit(`${index}:${peer}`)
  }
}

function spamCopiesSent(adversaries: readonly SimCore<GossipRpc>[]): number {
  return adversaries.reduce((sum, core) => sum + ((core as unknown as Partial<Spammer>).copiesSent ?? 0), 0)
}

function makeAdversary(attack: GossipAttack, honest: GossipCore, self: PeerId, target: PeerId, timing: {
  strikeAtMs: number
  measureUntilMs: number
  knobs: AttackKnobs
  heartbeatIntervalMs: number
}): SimCore<GossipRpc> {
  const core = attack === 'covert-flash' ? new SilentSybil(honest, timing.strikeAtMs)
    : attack === 'cold-boot' ? new SilentSybil(honest, 0)
      : attack === 'eclipse' || attack === 'eclipse-poisoned' ? new EclipseSybil(honest, target, timing.heartbeatIntervalMs)
        : new Spammer(honest, self, { fromMs: timing.strikeAtMs, untilMs: timing.measureUntilMs, perSecond: timing.knobs.spamPerSecond, bytes: timing.knobs.messageBytes })
  return core as unknown as SimCore<GossipRpc>
}

/** The share of (honest peer, connected spammer) pairs where the honest peer graylists the spammer. */
function spammerLinksGraylisted(run: GossipRun, isAdversary: (index: number) => boolean): number {
  const graylist = DEFAULT_SCORE_THRESHOLDS.graylistThreshold
  let links = 0
  let graylisted = 0
  for (let index = 0; index < run.knobs.peers; index++) {
    const core = run.core(index)
    if (core === undefined) continue
    for (const peer of core.peersOf(GOSSIP_TOPIC)) {
      if (!isAdversary(run.t.sim.indexOf(peer)!)) continue
      links++
      if (core.scoreOf(peer) < graylist) graylisted++
    }
  }
  return links === 0 ? 0 : graylisted / links
}

const ATTACK_LABELS: Record<GossipAttack, string> = {
  'covert-flash': 'covertFlash', eclipse: 'eclipse', 'eclipse-poisoned': 'eclipsePoisoned', spam: 'spam', 'cold-boot': 'coldBoot',
}

/** Every attack, scoring on then off; figures prefixed <attack>.<scoringOn|scoringOff>. */
export function runGossipAttack(options: ScenarioRunOptions, overrides: Partial<AttackKnobs> = {}, attacks: readonly GossipAttack[] = GOSSIP_ATTACKS): ScenarioReport {
  const startedMs = performance.now()
  const figures: Record<string, Figure> = {}
  const reports: ScenarioReport[] = []
  const knobs: AttackKnobs = { ...ATTACK_KNOBS, ...overrides }
  figures.messagesPerSecond = knobs.messagesPerSecond
  for (const attack of attacks) {
    for (const scoring of [true, false]) {
      const { run, figures: measured } = runAttack(attack, scoring, options.seed, options.peers, knobs)
      reports.push({ events: run.t.sim.eventCount, simulatedMs: run.t.now, traceHash: run.t.sim.traceHash, figures: measured })
      for (const [name, value] of Object.entries(measured)) figures[`${ATTACK_LABELS[attack]}.${scoring ? 'scoringOn' : 'scoringOff'}.${name}`] = value
    }
  }
  return { ...combinedRuns(reports), figures: { ...figures, wallMs: Math.round(performance.now() - startedMs) } }
}

// ---- the named scenarios --------------------------------------------------------------------

export const GOSSIP_SPREAD_SCENARIO: NamedScenario = {
  name: 'gossip-spread',
  description: 'N peers on one GossipSub topic; --count 256-byte messages (default 1,000) from random peers, 5/s: delivery, latency against the shortest-path bound, copies per peer, control bytes, score CPU share',
  defaults: { peers: 10_000, ms: 0 },
  run: (options) => runGossipSpread(options),
}

export const GOSSIP_IDONTWANT_SCENARIO: NamedScenario = {
  name: 'gossip-idontwant',
  description: 'the same network with GossipSub v1.2 (IDONTWANT) and v1.1: --count 64 KiB messages (default 100) over 50 Mbit/s links; duplicate bytes per message and the cut',
  defaults: { peers: 10_000, ms: 0 },
  run: (options) => runGossipIdontwant(options),
}

export const GOSSIP_ATTACK_SCENARIO: NamedScenario = {
  name: 'gossip-attack',
  description: 'covert flash, eclipse, spam and cold boot against N honest peers (--peers), each with peer scoring on and off: honest delivery and latency, and what each attack achieved',
  defaults: { peers: 1_000, ms: 0 },
  run: (options) => runGossipAttack(options),
}
