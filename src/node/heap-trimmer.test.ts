import assert from 'node:assert/strict'
import { test } from 'node:test'
import { residentMemory } from '../testing/proc-stats.ts'
import { garbageCollector, HeapTrimmer, mallocTrimmer, TrimPolicy, type HeapTrim } from './heap-trimmer.ts'

const MiB = 2 ** 20

test('a trim is due once the RSS is the minimum above what the last trim left, at most once an interval', () => {
  const policy = new TrimPolicy({ rssRiseBytesMin: 16 * MiB, intervalMsMin: 60_000 })
  assert.equal(policy.afterMajorGc(100 * MiB, 0), false, 'the first collection sets the baseline')
  assert.equal(policy.afterMajorGc(110 * MiB, 1_000), false, 'a rise of 10 MiB')
  assert.equal(policy.afterMajorGc(116 * MiB, 2_000), true, 'a rise of 16 MiB')
  policy.trimmed(104 * MiB, 2_100)
  assert.equal(policy.afterMajorGc(119 * MiB, 3_000), false, 'the baseline is what the trim left: 15 MiB above it')
  assert.equal(policy.afterMajorGc(130 * MiB, 30_000), false, 'a rise of 26 MiB, but within the interval')
  assert.equal(policy.afterMajorGc(125 * MiB, 62_100), true, 'still risen an interval later')
  policy.trimmed(124 * MiB, 62_200)
  assert.equal(policy.afterMajorGc(130 * MiB, 200_000), false, 'what the process needed is the new baseline')
})

test('a policy without a minimum rise never trims', () => {
  const policy = new TrimPolicy({ rssRiseBytesMin: null, intervalMsMin: 0 })
  assert.equal(policy.afterMajorGc(100 * MiB, 0), false)
  assert.equal(policy.afterMajorGc(900 * MiB, 1_000), false)
})

/** Buffers the size of socket reads, each followed by a small one that stays: the main heap cannot shrink from its top. */
function fragmentMainHeap(): { keep: Buffer[]; release: () => void } {
  let large: Buffer[] | undefined = []
  const keep: Buffer[] = []
  for (let index = 0; index < 1_500; index++) {
    large.push(Buffer.alloc(60 * 1024, 1))
    keep.push(Buffer.alloc(4 * 1024, 1))
  }
  return { keep, release: () => { large = undefined } }
}

async function collectBuffers(): Promise<void> {
  const gc = garbageCollector()
  gc()
  // V8 frees array buffers' memory on a sweeper task after the collection.
  await new Promise((resolve) => setTimeout(resolve, 200))
  gc()
}

test('malloc_trim gives back the free pages that free() leaves inside glibc\'s main heap', { skip: mallocTrimmer() === null && 'not glibc', timeout: 60_000 }, async () => {
  const before = residentMemory(process.pid).anonymousBytes
  const heap = fragmentMainHeap()
  const grown = residentMemory(process.pid).anonymousBytes
  assert.ok(grown - before > 64 * MiB, `the buffers took ${((grown - before) / MiB).toFixed(0)} MiB`)
  heap.release()
  await collectBuffers()
  const freed = residentMemory(process.pid).anonymousBytes
  assert.ok(freed - before > 48 * MiB, `free() kept ${((freed - before) / MiB).toFixed(0)} MiB resident (of ${((grown - before) / MiB).toFixed(0)})`)
  mallocTrimmer()!()
  const trimmed = residentMemory(process.pid).anonymousBytes
  assert.ok(freed - trimmed > 48 * MiB, `malloc_trim gave back ${((freed - trimmed) / MiB).toFixed(0)} MiB`)
  assert.equal(heap.keep.length, 1_500, 'the small buffers stayed')
})

test('the trimmer runs malloc_trim after every major collection, and reports what it gave back', { skip: mallocTrimmer() === null && 'not glibc', timeout: 60_000 }, async () => {
  const trims: HeapTrim[] = []
  const trimmer = new HeapTrimmer({ rssRiseBytesMin: null, intervalMsMin: 0, mallocTrim: true }, (trim) => trims.push(trim))
  try {
    const heap = fragmentMainHeap()
    heap.release()
    await collectBuffers()
    for (let wait = 0; wait < 100 && trims.length < 2; wait++) await new Promise((resolve) => setTimeout(resolve, 50))
    assert.ok(trims.length >= 2, `${trims.length} trims after two major collections`)
    assert.ok(trims.every((trim) => trim.heap === 'malloc'), 'no V8 trim without a minimum rise')
    const givenBack = trims.reduce((sum, trim) => sum + trim.rssBeforeBytes - trim.rssAfterBytes, 0)
    assert.ok(givenBack > 48 * MiB, `the trims gave back ${(givenBack / MiB).toFixed(0)} MiB`)
    assert.equal(heap.keep.length, 1_500)
  } finally {
    trimmer.stop()
  }
})

test('a trim gives the pages of a heap that grew and fell back to the system', { timeout: 60_000 }, () => {
  const gc = garbageCollector()
  const before = residentMemory(process.pid).anonymousBytes
  // About 100 MiB of small objects in the old generation, then let go.
  let objects: Array<{ index: number; text: string; list: number[] }> | undefined = []
  for (let index = 0; index < 700_000; index++) objects.push({ index, text: `object ${index}`, list: [index] })
  const grown = residentMemory(process.pid).anonymousBytes
  assert.ok(grown - before > 64 * MiB, `the heap grew by ${((grown - before) / MiB).toFixed(0)} MiB`)
  objects = undefined
  gc()
  const pooled = residentMemory(process.pid).anonymousBytes
  // V8 keeps the emptied pages: the point of the trimmer.
  assert.ok(pooled - before > 48 * MiB, `a regular collection kept ${((pooled - before) / MiB).toFixed(0)} MiB resident (of ${((grown - before) / MiB).toFixed(0)})`)
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' })
  const trimmed = residentMemory(process.pid).anonymousBytes
  assert.ok(pooled - trimmed > 48 * MiB, `a last-resort collection gave back ${((pooled - trimmed) / MiB).toFixed(0)} MiB`)
})

test('the trimmer trims by itself after a major collection that finds the RSS risen past its minimum', { timeout: 60_000 }, async () => {
  const trims: HeapTrim[] = []
  const trimmer = new HeapTrimmer({ rssRiseBytesMin: 32 * MiB, intervalMsMin: 0, mallocTrim: false }, (trim) => trims.push(trim))
  const settle = () => new Promise((resolve) => setTimeout(resolve, 50))
  try {
    const gc = garbageCollector()
    gc()
    await settle()
    assert.equal(trims.length, 0, 'the first collection sets the baseline')
    let objects: Array<{ index: number; text: string; list: number[] }> | undefined = []
    for (let index = 0; index < 700_000; index++) objects.push({ index, text: `object ${index}`, list: [index] })
    objects = undefined
    gc()
    for (let wait = 0; wait < 100 && trims.length === 0; wait++) await settle()
    assert.equal(trims.length, 1, 'one trim')
    const [trim] = trims
    assert.ok(trim!.rssBeforeBytes - trim!.rssAfterBytes > 32 * MiB, `the trim gave back ${((trim!.rssBeforeBytes - trim!.rssAfterBytes) / MiB).toFixed(0)} MiB`)
    gc()
    await settle()
    assert.equal(trims.length, 1, 'no trim after it: its RSS is the baseline')
  } finally {
    trimmer.stop()
  }
})
