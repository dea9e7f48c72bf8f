/**
 * The membership protocol over a whole simulated network: the overlay forms, stays one
 * component, notices crashed neighbours in time, and the run is reproducible from its seed.
 * SHOAL_SEED=<n> replays a failure.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { MembershipMessage } from '../../core/membership/membership.ts'
import type { Checker } from '../scenario.ts'
import { seedFromEnvironment } from '../seed.ts'
import { degreeReachedFraction, membershipScenario, onlineDegrees, runMembership } from './membership.ts'

const seed = seedFromEnvironment(1n)

test('300 peers form an overlay at the degree target, in one component, and drop crashed neighbours in time', () => {
  const degreeBounded: Checker<MembershipMessage> = {
    name: 'no peer holds more than degreeMax connections, besides pruned ones in their grace period',
    everyEvents: 20_000,
    check: (t) => {
      const worst = Math.max(...onlineDegrees(t))
      return worst > knobs.membership.degreeMax + knobs.membership.pruningCountMax ? `a peer holds ${worst} connections` : undefined
    },
  }
  const { t, knobs } = membershipScenario(seed, { peers: 300, sessionMeanMs: Infinity, offlineMeanMs: Infinity }, { checkers: [degreeBounded] })
  const { degreeTarget, pingIntervalMs, pingTimeoutMs, pingFailuresMax } = knobs.membership
  const formedMs = t.runUntil(() => t.churn.counters.arrivals + knobs.bootstrapCount >= knobs.peers && degreeReachedFraction(t, degreeTarget) >= 0.99, {
    msMax: 120_000,
    what: '99% of online peers at the degree target',
  })
  t.check(t.largestComponentFraction() === 1, `the overlay is split: largest component ${t.largestComponentFraction()} after ${formedMs} ms`)

  const bootstrap = t.bootstrapPeers
  const victims = t.sim.prng('victims').sample(t.others(...bootstrap), 10)
  for (const victim of victims) t.crash(victim)
  // After a pong, the next ping goes out a full interval later; after a timeout the next
  // goes at once. The slack covers the round trip.
  const detectionBoundMs = pingIntervalMs + pingFailuresMax * pingTimeoutMs + 1_000
  t.run({ ms: detectionBoundMs + 1_000 })
  const delays = t.sim.deadPeerDetectionDelaysMs
  t.check(delays.length >= victims.length * 2, `only ${delays.length} dead connections detected`)
  t.check(t.sim.deadConnectionCount === 0, `${t.sim.deadConnectionCount} connections to crashed peers still open after ${detectionBoundMs} ms`)
  t.check(Math.max(...delays) <= detectionBoundMs, `a crash took ${Math.max(...delays)} ms to detect (bound ${detectionBoundMs})`)

  t.runUntil(() => degreeReachedFraction(t, degreeTarget) >= 0.99 && t.largestComponentFraction() === 1, { msMax: 60_000, what: 'recovery after 10 crashes' })
})

test('the same seed replays the same run; another seed gives another', () => {
  const run = (runSeed: bigint) => runMembership({ peers: 150, seed: runSeed, ms: 40_000 })
  const first = run(7n)
  const second = run(7n)
  assert.equal(first.traceHash, second.traceHash)
  assert.equal(first.events, second.events)
  assert.deepEqual(first.figures, second.figures)
  const other = run(8n)
  assert.notEqual(other.traceHash, first.traceHash)
  assert.ok(first.events > 10_000, `${first.events} events`)
})

test('a failing expectation names the seed and the knobs', () => {
  const { t } = membershipScenario(seed, { peers: 20 })
  assert.throws(() => t.runUntil(() => false, { msMax: 1_000, what: 'the impossible' }), (error: Error) => {
    assert.match(error.message, /the impossible not reached within 1000 ms/)
    assert.match(error.message, new RegExp(`SEED=${String(seed)}`))
    assert.match(error.message, /"peerCount":20/)
    assert.match(error.message, /shoal sim membership --seed/)
    return true
  })
})
