/**
 * Distributions of durations (link latency, session and offline lengths), all in
 * milliseconds. A value is a quantile function of two uniforms, so the same code serves
 * draws from a Prng (churn) and stateless draws from a hash of (seed, pair) (latency).
 * Pure functions; used by the network model and by churn.
 */
import type { Prng } from '../core/prng.ts'

export type DurationDistribution =
  | { kind: 'constant'; valueMs: number }
  | { kind: 'uniform'; minMs: number; maxMs: number }
  | { kind: 'exponential'; meanMs: number }
  /** exp(N(ln medianMs, sigma²)), cut at maxMs when given (real links have a worst case). */
  | { kind: 'lognormal'; medianMs: number; sigma: number; maxMs?: number }
  /** Heavy-tailed: P(X > x) = (scaleMs / x)^shape for x >= scaleMs; mean scaleMs·shape/(shape−1). */
  | { kind: 'pareto'; scaleMs: number; shape: number }
  /** shape < 1: many short sessions and a long tail, as measured in deployed P2P networks. */
  | { kind: 'weibull'; scaleMs: number; shape: number }

/** The value at uniforms `u` and `v` in [0, 1); only lognormal uses `v`. */
export function durationAt(distribution: DurationDistribution, u: number, v: number): number {
  switch (distribution.kind) {
    case 'constant': return distribution.valueMs
    case 'uniform': return distribution.minMs + (distribution.maxMs - distribution.minMs) * u
    case 'exponential': return -distribution.meanMs * Math.log(1 - u)
    case 'lognormal': {
      // Box-Muller: 1 - u is in (0, 1], so the logarithm is finite.
      const normal = Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * v)
      const value = distribution.medianMs * Math.exp(distribution.sigma * normal)
      return distribution.maxMs === undefined ? value : Math.min(value, distribution.maxMs)
    }
    case 'pareto': return distribution.scaleMs / Math.pow(1 - u, 1 / distribution.shape)
    case 'weibull': return distribution.scaleMs * Math.pow(-Math.log(1 - u), 1 / distribution.shape)
  }
}

export function sampleDuration(distribution: DurationDistribution, prng: Prng): number {
  return durationAt(distribution, prng.next(), distribution.kind === 'lognormal' ? prng.next() : 0)
}

/** The distribution's mean, for documentation and for checking churn counts. */
export function meanDuration(distribution: DurationDistribution): number {
  switch (distribution.kind) {
    case 'constant': return distribution.valueMs
    case 'uniform': return (distribution.minMs + distribution.maxMs) / 2
    case 'exponential': return distribution.meanMs
    case 'lognormal': return distribution.medianMs * Math.exp(distribution.sigma ** 2 / 2)
    case 'pareto': return distribution.shape > 1 ? (distribution.scaleMs * distribution.shape) / (distribution.shape - 1) : Infinity
    case 'weibull': return distribution.scaleMs * gamma(1 + 1 / distribution.shape)
  }
}

/** Lanczos approximation of Γ(x) for x > 0. */
function gamma(x: number): number {
  const coefficients = [676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7]
  if (x < 0.5) return Math.PI / (Math.sin(Math.PI * x) * gamma(1 - x))
  x -= 1
  let sum = 0.99999999999980993
  for (let index = 0; index < coefficients.length; index++) sum += coefficients[index]! / (x + index + 1)
  const t = x + coefficients.length - 0.5
  return Math.sqrt(2 * Math.PI) * Math.pow(t, x + 0.5) * Math.exp(-t) * sum
}

/** Mixes a 32-bit key with two integers into 32 well-spread bits (murmur3 finaliser). */
export function mix3(key: number, a: number, b: number): number {
  let h = Math.imul(key ^ a, 0xcc9e2d51)
  h = Math.imul((h << 15) | (h >>> 17), 0x1b873593) ^ b
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}
