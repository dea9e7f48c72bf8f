/**
 * The `membership` scenario: N peers join over a few seconds through a few bootstrap
 * peers, behind a mix of NAT classes, over lognormal latency, with churn (crashes,
 * graceful leaves, re-joins), all running the real Membership core. It measures how fast
 * the overlay forms, how well connected it stays, how fast crashed neighbours are
 * noticed and what that costs. Also the builder the membership tests and
 * `membership-partition` start from.
 */
import { Prng } from '../../core/prng.ts'
import { DEFAULT_MEMBERSHIP_CONFIG, Membership, type MembershipConfig, type MembershipMessage } from '../../core/membership/membership.ts'
import { membershipCodec } from '../../wire/membership.ts'
import type { DurationDistribution } from '../distributions.ts'
import { percentile, summarize } from '../metrics.ts'
import type { NatClass } from '../network-model.ts'
import { scenario, type Checker, type Scenario } from '../scenario.ts'
import type { PeerContext, Seed, SimCore } from '../simulator.ts'
import type { Figure, NamedScenario, ScenarioReport, ScenarioRunOptions } from './types.ts'

export interface MembershipKnobs {
  peers: number
  bootstrapCount: number
  /** Shares of public, NATed and unreachable peers (bootstrap peers are always public). */
  natShares: Record<NatClass, number>
  arrivalWindowMs: number
  latency: DurationDistribution
  lossProbability: number
  /** Mean session length (exponential); Infinity for no departures. */
  sessionMeanMs: number
  crashFraction: number
  /** Mean time offline before re-joining (exponential); Infinity for no re-joins. */
  offlineMeanMs: number
  membership: Omit<MembershipConfig, 'self'>
}

export const MEMBERSHIP_KNOBS: MembershipKnobs = {
  peers: 1_000,
  bootstrapCount: 4,
  natShares: { public: 0.6, nat: 0.3, unreachable: 0.1 },
  /** Newcomers arrive over this window, widened to keep arrivals at ARRIVALS_PER_SECOND_MAX (see membershipKnobsFor). */
  arrivalWindowMs: 5_000,
  latency: { kind: 'lognormal', medianMs: 40, sigma: 0.5, maxMs: 400 },
  lossProbability: 0.001,
  sessionMeanMs: 30 * 60_000,
  crashFraction: 0.5,
  offlineMeanMs: 60_000,
  membership: DEFAULT_MEMBERSHIP_CONFIG,
}

/**
 * Arrivals per second in the default scenario: a steady stream of newcomers, the common
 * case. The `membership-flash-crowd` scenario is the hard one, everyone at once through
 * the same 4 bootstrap peers, which must shed the crowd by pruning with peer exchange.
 */
export const ARRIVALS_PER_SECOND_MAX = 200

/** The default knobs for `peers` peers: arrivals spread to at most ARRIVALS_PER_SECOND_MAX. */
export function membershipKnobsFor(peers: number): Partial<MembershipKnobs> {
  return { peers, arrivalWindowMs: Math.max(MEMBERSHIP_KNOBS.arrivalWindowMs, (peers / ARRIVALS_PER_SECOND_MAX) * 1000) }
}

/** Cores that are not honest Membership instances may still report their degree. */
interface HasDegree {
  connectedCount: number
}

export interface MembershipScenarioExtras {
  /** A different core for some peers (an adversary); undefined means the honest one. */
  adversaryFor?(context: PeerContext, config: MembershipConfig): SimCore<MembershipMessage> | undefined
  checkers?: readonly Checker<MembershipMessage>[]
  name?: string
}

/** Events the cores emitted, counted by type (peer-alive, peer-dead). */
export interface EmitCounts {
  peerAlive: number
  peerDead: number
  /** peer-dead events about each peer, by index (who was declared dead, how often). */
  deadReportsAbout: Map<string, number>
}

export function membershipScenario(seed: Seed, overrides: Partial<MembershipKnobs> = {}, extras: MembershipScenarioExtras = {}): { t: Scenario<MembershipMessage>; knobs: MembershipKnobs; emits: EmitCounts } {
  const knobs: MembershipKnobs = { ...MEMBERSHIP_KNOBS, ...overrides }
  const natPrng = Prng.fromSeed(seed).fork('nat')
  const natClasses: NatClass[] = []
  for (let index = 0; index < knobs.peers; index++) {
    const draw = natPrng.next()
    natClasses.push(index < knobs.bootstrapCount ? 'public' : draw < knobs.natShares.public ? 'public' : draw < knobs.natShares.public + knobs.natShares.nat ? 'nat' : 'unreachable')
  }
  const emits: EmitCounts = { peerAlive: 0, peerDead: 0, deadReportsAbout: new Map() }
  const t = scenario<MembershipMessage>({
    name: extras.name ?? 'membership',
    peerCount: knobs.peers,
    seed,
    codec: membershipCodec,
    network: { latency: knobs.latency, lossProbability: knobs.lossProbability },
    natClassOf: (index) => natClasses[index]!,
    bootstrapPeers: Array.from({ length: Math.min(knobs.bootstrapCount, knobs.peers) }, (_, index) => index),
    churn: {
      arrival: { kind: 'poisson', windowMs: knobs.arrivalWindowMs },
      session: knobs.sessionMeanMs === Infinity ? undefined : { kind: 'exponential', meanMs: knobs.sessionMeanMs },
      crashFraction: knobs.crashFraction,
      offline: knobs.offlineMeanMs === Infinity ? undefined : { kind: 'exponential', meanMs: knobs.offlineMeanMs },
    },
    checkers: extras.checkers,
    knobs: { ...knobs, membership: undefined, ...knobs.membership },
    createCore: (context) => {
      const config: MembershipConfig = { ...knobs.membership, self: context.id }
      return extras.adversaryFor?.(context, config) ?? new Membership(config, context.prng)
    },
    onAction: (_peer, action) => {
      if (action.type !== 'emit') return
      const event = (action as { type: 'emit'; event: { type: string; peer: string } }).event
      if (event.type === 'peer-alive') emits.peerAlive++
      else if (event.type === 'peer-dead') {
        emits.peerDead++
        emits.deadReportsAbout.set(event.peer, (emits.deadReportsAbout.get(event.peer) ?? 0) + 1)
      }
    },
  })
  return { t, knobs, emits }
}

/** Degrees (connections the core holds) of every online peer. */
export function onlineDegrees(t: Scenario<MembershipMessage>): number[] {
  const degrees: number[] = []
  for (let index = 0; index < t.peerCount; index++) {
    const core = t.sim.core(index) as (SimCore<MembershipMessage> & Partial<HasDegree>) | undefined
    if (core !== undefined) degrees.push(core.connectedCount ?? 0)
  }
  return degrees
}

/** Fraction of online peers with at least `degreeTarget` connections. */
export function degreeReachedFraction(t: Scenario<MembershipMessage>, degreeTarget: number): number {
  const degrees = onlineDegrees(t)
  if (degrees.length === 0) return 1
  let reached = 0
  for (const degree of degrees) if (degree >= degreeTarget) reached++
  return reached / degrees.length
}

/** Figures common to membership scenarios, measured at the current instant. */
export function membershipFigures(t: Scenario<MembershipMessage>, emits: EmitCounts): Record<string, Figure> {
  const { sim } = t
  const degrees = summarize(onlineDegrees(t))
  let prunedConnections = 0
  for (let index = 0; index < t.peerCount; index++) {
    const core = sim.core(index) as { counters?: { prunedConnections?: number } } | undefined
    prunedConnections += core?.counters?.prunedConnections ?? 0
  }
  const delays = sim.deadPeerDetectionDelaysMs
  const counters = sim.counters
  const round = (value: number | undefined, digits = 0) => (value === undefined ? null : Number(value.toFixed(digits)))
  return {
    onlinePeers: sim.onlineCount,
    degreeMin: round(degrees?.min),
    degreeMean: round(degrees?.mean, 2),
    degreeMax: round(degrees?.max),
    largestComponentFraction: round(t.largestComponentFraction(), 4),
    deadPeerDetectionCount: delays.length,
    deadPeerDetectionP50Ms: round(percentile(delays, 0.5)),
    deadPeerDetectionP99Ms: round(percentile(delays, 0.99)),
    deadPeerDetectionMaxMs: round(summarize(delays)?.max),
    deadConnectionsPending: sim.deadConnectionCount,
    controlBytesPerPeerPerSecond: round(counters.bytesSent / Math.max(1e-9, sim.onlinePeerMs / 1000), 1),
    messagesSent: counters.messagesSent,
    messagesDelivered: counters.messagesDelivered,
    messagesDropped: counters.messagesDroppedClosed + counters.messagesDroppedOffline + counters.messagesDroppedPartition + counters.messagesDroppedNoConnection,
    messagesDroppedOffline: counters.messagesDroppedOffline,
    messagesDroppedPartition: counters.messagesDroppedPartition,
    retransmissions: counters.retransmissions,
    dials: counters.dials,
    dialsFailed: counters.dialsFailed,
    dialsToConnectedPeer: counters.dialsToConnectedPeer,
    peerDeadEvents: emits.peerDead,
    /** Inbound connections closed for exceeding degreeMax, by peers online at the end. */
    prunedConnections,
    arrivals: t.churn.counters.arrivals,
    rejoins: t.churn.counters.rejoins,
    crashes: t.churn.counters.crashes,
    gracefulLeaves: t.churn.counters.gracefulLeaves,
  }
}

/** How often the share of peers at the degree target is sampled. */
const DEGREE_SAMPLE_MS = 250

export function runMembership(options: ScenarioRunOptions, overrides: Partial<MembershipKnobs> = membershipKnobsFor(options.peers), name = 'membership'): ScenarioReport {
  const ms = options.ms ?? MEMBERSHIP_SCENARIO.defaults.ms
  const { t, knobs, emits } = membershipScenario(options.seed, { ...overrides, peers: options.peers }, { name })
  const target = knobs.membership.degreeTarget
  let reached95Ms: number | undefined
  let reached99Ms: number | undefined
  let laterHalfTotal = 0
  let laterHalfCount = 0
  for (let time = DEGREE_SAMPLE_MS; time < ms + DEGREE_SAMPLE_MS; time += DEGREE_SAMPLE_MS) {
    t.runTo(Math.min(time, ms))
    const fraction = degreeReachedFraction(t, target)
    // Before everyone has arrived, a share at target says little about formation.
    if (t.churn.counters.arrivals + knobs.bootstrapCount >= knobs.peers) {
      if (reached95Ms === undefined && fraction >= 0.95) reached95Ms = t.now
      if (reached99Ms === undefined && fraction >= 0.99) reached99Ms = t.now
    }
    if (t.now >= ms / 2) {
      laterHalfTotal += fraction
      laterHalfCount++
    }
  }
  return {
    events: t.sim.eventCount,
    simulatedMs: t.now,
    traceHash: t.sim.traceHash,
    figures: {
      degreeTarget: target,
      arrivalWindowMs: knobs.arrivalWindowMs,
      timeTo95PercentAtDegreeTargetMs: reached95Ms ?? null,
      timeTo99PercentAtDegreeTargetMs: reached99Ms ?? null,
      /** Under churn the share hovers: peers only dial once below target. */
      atDegreeTargetFractionMeanLaterHalf: laterHalfCount === 0 ? null : Number((laterHalfTotal / laterHalfCount).toFixed(4)),
      atDegreeTargetFractionEnd: Number(degreeReachedFraction(t, target).toFixed(4)),
      ...membershipFigures(t, emits),
    },
  }
}

export const MEMBERSHIP_SCENARIO: NamedScenario = {
  name: 'membership',
  description: `peers join (at most ${ARRIVALS_PER_SECOND_MAX}/s) via 4 bootstrap peers behind mixed NATs, with churn; overlay formation, connectivity, dead-peer detection, control traffic`,
  defaults: { peers: 1_000, ms: 180_000 },
  run: (options) => runMembership(options),
}

/**
 * Everyone arrives within 5 s through 4 bootstrap peers, whatever N. Kept to show a
 * weakness of Membership: a bootstrap peer over degreeMax prunes a random inbound
 * connection, the pruned newcomer redials it at once (a disconnect sets no backoff), and
 * bootstrap peers spend their time pruning while newcomers stay below target.
 */
export const MEMBERSHIP_FLASH_CROWD_SCENARIO: NamedScenario = {
  name: 'membership-flash-crowd',
  description: 'everyone joins within 5 s via 4 bootstrap peers, no churn: how fast bootstrap peers shed a crowd by pruning with peer exchange',
  defaults: { peers: 3_000, ms: 30_000 },
  run: (options) => runMembership({ ms: MEMBERSHIP_FLASH_CROWD_SCENARIO.defaults.ms, ...options }, { arrivalWindowMs: 5_000, sessionMeanMs: Infinity }, 'membership-flash-crowd'),
}
