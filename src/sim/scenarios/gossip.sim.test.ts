/**
 * GossipSub over small simulated networks: every message reaches every peer no sooner than
 * the shortest path allows, meshes settle within [Dlo, Dhi], and with peer scoring on
 * honest peers get every message through a covert flash and a spam attack (the
 * adversarial gates). The 10,000-peer figures come from `shoal sim gossip-*`.
 * SHOAL_SEED=<n> replays a failure.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DEFAULT_GOSSIP_PARAMS } from '../../core/gossip/config.ts'
import { seedFromEnvironment } from '../seed.ts'
import { runAttack, runSpread } from './gossip.ts'

const seed = seedFromEnvironment(1n)

test('300 peers: every message reaches every peer, no sooner than the shortest path, and meshes settle within [Dlo, Dhi]', () => {
  const spread = () => runSpread(seed, 300, { messages: 100, messagesPerSecond: 10, drainMs: 5_000 }, 'gossip-spread')
  const { run, figures } = spread()
  const { t } = run
  const { Dlo, Dhi } = DEFAULT_GOSSIP_PARAMS
  const shown = JSON.stringify(figures)
  t.check(figures.deliveryRatio === 1, `delivery ${figures.deliveryRatio}: ${shown}`)
  t.check((figures.stretchMin as number) >= 1, `a message beat the shortest-path bound: ${shown}`)
  t.check(figures.p99WithinBound === true, `p99 latency past 1.5 × the bound + a heartbeat: ${shown}`)
  t.check((figures.meshDegreeMinSettled as number) >= Dlo && (figures.meshDegreeMaxSettled as number) <= Dhi, `settled mesh degrees outside [${Dlo}, ${Dhi}]: ${shown}`)
  t.check((figures.meshDegreeMin as number) >= Dlo && (figures.meshDegreeMax as number) <= Dhi, `mesh degrees outside [${Dlo}, ${Dhi}] at the end: ${shown}`)
  // The same seed replays the same run.
  assert.equal(spread().run.t.sim.traceHash, t.sim.traceHash)
})

test('covert flash, scoring on: Sybils as many as honest peers stop forwarding, and honest peers still get every message', () => {
  const { run, figures } = runAttack('covert-flash', true, seed, 150, { flashAfterMs: 30_000, attackMs: 40_000 })
  const shown = JSON.stringify(figures)
  run.t.check(figures.honestDeliveryRatio === 1, `honest delivery ${figures.honestDeliveryRatio}: ${shown}`)
  run.t.check((figures.adversaryMeshShareAtStrike as number) > 0.1, `the Sybils never got into honest meshes: ${shown}`)
  // Silent Sybils are pruned about 30 s after they stop (calibratedTopicScoreParams); fresh ones may take their places for a while.
  run.t.check((figures.strikeAdversaryLinksKept as number) < 0.05, `Sybils that stopped forwarding are still in honest meshes: ${shown}`)
})

test('spam of invalid messages, scoring on: honest peers get every message, forward no invalid one, and graylist the spammers', () => {
  const { run, figures } = runAttack('spam', true, seed, 200, { attackMs: 20_000 })
  const shown = JSON.stringify(figures)
  run.t.check(figures.honestDeliveryRatio === 1, `honest delivery ${figures.honestDeliveryRatio}: ${shown}`)
  run.t.check(figures.invalidForwardedByHonest === 0, `honest peers forwarded invalid messages: ${shown}`)
  run.t.check(figures.spammerLinksGraylistedEnd === 1, `some spammers are not graylisted: ${shown}`)
  run.t.check((figures.invalidValidatedByHonest as number) < (figures.spamCopiesSent as number) / 10, `graylisting did not spare validations: ${shown}`)
})
