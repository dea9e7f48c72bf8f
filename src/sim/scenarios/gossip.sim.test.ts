/**
 * GossipSub over small simulated networks: every message reaches every peer no sooner than
 * the shortest path allows, and meshes settle within [Dlo, Dhi]. The covert flash and the
 * spam attack are adversarial gates (adversarial-gates.sim.test.ts). The 10,000-peer
 * figures come from `shoal sim gossip-*`. SHOAL_SEED=<n> replays a failure.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DEFAULT_GOSSIP_PARAMS } from '../../core/gossip/config.ts'
import { seedFromEnvironment } from '../seed.ts'
import { runSpread } from './gossip.ts'

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
