/**
 * Churn: when peers arrive, how long they stay, whether they crash or leave gracefully,
 * and when they come back. Owns only the schedule it draws (from the run's `churn` fork);
 * Scenario calls it from the Simulator's join and leave hooks, and it schedules the next
 * join or leave on the Simulator.
 */
import type { Prng } from '../core/prng.ts'
import { sampleDuration, type DurationDistribution } from './distributions.ts'
import type { Simulator } from './simulator.ts'

export type Arrival =
  /** Every peer joins at `atMs`. */
  | { kind: 'all-at-once'; atMs?: number }
  /** A Poisson process: exponential gaps with mean windowMs / peers, so most arrive within the window. */
  | { kind: 'poisson'; windowMs: number; startMs?: number }

export interface ChurnConfig {
  arrival: Arrival
  /** Session lengths; undefined: peers never leave on their own. */
  session?: DurationDistribution
  /** Fraction of departures that are crashes (no goodbye) rather than graceful leaves. */
  crashFraction: number
  /** Time offline before a departed peer comes back; undefined: it never does. */
  offline?: DurationDistribution
}

export interface ChurnCounters {
  arrivals: number
  rejoins: number
  gracefulLeaves: number
  crashes: number
}

export class Churn {
  readonly counters: ChurnCounters = { arrivals: 0, rejoins: 0, gracefulLeaves: 0, crashes: 0 }
  readonly #config: ChurnConfig
  readonly #prng: Prng
  readonly #sim: Simulator<unknown>
  /** Peers exempt from departures (bootstrap peers, a scenario's observers). */
  readonly #stable: Uint8Array
  readonly #joined: Uint8Array

  constructor(sim: Simulator<unknown>, config: ChurnConfig, prng: Prng, stablePeers: readonly number[]) {
    this.#sim = sim
    this.#config = config
    this.#prng = prng
    this.#stable = new Uint8Array(sim.peerCount)
    this.#joined = new Uint8Array(sim.peerCount)
    for (const peer of stablePeers) this.#stable[peer] = 1
  }

  /** Schedules every peer's first arrival; `peers` in the given order (stable ones first is typical). */
  scheduleArrivals(peers: readonly number[]): void {
    const arrival = this.#config.arrival
    if (arrival.kind === 'all-at-once') {
      for (const peer of peers) this.#sim.join(peer, arrival.atMs ?? 0)
      return
    }
    const gapMeanMs = arrival.windowMs / Math.max(1, peers.length)
    let time = arrival.startMs ?? 0
    for (const peer of peers) {
      this.#sim.join(peer, time)
      time += this.#prng.exponential(gapMeanMs)
    }
  }

  onJoin(peer: number, now: number): void {
    if (this.#joined[peer] === 1) this.counters.rejoins++
    else this.counters.arrivals++
    this.#joined[peer] = 1
    const session = this.#config.session
    if (session === undefined || this.#stable[peer] === 1) return
    const crash = this.#prng.next() < this.#config.crashFraction
    this.#sim.leave(peer, { crash, time: now + sampleDuration(session, this.#prng), incarnation: this.#sim.incarnationOf(peer) })
  }

  onLeave(peer: number, crashed: boolean, now: number): void {
    if (crashed) this.counters.crashes++
    else this.counters.gracefulLeaves++
    const offline = this.#config.offline
    if (offline !== undefined) this.#sim.join(peer, now + sampleDuration(offline, this.#prng))
  }
}
