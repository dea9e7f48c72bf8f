/**
 * Measurements over a simulation's state: connected components of the live connection
 * graph, shortest-path delays over it, percentiles, degree statistics. Pure functions of
 * what the Simulator exposes;
 * called by scenarios and checkers, never on the per-event path.
 */
import type { Simulator } from './simulator.ts'

/** Size of the largest connected component among online peers (live connections only). */
export function largestComponentSize(sim: Simulator<unknown>): number {
  const parent = new Int32Array(sim.peerCount)
  for (let index = 0; index < parent.length; index++) parent[index] = index
  const find = (index: number): number => {
    let root = index
    while (parent[root] !== root) root = parent[root]!
    // Path compression keeps later finds short.
    while (parent[index] !== root) {
      const next = parent[index]!
      parent[index] = root
      index = next
    }
    return root
  }
  sim.forEachLiveConnection((a, b) => {
    const rootA = find(a)
    const rootB = find(b)
    if (rootA !== rootB) parent[rootA] = rootB
  })
  const sizes = new Int32Array(sim.peerCount)
  let largest = 0
  for (let index = 0; index < sim.peerCount; index++) {
    if (!sim.isOnline(index)) continue
    const size = ++sizes[find(index)]!
    if (size > largest) largest = size
  }
  return largest
}

/** Fraction of online peers in the largest component (1 when nobody is online). */
export function largestComponentFraction(sim: Simulator<unknown>): number {
  return sim.onlineCount === 0 ? 1 : largestComponentSize(sim) / sim.onlineCount
}

/** The q-quantile (0..1) by nearest rank; undefined for no values. */
export function percentile(values: readonly number[], q: number): number | undefined {
  if (values.length === 0) return undefined
  const sorted = Float64Array.from(values).sort()
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

export interface Summary {
  min: number
  mean: number
  max: number
}

export function summarize(values: readonly number[]): Summary | undefined {
  if (values.length === 0) return undefined
  let min = Infinity
  let max = -Infinity
  let total = 0
  for (const value of values) {
    if (value < min) min = value
    if (value > max) max = value
    total += value
  }
  return { min, mean: total / values.length, max }
}

/** The live connection graph in adjacency-array form, with each link's one-way latency. */
export interface LinkGraph {
  /** Peer i's links are neighbours[offsets[i] .. offsets[i + 1]). */
  offsets: Int32Array
  neighbours: Int32Array
  latenciesMs: Float64Array
}

/** A snapshot of the connections both ends hold, for shortest-path bounds. O(peers + connections). */
export function liveLinkGraph(sim: Simulator<unknown>): LinkGraph {
  const peerCount = sim.peerCount
  const degrees = new Int32Array(peerCount + 1)
  sim.forEachLiveConnection((a, b) => {
    degrees[a]!++
    degrees[b]!++
  })
  const offsets = new Int32Array(peerCount + 1)
  for (let index = 0; index < peerCount; index++) offsets[index + 1] = offsets[index]! + degrees[index]!
  const neighbours = new Int32Array(offsets[peerCount]!)
  const latenciesMs = new Float64Array(offsets[peerCount]!)
  const filled = offsets.slice(0, peerCount)
  sim.forEachLiveConnection((a, b) => {
    const latencyMs = sim.latencyMs(a, b)
    const slotA = filled[a]!++
    neighbours[slotA] = b
    latenciesMs[slotA] = latencyMs
    const slotB = filled[b]!++
    neighbours[slotB] = a
    latenciesMs[slotB] = latencyMs
  })
  return { offsets, neighbours, latenciesMs }
}

/**
 * The least time from `source` to every peer over `graph` when each hop costs its latency
 * plus `perHopMs` (Dijkstra, with a binary heap that holds stale entries rather than
 * decreasing keys). Infinity where no path exists. Paths pass only through peers that
 * `through` accepts, when given (they may still end at any). Writes into `out` when given.
 */
export function shortestDelaysMs(graph: LinkGraph, source: number, perHopMs: number, out?: Float64Array, through?: (peer: number) => boolean): Float64Array {
  const peerCount = graph.offsets.length - 1
  const delays = out ?? new Float64Array(peerCount)
  delays.fill(Infinity)
  // Every improvement pushes once, so the heap never holds more than links + 1 entries.
  const capacity = graph.neighbours.length + 1
  const heapKeys = new Float64Array(capacity)
  const heapPeers = new Int32Array(capacity)
  let size = 0
  const push = (key: number, peer: number): void => {
    let slot = size++
    while (slot > 0) {
      const parent = (slot - 1) >> 1
      if (heapKeys[parent]! <= key) break
      heapKeys[slot] = heapKeys[parent]!
      heapPeers[slot] = heapPeers[parent]!
      slot = parent
    }
    heapKeys[slot] = key
    heapPeers[slot] = peer
  }
  delays[source] = 0
  push(0, source)
  while (size > 0) {
    const key = heapKeys[0]!
    const peer = heapPeers[0]!
    // Sift the last entry down from the root.
    const lastKey = heapKeys[--size]!
    const lastPeer = heapPeers[size]!
    let slot = 0
    for (;;) {
      let child = 2 * slot + 1
      if (child >= size) break
      if (child + 1 < size && heapKeys[child + 1]! < heapKeys[child]!) child++
      if (heapKeys[child]! >= lastKey) break
      heapKeys[slot] = heapKeys[child]!
      heapPeers[slot] = heapPeers[child]!
      slot = child
    }
    heapKeys[slot] = lastKey
    heapPeers[slot] = lastPeer
    if (key > delays[peer]! || (through !== undefined && peer !== source && !through(peer))) continue
    for (let link = graph.offsets[peer]!, end = graph.offsets[peer + 1]!; link < end; link++) {
      const next = graph.neighbours[link]!
      const candidate = key + graph.latenciesMs[link]! + perHopMs
      if (candidate < delays[next]!) {
        delays[next] = candidate
        push(candidate, next)
      }
    }
  }
  return delays
}
