/**
 * The DHT over a small simulated network with wide-area latency: lookups reach the true k
 * closest peers, provider records are found, churn does not lose held content, and the run
 * replays from its seed. The 10,000-peer figures come from `shoal sim dht-*`.
 * SHOAL_SEED=<n> replays a failure.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { seedFromEnvironment } from '../seed.ts'
import { DHT_CHURN_HEAVY_SCENARIO, runDhtLookup } from './dht.ts'

const seed = seedFromEnvironment(1n)

test('400 peers: lookups find the true k closest within 4 hops, and providers are found', () => {
  const { figures, traceHash } = runDhtLookup({ peers: 400, seed, count: 100 }, { arrivalsPerSecond: 200, settleMs: 30_000 })
  const failure = `SEED=${seed} ${JSON.stringify(figures)}`
  assert.equal(figures.lookupSuccessRate, 1, failure)
  assert.ok((figures.lookupFoundAllKClosestRate as number) >= 0.95, failure)
  assert.ok((figures.lookupKClosestWithin4HopsRate as number) >= 0.9, failure)
  assert.equal(figures.providerSearchSuccessRate, 1, failure)
  assert.equal(figures.provideStoredMean, 20, failure)
  assert.ok((figures.providerSearchLatencyP50Ms as number) <= 500, failure)
  // The same seed replays the same run.
  assert.equal(runDhtLookup({ peers: 400, seed, count: 100 }, { arrivalsPerSecond: 200, settleMs: 30_000 }).traceHash, traceHash)
})

test('400 peers under heavy churn, through an hourly refresh: held content stays findable', () => {
  const { figures } = DHT_CHURN_HEAVY_SCENARIO.run({ peers: 400, seed, ms: 65 * 60_000, count: 50 })
  const failure = `SEED=${seed} ${JSON.stringify(figures)}`
  assert.ok((figures.rejoins as number) + (figures.crashes as number) > 0, failure)
  assert.ok((figures.searchSuccessRateMin as number) >= 0.98, failure)
  assert.equal(figures.stuckDeadlines, 0, failure)
})
