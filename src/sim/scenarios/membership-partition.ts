/**
 * The `membership-partition` scenario: the `membership` network forms, is split into two
 * random halves (bootstrap peers split too) for long enough that every connection across
 * dies by ping timeout, and is healed. It measures how long the overlay takes to become
 * one component again: Membership has no explicit repair, so it relies on peers dialling
 * across from their address books and on churn (re-joiners meet both halves' bootstrap peers).
 */
import { largestComponentSize } from '../metrics.ts'
import type { Simulator } from '../simulator.ts'
import { membershipFigures, membershipKnobsFor, membershipScenario } from './membership.ts'
import type { NamedScenario, ScenarioReport, ScenarioRunOptions } from './types.ts'

/** The overlay counts as one again when this share of online peers is in its largest component (re-joiners start alone). */
const REJOINED_SHARE = 0.99
const FORMATION_MS = 60_000
const PARTITION_MS = 60_000

export function runMembershipPartition(options: ScenarioRunOptions): ScenarioReport {
  const ms = Math.max(options.ms ?? MEMBERSHIP_PARTITION_SCENARIO.defaults.ms, 1)
  const overrides = membershipKnobsFor(options.peers)
  const { t, knobs, emits } = membershipScenario(options.seed, overrides, { name: 'membership-partition' })
  const sim = t.sim as Simulator<unknown>
  const halves: [number[], number[]] = [[], []]
  const prng = t.sim.prng('halves')
  for (let index = 0; index < t.peerCount; index++) {
    // Bootstrap peers alternate so that each half keeps some.
    const half = index < knobs.bootstrapCount ? index % 2 : prng.int(2)
    halves[half]!.push(index)
  }
  const inFirstHalf = new Uint8Array(t.peerCount)
  for (const index of halves[0]) inFirstHalf[index] = 1
  const crossConnections = () => {
    let count = 0
    sim.forEachLiveConnection((a, b) => {
      if (inFirstHalf[a] !== inFirstHalf[b]) count++
    })
    return count
  }
  const partitionAt = Math.min(ms, knobs.arrivalWindowMs + FORMATION_MS)
  const healAt = Math.min(ms, partitionAt + PARTITION_MS)
  t.runTo(partitionAt)
  const crossBefore = crossConnections()
  t.partition(halves[0], halves[1])
  t.runTo(healAt)
  const crossAtHeal = crossConnections()
  const fractionAtHeal = largestComponentSize(sim) / Math.max(1, sim.onlineCount)
  t.heal()
  const reconnectMs = t.tryRunUntil(() => largestComponentSize(sim) >= REJOINED_SHARE * sim.onlineCount, { msMax: Math.max(0, ms - healAt), checkEveryMs: 500 })
  const crossAfterReconnect = crossConnections()
  t.runTo(ms)
  return {
    events: t.sim.eventCount,
    simulatedMs: t.now,
    traceHash: t.sim.traceHash,
    figures: {
      partitionAtMs: partitionAt,
      healAtMs: healAt,
      crossConnectionsBeforePartition: crossBefore,
      crossConnectionsAtHeal: crossAtHeal,
      largestComponentFractionAtHeal: Number(fractionAtHeal.toFixed(4)),
      timeToOneComponentAfterHealMs: reconnectMs ?? null,
      crossConnectionsWhenOne: reconnectMs === undefined ? null : crossAfterReconnect,
      crossConnectionsEnd: crossConnections(),
      ...membershipFigures(t, emits),
    },
  }
}

export const MEMBERSHIP_PARTITION_SCENARIO: NamedScenario = {
  name: 'membership-partition',
  description: 'the membership network splits in two random halves for 60 s, then heals: time until it is one component again',
  defaults: { peers: 1_000, ms: 300_000 },
  run: runMembershipPartition,
}
