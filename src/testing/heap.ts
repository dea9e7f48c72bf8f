/** The JS heap as a test or benchmark measures it: after a full garbage collection. */
import { text } from 'node:stream/consumers'
import { getHeapSnapshot } from 'node:v8'
import { garbageCollector } from '../node/heap-trimmer.ts'

/**
 * The bytes of every object still reachable, counted in a heap snapshot (about a second for
 * a test process); more exact than heapUsed, which counts garbage a collection left for later.
 * A collection first, then a turn for the finalizers it queued (a timer an AbortSignal.timeout
 * held, say), so that what they release is not counted.
 */
export async function reachableHeapBytes(): Promise<number> {
  garbageCollector()()
  await new Promise((resolve) => setTimeout(resolve, 50))
  const snapshot = JSON.parse(await text(getHeapSnapshot())) as { snapshot: { meta: { node_fields: string[] } }; nodes: number[] }
  const fields = snapshot.snapshot.meta.node_fields
  let total = 0
  for (let index = fields.indexOf('self_size'); index < snapshot.nodes.length; index += fields.length) total += snapshot.nodes[index]!
  return total
}
