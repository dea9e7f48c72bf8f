/**
 * Split and heal: every connection across the split dies while it lasts (the protocol
 * notices by itself: nobody is told), and the overlay is one component again after healing.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { seedFromEnvironment } from '../seed.ts'
import { runMembershipPartition } from './membership-partition.ts'

test('a 60 s partition cuts every connection across; after the heal the overlay rejoins', () => {
  const seed = seedFromEnvironment(5n)
  const report = runMembershipPartition({ peers: 200, seed, ms: 200_000 })
  const hint = `SEED=${String(seed)} peers=200 ms=200000; replay: shoal sim membership-partition --seed ${String(seed)} --peers 200 --ms 200000`
  const figures = report.figures
  assert.ok((figures['crossConnectionsBeforePartition'] as number) > 0, hint)
  assert.equal(figures['crossConnectionsAtHeal'], 0, hint)
  assert.ok((figures['largestComponentFractionAtHeal'] as number) < 0.9, hint)
  assert.notEqual(figures['timeToOneComponentAfterHealMs'], null, `never one component again; ${hint}`)
})
