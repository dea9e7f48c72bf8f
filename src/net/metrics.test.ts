import assert from 'node:assert/strict'
import { test } from 'node:test'
import { garbageCollector } from '../node/heap-trimmer.ts'
import { NodeMetrics } from './metrics.ts'

test('shoal_heap_retained_bytes is the heap a major GC left: it follows what is kept', async () => {
  const metrics = new NodeMetrics(() => [])
  const gc = garbageCollector()
  const afterMajorGc = async (): Promise<number> => {
    gc()
    // The observer hears of the collection on a later turn.
    await new Promise((resolve) => setTimeout(resolve, 100))
    return (await metrics.registry.getSingleMetric('shoal_heap_retained_bytes')!.get()).values[0]!.value
  }
  const base = await afterMajorGc()
  assert.ok(base > 0)
  let kept: Array<{ index: number }> | undefined = Array.from({ length: 300_000 }, (_, index) => ({ index }))
  const withKept = await afterMajorGc()
  assert.ok(withKept - base > 4 * 2 ** 20, `keeping ${kept.length} objects added ${withKept - base} bytes`)
  kept = undefined
  const released = await afterMajorGc()
  assert.ok(withKept - released > 4 * 2 ** 20, `releasing them took away ${withKept - released} bytes`)
})
