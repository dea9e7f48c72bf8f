/**
 * Measurements over a simulation's state: connected components of the live connection
 * graph, percentiles, degree statistics. Pure functions of what the Simulator exposes;
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
