/**
 * The soak's arithmetic (src/testing/soak.ts): the line fit, the trend it reports, the
 * summary over daemons, the trends of a window of samples, the metric read from Prometheus text. The soak itself runs for
 * minutes: npm run soak.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Prng } from '../core/prng.ts'
import { fitLine, memoryTrend, prometheusValue, soakMemory, summarizeTrends, warmupMinutesDefault, type MemoryTrend, type SoakSample } from './soak.ts'

const MiB = 2 ** 20

test('the least-squares line through points on a line is that line', () => {
  const { slope, intercept } = fitLine([0, 1, 2, 3], [5, 7, 9, 11])
  assert.equal(slope, 2)
  assert.equal(intercept, 5)
  assert.throws(() => fitLine([1], [1]), /two points/)
  assert.throws(() => fitLine([2, 2], [1, 3]), /two distinct/)
})

test('a trend is the change of the fitted line over the samples, relative to its start, and per hour', () => {
  // 100 MiB growing 10 MiB over an hour, sampled every minute.
  const samples = Array.from({ length: 61 }, (_, minute) => ({ atMs: minute * 60_000, bytes: 100 * MiB + (minute / 60) * 10 * MiB }))
  const trend = memoryTrend(samples)
  assert.equal(trend.sampleCount, 61)
  assert.ok(Math.abs(trend.startBytes - 100 * MiB) < 1)
  assert.ok(Math.abs(trend.endBytes - 110 * MiB) < 1)
  assert.ok(Math.abs(trend.changePercent - 10) < 1e-9)
  assert.ok(Math.abs(trend.mibPerHour - 10) < 1e-9)
})

test('a flat sawtooth (a heap between collections) fitted over many periods shows almost no change', () => {
  // 40 MiB after each collection, growing to 60 MiB over 90 s; 150 samples 10 s apart, with a random phase.
  const phaseMs = Prng.fromSeed('sawtooth').int(90_000)
  const samples = Array.from({ length: 150 }, (_, index) => {
    const atMs = index * 10_000
    return { atMs, bytes: 40 * MiB + (((atMs + phaseMs) % 90_000) / 90_000) * 20 * MiB }
  })
  assert.ok(Math.abs(memoryTrend(samples).changePercent) < 1, JSON.stringify(memoryTrend(samples)))
})

test('the summary names the change of largest magnitude, keeps its sign, and is flat only when every daemon is', () => {
  const trend = (changePercent: number): MemoryTrend => ({ sampleCount: 10, startBytes: 100, endBytes: 100 + changePercent, changePercent, mibPerHour: changePercent / 10 })
  const summary = summarizeTrends([trend(1), trend(-6), trend(2), trend(0.5)])
  assert.equal(summary.changePercentWorst, -6)
  assert.equal(summary.worstDaemon, 1)
  assert.equal(summary.mibPerHourWorst, -0.6)
  assert.equal(summary.changePercentMedian, 0.5)
  assert.equal(summary.flat, false)
  assert.equal(summarizeTrends([trend(5), trend(-5)]).flat, true)
})

test('the memory of a window: samples before it are left out, the retained heap is read only after a major GC, a trend past 5% is named', () => {
  // Two daemons sampled every minute for an hour. Both start at 400 MiB of RSS, fall to 100 MiB
  // by minute 10 (the warm-up), then daemon 0 stays flat and daemon 1 grows 10 MiB over the window.
  // Their retained heap is 30 MiB after each major GC (at minutes 10, 15, ... 60 in the window); between, a
  // value that would be a 50% rise if it were read.
  const samples: SoakSample[] = Array.from({ length: 61 }, (_, minute) => {
    const rss = (growth: number) => (minute < 10 ? 400 * MiB : 100 * MiB + growth * ((minute - 10) / 50) * MiB)
    const majorGcs = Math.floor(minute / 5)
    const retained = minute % 5 === 0 ? 30 * MiB : 30 * MiB + (minute / 60) * 15 * MiB
    const daemon = (growth: number) => ({ rss: rss(growth), anonymous: rss(growth) - 60 * MiB, file: 60 * MiB, allocatorMainHeap: 20 * MiB, heap: 40 * MiB, retained, majorGcs, heapCommitted: 50 * MiB, external: 10 * MiB })
    // Daemon 1 trims its heap at minutes 5, 25 and 45, giving back 8 MiB each time; daemon 0 reports no trims.
    const trims = Math.floor((minute + 15) / 20)
    return { atMs: minute * 60_000, daemons: [daemon(0), { ...daemon(10), heapTrims: trims, heapTrimmedBytes: trims * 8 * MiB }] }
  })
  const memory = soakMemory(samples, 10 * 60_000)
  assert.equal(memory.windowMinutes, 50)
  assert.equal(memory.daemons[0]!.rss.sampleCount, 51)
  assert.ok(Math.abs(memory.daemons[0]!.rss.changePercent) < 1e-9)
  assert.ok(Math.abs(memory.daemons[1]!.rss.changePercent - 10) < 1e-9)
  assert.equal(memory.daemons[1]!.samplesAfterMajorGc, 11)
  assert.ok(Math.abs(memory.heap.changePercentWorst) < 1e-9, JSON.stringify(memory.heap))
  assert.equal(memory.rss.worstDaemon, 1)
  assert.deepEqual(memory.daemons.map((daemon) => [daemon.heapTrims, daemon.heapTrimmedBytes]), [[0, 0], [2, 16 * MiB]], 'the trims in the window, not the one in the warm-up')
  assert.deepEqual(memory.failures, ['RSS of daemon 1 changed 10.0% after the warm-up (limit ±5%)'])
  assert.throws(() => soakMemory(samples, 55 * 60_000), /only 6 heap samples of daemon 0 after the warm-up: too few/)
  assert.throws(() => soakMemory(samples, 61 * 60_000), /no sample at or after 61.0 min/)
})

test('an unlabelled sample is read from Prometheus text, and only that one', () => {
  const text = [
    '# HELP nodejs_heap_size_used_bytes Process heap size used from Node.js in bytes.',
    '# TYPE nodejs_heap_size_used_bytes gauge',
    'nodejs_heap_size_used_bytes 41234567',
    'nodejs_heap_size_used_bytes_total 1',
    'process_resident_memory_bytes 150000000',
  ].join('\n')
  assert.equal(prometheusValue(text, 'nodejs_heap_size_used_bytes'), 41_234_567)
  assert.equal(prometheusValue(text, 'nodejs_heap_size_total_bytes'), undefined)
})

test('the warm-up is 15 minutes, or half a shorter run', () => {
  assert.equal(warmupMinutesDefault(30), 15)
  assert.equal(warmupMinutesDefault(60), 15)
  assert.equal(warmupMinutesDefault(12), 6)
})
