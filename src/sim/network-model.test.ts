import assert from 'node:assert/strict'
import { test } from 'node:test'
import { durationAt, meanDuration, sampleDuration, type DurationDistribution } from './distributions.ts'
import { Bandwidth, pairLatencyMs, type Flow } from './network-model.ts'
import { Prng } from '../core/prng.ts'

/** Runs flows to completion with a tiny agenda of its own; returns each flow's completion time. */
function runFlows(capacities: [number, number][], flows: { from: number; to: number; bytes: number; startMs: number }[]): number[] {
  const scheduled = new Map<Flow, { doneAt: number; version: number }>()
  const bandwidth = new Bandwidth(capacities.length, (flow, doneAt) => scheduled.set(flow, { doneAt, version: flow.version }))
  capacities.forEach(([up, down], index) => bandwidth.setCapacity(index, up, down))
  const objects: Flow[] = flows.map((flow) => ({ from: flow.from, to: flow.to, bytesRemaining: flow.bytes, bytesPerMs: 0, updatedAt: 0, version: 0, payload: undefined }))
  const doneAt = new Array<number>(flows.length).fill(NaN)
  const starts = flows.map((flow, index) => ({ time: flow.startMs, index })).sort((a, b) => a.time - b.time)
  for (let step = 0; step < 1_000; step++) {
    let next: { time: number; flow: Flow } | undefined
    for (const [flow, entry] of scheduled) if (next === undefined || entry.doneAt < next.time) next = { time: entry.doneAt, flow }
    const start = starts[0]
    if (start !== undefined && (next === undefined || start.time <= next.time)) {
      starts.shift()
      bandwidth.start(start.time, objects[start.index]!)
      continue
    }
    if (next === undefined) break
    scheduled.delete(next.flow)
    bandwidth.finish(next.time, next.flow)
    doneAt[objects.indexOf(next.flow)] = next.time
  }
  return doneAt
}

test('two flows from one sender each get half of its upload', () => {
  // Sender 0 uploads 1,000 B/s; receivers download fast. 1,000 bytes each at 500 B/s: 2 s.
  const doneAt = runFlows([[1_000, 1e9], [1e9, 1e9], [1e9, 1e9]], [
    { from: 0, to: 1, bytes: 1_000, startMs: 0 },
    { from: 0, to: 2, bytes: 1_000, startMs: 0 },
  ])
  assert.deepEqual(doneAt.map(Math.round), [2_000, 2_000])
})

test('a flow is limited by its receiver download, and speeds up when a competitor ends', () => {
  assert.deepEqual(runFlows([[1e9, 1e9], [1e9, 100]], [{ from: 0, to: 1, bytes: 100, startMs: 0 }]).map(Math.round), [1_000])
  // 500 and 1,500 bytes share 1,000 B/s: the short one ends at 1 s, the long one then gets it all: 2 s.
  const doneAt = runFlows([[1_000, 1e9], [1e9, 1e9], [1e9, 1e9]], [
    { from: 0, to: 1, bytes: 500, startMs: 0 },
    { from: 0, to: 2, bytes: 1_500, startMs: 0 },
  ])
  assert.deepEqual(doneAt.map(Math.round), [1_000, 2_000])
})

test('a late flow slows down the one in progress', () => {
  // Alone for 1 s at 1,000 B/s (1,000 of 2,000 bytes), then halves: 1,000 more bytes take 2 s.
  const doneAt = runFlows([[1_000, 1e9], [1e9, 1e9], [1e9, 1e9]], [
    { from: 0, to: 1, bytes: 2_000, startMs: 0 },
    { from: 0, to: 2, bytes: 1_000, startMs: 1_000 },
  ])
  assert.deepEqual(doneAt.map(Math.round), [3_000, 3_000])
})

test('pair latency is deterministic, symmetric, and depends on the key', () => {
  const lognormal: DurationDistribution = { kind: 'lognormal', medianMs: 40, sigma: 0.5 }
  for (let a = 0; a < 50; a++) {
    for (let b = 0; b < 50; b++) {
      assert.equal(pairLatencyMs(lognormal, 7, a, b), pairLatencyMs(lognormal, 7, b, a))
    }
  }
  assert.equal(pairLatencyMs(lognormal, 7, 3, 9), pairLatencyMs(lognormal, 7, 3, 9))
  assert.notEqual(pairLatencyMs(lognormal, 7, 3, 9), pairLatencyMs(lognormal, 8, 3, 9))
  const values: number[] = []
  for (let a = 0; a < 200; a++) for (let b = a + 1; b < 200; b++) values.push(pairLatencyMs(lognormal, 7, a, b))
  values.sort((x, y) => x - y)
  const median = values[values.length >> 1]!
  assert.ok(median > 36 && median < 44, `median ${median}`)
  assert.equal(pairLatencyMs({ kind: 'constant', valueMs: 25 }, 7, 1, 2), 25)
  const uniform = pairLatencyMs({ kind: 'uniform', minMs: 10, maxMs: 20 }, 7, 1, 2)
  assert.ok(uniform >= 10 && uniform < 20)
})

test('session distributions have the documented means', () => {
  const prng = Prng.fromSeed('distributions')
  const distributions: DurationDistribution[] = [
    { kind: 'exponential', meanMs: 1_000 },
    { kind: 'pareto', scaleMs: 500, shape: 3 },
    { kind: 'weibull', scaleMs: 1_000, shape: 0.7 },
    { kind: 'lognormal', medianMs: 1_000, sigma: 0.5 },
  ]
  for (const distribution of distributions) {
    let total = 0
    const drawCount = 40_000
    for (let index = 0; index < drawCount; index++) total += sampleDuration(distribution, prng)
    const mean = meanDuration(distribution)
    assert.ok(Math.abs(total / drawCount - mean) / mean < 0.05, `${distribution.kind}: ${total / drawCount} vs ${mean}`)
  }
  assert.equal(durationAt({ kind: 'lognormal', medianMs: 40, sigma: 3, maxMs: 400 }, 0.999999, 0), 400)
})
