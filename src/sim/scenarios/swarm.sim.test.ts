/**
 * The swarm protocol over small simulated swarms, with the real SwarmCore: a flash crowd
 * completes near the lower bound, strategic peers' gain is measured, and a run replays from
 * its seed. Free riders and poisoners are adversarial gates (adversarial-gates.sim.test.ts).
 * The figures at 1,000 and 10,000 peers come from `shoal sim swarm-*` (and
 * `npm run bench:swarm-sim`). SHOAL_SEED=<n> replays a failure.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { seedFromEnvironment } from '../seed.ts'
import { HETEROGENEOUS_CLASSES, runStrategic, runSwarm, swarmFigures } from './swarm.ts'

const seed = seedFromEnvironment(1n)

test('30 peers arriving within 1 s fetch 32 MiB from one origin, within twice the lower bound', () => {
  const flash = () => runSwarm(seed, { peers: 30, leafCount: 32 }, 'swarm-flash')
  const run = flash()
  const figures = swarmFigures(run, { poisson: false })
  const shown = JSON.stringify(figures)
  run.t.check(run.finished && figures.completed === 30, `not every download completed: ${shown}`)
  // At 32 MiB the ramp-up and the DAG's round trips weigh; at 1 GiB p50 is within 1.15 × LB.
  run.t.check((figures.p50OverBound as number) <= 2, `p50 above 2 × LB: ${shown}`)
  run.t.check((figures.originEgressF as number) <= 4, `the origin sent more than 4 F: ${shown}`)
  run.t.check(figures.stuckDeadlines === 0, `a core asked for ticks it had just been given: ${shown}`)
  // The same seed replays the same run.
  assert.equal(flash().t.sim.traceHash, run.t.sim.traceHash)
})

test('strategic (BitTyrant-style) peers complete, and the gain is measured per capacity class', () => {
  const { run, report } = runStrategic({ peers: 60, seed }, { leafCount: 64, classes: HETEROGENEOUS_CLASSES })
  const figures = report.figures
  const shown = JSON.stringify(figures)
  run.t.check(figures['compliant.completed'] === 60, `not every download completed: ${shown}`)
  for (const label of ['up10', 'up50', 'up100']) run.t.check(typeof figures[`${label}.strategicGain`] === 'number', `no gain measured for ${label}: ${shown}`)
})

test('whitewashing poisoners leave once banned and come back as newcomers under fresh peer ids, within their bound', () => {
  const identitiesMax = 3
  const run = runSwarm(seed, { peers: 40, leafCount: 32, poisonerShare: 0.2, poisonersCollude: true, poisonerIdentitiesMax: identitiesMax, poisonerBansPerIdentity: 2 }, 'swarm-poisoning-whitewash')
  const { world, t } = run
  const shown = `${t.replayHint()}`
  t.check(run.finished, `honest downloads did not all complete: ${shown}`)
  let freshArrived = 0
  let freshBannedByHonest = 0
  for (const [attacker, identities] of world.identities) {
    const used = world.whitewashers.get(attacker)!.identitiesUsed
    t.check(identities.length === identitiesMax && used <= identitiesMax, `attacker ${attacker} used ${used} of ${identities.length} identities`)
    identities.forEach((identity, position) => {
      // Those dropped left the swarm; the one in use is online; those never used never arrived.
      const arrived = !Number.isNaN(world.arrivalMs[identity]!)
      if (position < used - 1) t.check(arrived && !t.sim.isOnline(identity), `identity ${identity} of ${attacker} was dropped but is online`)
      if (position >= used) t.check(!arrived, `identity ${identity} of ${attacker} arrived though never used`)
      if (position === 0 || !arrived) return
      freshArrived++
      for (let honest = 0; honest <= 40; honest++) if (world.isHonest(honest) && world.badBlockBans.has(honest * world.peerCount + identity)) freshBannedByHonest++
    })
  }
  t.check(freshArrived > 0, `no poisoner came back: ${shown}`)
  t.check(freshBannedByHonest > 0, `no honest peer met a fresh identity: ${shown}`)
  for (let index = 1; index <= 40; index++) if (world.isHonest(index)) t.check(world.hosts[index]!.wrongBlocksStored === 0, `peer ${index} stored a corrupt block`)
})
